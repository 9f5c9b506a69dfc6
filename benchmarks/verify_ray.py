"""images/s of `omzconv verify` in process vs on Ray with 1 and 2 workers, and what a cluster would do.

    python benchmarks/verify_ray.py [--model inception_v4] [--rounds 3] [--data-dir ../shared/imagenet-sample]

Needs `pip install -e '.[ray]'`. Each round (interleaved, so background load hits every
configuration alike) verifies the same images (original + FP32 + FP16, cache off) with
`evaluate_model` three ways: the in-process executor, and a local Ray instance (started once)
with 1 and 2 workers. Wall images/s counts everything a user waits for once Ray is up: starting
the workers (each imports TensorFlow and OpenVINO and loads the graph and IRs), decoding,
inference, and the driver's bookkeeping. It prints the medians, the ratio Ray 1 worker ÷ in
process (goal ≥ 0.8), each run's check that the reports' figures are equal, and a scaling
estimate from the measured per-worker rate (images ÷ a worker's busy seconds).

On a 2-core machine two workers cannot beat one: one worker's TensorFlow and OpenVINO already
keep both cores busy, so a second only shares them (and holds a second copy of the model).
Artefacts are synthetic-weight ones, built on first use under --workdir. The benchmark runs itself
in a network namespace with only loopback (`unshare -n`, needs root), like the Ray tests: Ray is
never started where it could reach another machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FULL = 50_000  # ImageNet validation images


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def reexec_in_loopback_namespace() -> None:
    """Run this script again inside a new network namespace whose only interface is loopback."""
    if os.environ.get("OMZCONV_BENCH_NAMESPACE") == "1":
        return
    if not (shutil.which("unshare") and shutil.which("ip")):
        sys.exit("verify_ray.py runs Ray only in a loopback-only network namespace: needs unshare and ip (root)")
    os.environ["OMZCONV_BENCH_NAMESPACE"] = "1"
    os.execvp("unshare", ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                          sys.executable, *sys.argv])


def main() -> None:
    reexec_in_loopback_namespace()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_v4")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-bench"))
    args = parser.parse_args()

    from omzconv import verify
    from omzconv.registry import load_registry
    from omzconv.runners import EXACT
    from omzconv.verify.ray_executor import WORKER_CPUS, RayExecutor
    from omzconv.workspace import Workspace

    registry = load_registry(ROOT / "models.yaml")
    model = registry.model(args.model)
    workspace = Workspace(args.workdir / "cache", args.workdir / "out", synthetic=True)
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; OpenVINO execution precision {EXACT['INFERENCE_PRECISION_HINT']} "
          "(verify pins it)", flush=True)
    print(f"preparing synthetic artefacts of {model.name} under {args.workdir} …", flush=True)
    artefacts = verify.ensure_artefacts(model, workspace, registry, ["FP32", "FP16"])
    selection = verify.select_images(registry.dataset("imagenet-val"), args.data_dir)
    n = len(selection.records)

    started = time.perf_counter()
    executors = {"in-process": verify.InProcess(), "ray, 1 worker": RayExecutor(workers=1)}
    executors["ray, 2 workers"] = RayExecutor(workers=2)  # joins the instance just started
    print(f"{n} images; local Ray instance started in {time.perf_counter() - started:.1f} s", flush=True)

    wall: dict[str, list[float]] = {k: [] for k in executors}
    per_worker: dict[str, list[float]] = {k: [] for k in executors}
    for i in range(args.rounds):
        figures = {}
        for name, executor in executors.items():
            started = time.perf_counter()
            report = verify.evaluate_model(model, artefacts, selection, registry.tolerances, executor=executor)
            wall[name].append(n / (time.perf_counter() - started))
            per_worker[name].append(statistics.median(w.images_per_second for w in report.execution.per_worker))
            figures[name] = verify.comparable(verify.make_report(selection, [report], True).to_dict())
        same = all(f == figures["in-process"] for f in figures.values())
        print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in wall.items())
              + f" images/s; reports equal: {same}", flush=True)
    executors["ray, 1 worker"].close()

    med = {k: statistics.median(v) for k, v in wall.items()}
    ratio = statistics.median(r / p for r, p in zip(wall["ray, 1 worker"], wall["in-process"]))
    print(f"\n{model.name}, {n} images, original + FP32 + FP16, medians of {args.rounds} rounds:")
    print(f"  {'executor':16} {'wall images/s':>14} {'per worker':>11}")
    for name in executors:
        print(f"  {name:16} {med[name]:14.2f} {statistics.median(per_worker[name]):11.2f}")
    print(f"  Ray 1 worker ÷ in process: {ratio:.2f} (median of round ratios; goal ≥ 0.8)")
    rate = statistics.median(per_worker["ray, 1 worker"])
    print(f"\nScaling estimate for all {FULL:,} images: N nodes × C cores ÷ {WORKER_CPUS} workers × {rate:.2f} "
          f"images/s per worker (this CPU), e.g.")
    for nodes, cores in ((1, 2), (4, 16), (16, 32)):
        workers = nodes * cores // WORKER_CPUS
        print(f"  {nodes:3} × {cores:2}-core nodes = {workers:4} workers: {workers * rate:8.1f} images/s, "
              f"{FULL / (workers * rate) / 60:7.1f} min")


if __name__ == "__main__":
    main()
