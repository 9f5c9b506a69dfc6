"""Every model of models.yaml end to end on synthetic weights, one fresh process per stage.

    python benchmarks/family.py [--models a,b,...] [--tag omz] [--data-dir ../shared/imagenet-sample]
                                [--root DIR] [--json results.json]

For each model: synthetic archive (generated, in the model's official layout), freeze (or, for a
shipped frozen graph, adopt), convert to FP32 and FP16 (each with its self-check), and
`omzconv verify` on the sample images. Each stage runs in its own Python process, so its peak
RSS is its own; the table shows wall time of freeze and convert (FP32 + FP16), top-1 agreement of
each IR with TensorFlow on the sample, and the largest peak RSS of any stage (and which one).
Models run one after another. Keep --root to reuse the synthetic archives between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Children import omzconv from this checkout, whatever is installed.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from omzconv.registry import load_registry
from omzconv.workspace import Workspace
from omzconv import pipeline
stage, name, root = sys.argv[1:4]
registry = load_registry()
model = registry.model(name)
workspace = Workspace(Path(root) / "cache", Path(root) / "out", synthetic=True)
t0 = time.perf_counter()
if stage == "synthetic":
    pipeline.obtain_checkpoint(model, workspace)
elif stage == "freeze":
    pipeline.ensure_frozen(model, workspace, force=True)
else:
    for precision in ("FP32", "FP16"):
        result = pipeline.ensure_converted(model, workspace, registry, precision, force=True)
        assert result.check.passed, result.check
print(json.dumps({"seconds": time.perf_counter() - t0,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


class StageFailed(Exception):
    pass


def stage(name: str, what: str, root: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, what, name, str(root)], capture_output=True, text=True, env=ENV)
    if done.returncode:
        raise StageFailed(f"{name} {what} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verify(name: str, root: Path, data_dir: Path) -> dict:
    """`omzconv verify` in its own process, timed by /usr/bin/time for the peak RSS."""
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-c", "from omzconv.cli import main; main()",
               "--cache-dir", str(root / "cache"), "-o", str(root / "out"), "-q",
               "verify", name, "--synthetic-weights", "--data-dir", str(data_dir), "--json", "--no-cache"]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - t0
    report = json.loads(done.stdout[done.stdout.index("{"):])
    [entry] = report["models"]
    agreement = {c["precision"]: c["top1_agreement"] for c in entry["comparisons"]}
    rss_kb = int(done.stderr.strip().splitlines()[-1])
    return {"seconds": seconds, "rss_gb": rss_kb / 2**20, "passed": report["passed"], "agreement": agreement}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated names [default: every model, or those of --tag]")
    parser.add_argument("--tag", help="only the models with this tag")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--root", type=Path, help="work directory to keep [default: a temporary one]")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from omzconv.registry import load_registry

    registry = load_registry(ROOT / "models.yaml")
    names = args.models.split(",") if args.models else [
        m.name for m in registry.select((), True, (args.tag,) if args.tag else ())]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        results = {}
        header = (f"{'model':<22} {'synthetic s':>11} {'freeze s':>8} {'convert s':>9} {'FP32 agr':>8} "
                  f"{'FP16 agr':>8} {'verify s':>8} {'peak GB':>7}  stage")
        print(header, flush=True)
        failed = []
        for name in names:
            try:
                row = {"synthetic": stage(name, "synthetic", root), "freeze": stage(name, "freeze", root),
                       "convert": stage(name, "convert", root), "verify": verify(name, root, args.data_dir)}
            except StageFailed as exc:
                print(exc, file=sys.stderr, flush=True)
                failed.append(name)
                continue
            peak_stage = max(row, key=lambda k: row[k]["rss_gb"])
            agreement = row["verify"]["agreement"]
            results[name] = row
            print(f"{name:<22} {row['synthetic']['seconds']:>11.1f} {row['freeze']['seconds']:>8.1f} "
                  f"{row['convert']['seconds']:>9.1f} {agreement.get('FP32', float('nan')):>8.1%} "
                  f"{agreement.get('FP16', float('nan')):>8.1%} {row['verify']['seconds']:>8.1f} "
                  f"{row[peak_stage]['rss_gb']:>7.2f}  {peak_stage}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        if failed:
            raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
