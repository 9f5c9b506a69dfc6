"""The one place that imports OpenVINO.

omzconv never makes a network call the user did not ask for. OpenVINO's converter (`ovc`)
sends usage telemetry through the `openvino_telemetry` package whenever it can import it, and
falls back to its own no-op stub when it cannot; `import_openvino()` makes that import fail
for this process before anything from OpenVINO is loaded, so the stub is always used.
"""

from __future__ import annotations

import sys
from types import ModuleType

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
