"""Peak memory of `omzconv verify`, one model at a time and several in one command.

    python benchmarks/verify_memory.py [NAME ...] [--data-dir ../shared/imagenet-sample] [--workdir DIR]

Each measurement is a fresh `omzconv verify NAME... --synthetic-weights --no-cache` process whose
peak resident set size the kernel reports when it exits (wait4's ru_maxrss). Artefacts are made
first by `omzconv convert` (not measured). The goals (issue #9): every single command ≤ 6 GB, and
verifying several models in one command peaks at the largest single model's figure, not the sum —
each model's TensorFlow and OpenVINO memory is released before the next (`release_memory`).
Default models: the largest ones, vgg_19, vgg_16, inception_resnet_v2, inception_v4.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GB = 1024 ** 3


def peak(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(peak RSS in GB, wall seconds, exit code) of `omzconv args…` in a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "omzconv", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):  # 1: verified, some check failed — still a measurement
        sys.exit(f"omzconv {' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss * 1024 / GB, time.perf_counter() - started, process.returncode


def converted_synthetic(workdir: Path, names: list[str], *options: str) -> dict[str, str]:
    """Convert `names` with synthetic weights under `workdir` (not measured); the environment that
    points omzconv at that workdir, for the measured commands."""
    env = {**os.environ, "OMZCONV_CACHE_DIR": str(workdir / "cache"), "OMZCONV_OUTPUT_DIR": str(workdir / "out")}
    print(f"converting (not measured) under {workdir} …", flush=True)
    subprocess.run([sys.executable, "-m", "omzconv", "-q", "convert", *names, *options, "--synthetic-weights"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["vgg_19", "vgg_16", "inception_resnet_v2", "inception_v4"])
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-bench"))
    args = parser.parse_args()

    env = converted_synthetic(args.workdir, args.names)
    verify = ["-q", "verify", "--synthetic-weights", "--no-cache", "--data-dir", str(args.data_dir)]

    rows = []
    for name in args.names:
        rows.append((name, *peak([*verify, name], env)))
        print(f"  {name:24} {rows[-1][1]:5.2f} GB  {rows[-1][2]:6.1f} s", flush=True)
    together = peak([*verify, *args.names], env)
    largest = max(r[1] for r in rows)

    print(f"\nomzconv verify, synthetic weights, {args.data_dir.name}: peak resident memory")
    print(f"  {'models':40} {'peak GB':>8} {'wall s':>7}")
    for name, gb, seconds, _ in rows:
        print(f"  {name:40} {gb:8.2f} {seconds:7.1f}")
    print(f"  {'all ' + str(len(rows)) + ' in one command':40} {together[0]:8.2f} {together[1]:7.1f}")
    print(f"  one command ÷ largest single: {together[0] / largest:.2f} (goal ≈ 1; the sum would be "
          f"{sum(r[1] for r in rows) / largest:.2f}); largest single {largest:.2f} GB (goal ≤ 6)")


if __name__ == "__main__":
    main()
