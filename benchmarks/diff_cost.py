"""What `omzconv diff` costs next to a plain `omzconv verify` of the same images.

    python benchmarks/diff_cost.py [NAME] [-p FP16] [--images 8] [--runs 3] [--data-dir DIR] [--workdir DIR]

Each measurement is a fresh process (wall time, and the peak resident set size the kernel reports
when it exits: `verify_memory.peak`), rounds interleaved, medians reported:
  verify NAME -p P --limit N --no-cache   (the original and the IR on N images, the usual outputs)
  diff NAME -p P --images N               (the same N images, every matched layer an output of both)
Artefacts are made first (not measured). Goal (issue 18): diff ≤ 3× verify's time, ≤ 4 GB peak,
for inception_resnet_v2 FP16 on 8 images.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from verify_memory import ROOT, converted_synthetic, peak  # the same fresh-process measurement as the verify benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", default="inception_resnet_v2")
    parser.add_argument("-p", "--precision", default="FP16")
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-bench"))
    args = parser.parse_args()

    env = converted_synthetic(args.workdir, [args.name], "-p", args.precision)
    common = ["--synthetic-weights", "-p", args.precision, "--data-dir", str(args.data_dir)]
    commands = {
        "verify": ["-q", "verify", args.name, *common, "--limit", str(args.images), "--no-cache",
                   "--report", str(args.workdir / "verify.json")],
        "diff": ["-q", "diff", args.name, *common, "--images", str(args.images),
                 "--report", str(args.workdir / "diff.html")],
    }
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
    for round_ in range(args.runs):
        for what, command in commands.items():
            gb, seconds, _ = peak(command, env)
            results[what].append((gb, seconds))
            print(f"  round {round_ + 1}: {what:6} {seconds:6.1f} s  {gb:5.2f} GB", flush=True)
    summary = {what: {"seconds": statistics.median(s for _, s in r), "peak_gb": max(g for g, _ in r)}
               for what, r in results.items()}
    ratios = [d[1] / v[1] for v, d in zip(results["verify"], results["diff"])]
    summary["time_ratio"] = statistics.median(ratios)
    print(f"\n{args.name} {args.precision}, {args.images} images of {args.data_dir.name}, medians of {args.runs}:")
    print(f"  verify {summary['verify']['seconds']:6.1f} s, peak {summary['verify']['peak_gb']:.2f} GB")
    print(f"  diff   {summary['diff']['seconds']:6.1f} s, peak {summary['diff']['peak_gb']:.2f} GB")
    print(f"  diff ÷ verify: {summary['time_ratio']:.2f}× (goal ≤ 3×; peak goal ≤ 4 GB)")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
