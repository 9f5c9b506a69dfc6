"""Which ops NNCF's accuracy control returned to float, from NNCF's own log.

`nncf.quantize_with_accuracy_control` (NNCF 3.4) returns only the model; its report object stays
internal. `quantize` records what this reads in the INT8 IR's sidecar (`accuracy_control.reverted`),
and `omzconv diff` shows it beside its ranking (`diff.nncf`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator

REVERTED = re.compile(r"(\d+) out of (\d+) were reverted back to the floating-point precision:\n(.*)", re.S)
RESTORING = re.compile(r"Total number of quantized operations in the model: (\d+)")


@contextlib.contextmanager
def reverted_ops() -> Iterator[dict]:
    """Which ops `quantize_with_accuracy_control` returned to float. NNCF 3.4 returns only the
    model; its report object stays internal, and the one place it says which ops it reverted is its
    log: `Accuracy drop: …` after measuring both models; then, only when the drop is too large,
    `Total number of quantized operations in the model: M`, and at the end `N out of M were reverted
    back to the floating-point precision:` with one op (its friendly name in the IR) per line — a
    line it omits when it reverted every group without reaching the drop. Those INFO records are
    caught here whatever the log level shown; the records NNCF would have shown pass on unchanged.
    `found["ops"]`: (names, M); ((), None) when NNCF needed no restoring; absent when unknown."""
    logger = logging.getLogger("nncf")
    shown, level, propagate = logger.getEffectiveLevel(), logger.level, logger.propagate
    found: dict = {}

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if match := REVERTED.match(message):
                found["ops"] = (tuple(line.strip() for line in match.group(3).splitlines() if line.strip()),
                                int(match.group(2)))
            elif match := RESTORING.match(message):
                found["restoring"] = int(match.group(1))
            elif message.startswith("Accuracy drop: "):
                found["measured"] = True
            if record.levelno >= shown and logger.parent is not None:
                logger.parent.handle(record)

    catch = Catch()
    logger.addHandler(catch)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield found
    finally:
        logger.removeHandler(catch)
        logger.setLevel(level)
        logger.propagate = propagate
    if "ops" not in found and found.get("measured") and "restoring" not in found:
        found["ops"] = ((), None)
