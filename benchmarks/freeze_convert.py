"""Freeze and convert: wall time and peak RSS per model, medians of repeated fresh processes.

    python benchmarks/freeze_convert.py [--runs 3] [--models inception_v4,inception_resnet_v2]

Uses synthetic checkpoints (created first, not timed). Each measurement runs in a fresh Python
process, so imports count and peak RSS is that process's own. Convert is compared with a bare
`openvino.convert_model` + `save_model` of the same .pb in the same way; omzconv's convert also
applies the PrePostProcessor, writes rt_info and the sidecar, and runs the self-check (OpenVINO
on 4 images against the reference recorded at freeze time).
Targets (issues #3, #4): freeze ≤ 15 s (v4) / ≤ 20 s (IRv2), ≤ 2.5 GB; convert ≤ 1.2× bare, ≤ 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, name, root, precision = sys.argv[1:5]
t0 = time.perf_counter()
if mode == "bare":
    from omzconv.ovcompat import import_openvino
    ov = import_openvino()
    from omzconv.registry import load_registry
    model = load_registry().model(name)
    pb = Path(root) / "out" / "synthetic" / name / f"{name}.frozen.pb"
    m = ov.convert_model(str(pb), input=[(f"{model.input.name}:0", list(model.input.shape))],
                         output=[model.default_outputs[0].name + ":0"])
    ov.save_model(m, str(Path(root) / "bare" / precision / f"{name}.xml"), compress_to_fp16=precision == "FP16")
else:
    from omzconv.registry import load_registry
    from omzconv.workspace import Workspace
    from omzconv import pipeline
    reg = load_registry()
    ws = Workspace(Path(root) / "cache", Path(root) / "out", synthetic=True)
    model = reg.model(name)
    if mode == "freeze":
        pipeline.ensure_frozen(model, ws, force=True)
    else:
        pipeline.ensure_converted(model, ws, reg, precision, force=True)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(mode: str, name: str, root: Path, precision: str = "-") -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, name, str(root), precision],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="inception_v4,inception_resnet_v2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {}
        for name in args.models.split(","):
            measure("freeze", name, root)  # creates the synthetic checkpoint (not timed)
            freeze = median_of([measure("freeze", name, root) for _ in range(args.runs)])
            print(f"{name} freeze: {freeze['seconds']:.1f} s, peak {freeze['rss_mb'] / 1024:.2f} GB", flush=True)
            results[name] = {"freeze": freeze}
            for precision in ("FP32", "FP16"):
                runs = {"bare": [], "omzconv": []}
                for _ in range(args.runs):  # interleaved, so drift hits both alike
                    runs["bare"].append(measure("bare", name, root, precision))
                    runs["omzconv"].append(measure("convert", name, root, precision))
                bare, ours = median_of(runs["bare"]), median_of(runs["omzconv"])
                ratio = ours["seconds"] / bare["seconds"]
                print(f"{name} convert {precision}: omzconv {ours['seconds']:.1f} s (peak {ours['rss_mb'] / 1024:.2f} GB)"
                      f" vs bare {bare['seconds']:.1f} s (peak {bare['rss_mb'] / 1024:.2f} GB): {ratio:.2f}x", flush=True)
                results[name][precision] = {"omzconv": ours, "bare": bare, "ratio": ratio}
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
