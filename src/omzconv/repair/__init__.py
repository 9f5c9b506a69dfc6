"""`convert -p FP16 --keep-precision auto|LAYER,…|none`: keep the layers that matter in f32.

- `record`: the request (in the FP16 IR's recipe), what was kept and why (`KeptPrecision`, in the
  IR's sidecar and rt_info), and `kept_precision(xml)`, the one reader of it;
- `mark`: the IR ops of a layer `omzconv diff` reports, and the `precise` IR attribute that keeps
  them f32 through `save_model(compress_to_fp16=True)`;
- `auto`: the ranking and held-out images, the tolerance judged, the search over ranking prefixes;
- `apply`: `keep_precision`, which `convert` calls to write the FP16 IR.

Nothing here prints.
"""

from omzconv.repair.apply import RepairSettings, keep_precision
from omzconv.repair.record import (NONE, KeepRequest, KeptPrecision, kept_head, kept_lines, kept_precision, parse_keep,
                                   short_record, speed_text)

__all__ = ["NONE", "KeepRequest", "KeptPrecision", "RepairSettings", "keep_precision", "kept_head", "kept_lines",
           "kept_precision", "parse_keep", "short_record", "speed_text"]
