"""The one place that imports OpenVINO, and what its API needs around it.

omzconv never makes a network call the user did not ask for. OpenVINO's converter (`ovc`)
sends usage telemetry through the `openvino_telemetry` package whenever it can import it, and
falls back to its own no-op stub when it cannot; `import_openvino()` makes that import fail
for this process before anything from OpenVINO is loaded, so the stub is always used.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Any

TELEMETRY_MODULE = "openvino_telemetry"


def block_telemetry() -> None:
    """Make `import openvino_telemetry` raise ImportError in this process (a `None` entry in
    sys.modules does exactly that)."""
    loaded = sys.modules.get(TELEMETRY_MODULE)
    if loaded is not None:
        raise RuntimeError("openvino_telemetry was imported before omzconv could block it")
    sys.modules[TELEMETRY_MODULE] = None  # type: ignore[assignment]


def import_openvino() -> ModuleType:
    if TELEMETRY_MODULE not in sys.modules:
        block_telemetry()
    import openvino

    return openvino


_GENERATED_NAME = re.compile(r"([A-Z][A-Za-z0-9]*)_\d+")


def stable_names(ov_model: Any) -> None:
    """Number the nodes OpenVINO named itself by their place in the graph.

    OpenVINO names the nodes it creates `<Type>_<N>`, N a counter over everything the process has
    built so far (and transformations pass such names on: a Multiply called `Divide_2851`), so the
    same frozen graph gave different IR bytes in a process that had converted something before.
    Renaming them `<Type>_<index in topological order>` makes the IR a function of its inputs.
    """
    for index, op in enumerate(ov_model.get_ordered_ops()):
        if match := _GENERATED_NAME.fullmatch(op.get_friendly_name()):
            op.set_friendly_name(f"{match.group(1)}_{index}")
