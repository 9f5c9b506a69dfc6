"""What the verify criteria see, for correct and for deliberately broken conversions.

    python benchmarks/verify_tolerances.py [NAME] [--data-dir ../shared/imagenet-sample] [--workdir DIR]

For each IR precision (FP32, FP16, INT8 quantized on 50 of the images and measured on the others)
of a synthetic-weight model, on the same images: the per-image max |Δp| against the original
(max and 99th percentile), and for a series of top-1/top-2 margins of the original how many images
are decisive (margin above it) and on how many of those the IR's top-1 differs. The same for
the IR fed broken inputs, as a conversion bug would: colour channels swapped (the IR made without
reversing RGB → BGR), the mean off by 8 levels, the scale off by 3 %. The tolerances in
models.yaml are chosen from these figures (README, Verify).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MARGINS = (1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 0.9)
BROKEN = {
    "correct": lambda x: x,
    "RGB/BGR swapped": lambda x: x[..., ::-1],
    "mean off by 8": lambda x: np.clip(x + 8.0, 0, 255),
    "scale off by 3 %": lambda x: x * 0.97,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?", default="mobilenet_v1_025_128")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-tolerances"))
    parser.add_argument("--correct-only", action="store_true", help="Skip the broken variants.")
    args = parser.parse_args()
    base = [sys.executable, "-m", "omzconv", "-q", "-o", str(args.workdir / "out"),
            "--cache-dir", str(args.workdir / "cache")]
    subprocess.run([*base, "convert", args.name, "--synthetic-weights", "-p", "FP32,FP16"], check=True)
    subprocess.run([*base, "quantize", args.name, "--synthetic-weights", "--data-dir", str(args.data_dir),
                    "--calibration-size", "50", "--check-images", "0"], check=True)

    from omzconv.registry import load_registry
    from omzconv.verify import ORIGINAL, ensure_artefacts, evaluate_model, open_runner, select_images
    from omzconv.workspace import Workspace

    registry = load_registry(None)
    model = registry.model(args.name)
    workspace = Workspace(args.workdir / "cache", args.workdir / "out", synthetic=True)
    artefacts = ensure_artefacts(model, workspace, registry, ["FP32", "FP16", "INT8"])
    selection = select_images(registry.dataset("imagenet-val"), args.data_dir)
    for variant, alter in list(BROKEN.items())[:1 if args.correct_only else None]:
        def factory(m, artefact, outputs, alter=alter):
            runner = open_runner(m, artefact, outputs)
            if artefact.runtime == "tensorflow":
                return runner
            infer = runner.infer
            runner.infer = lambda batch, on_done=None: infer(alter(np.asarray(batch, np.float32)), on_done)
            return runner

        report = evaluate_model(model, artefacts, selection, registry.tolerances, runner_factory=factory)
        data = report.per_image
        margin = data.prob[ORIGINAL][:, 0] - data.prob[ORIGINAL][:, 1]
        print(f"\n== {args.name}, {variant} ==")
        for precision in ("FP32", "FP16", "INT8"):
            mask = data.measured[precision]
            d = data.dmax[(precision, ORIGINAL)][mask]
            flips = (data.top[precision][:, 0] != data.top[ORIGINAL][:, 0])[mask]
            m = margin[mask]
            cells = []
            for limit in MARGINS:
                decisive = m > limit
                cells.append(f">{limit:g}: {int((flips & decisive).sum())}/{int(decisive.sum())}")
            worst = float(m[flips].max()) if flips.any() else 0.0
            print(f"{precision}: {mask.sum()} images, max |Δp| {d.max():.2e}, p99 {np.quantile(d, 0.99):.2e}, "
                  f"top-1 changed on {int(flips.sum())} (largest margin flipped {worst:.3g})")
            print("   changed/decisive at margin " + ", ".join(cells))


if __name__ == "__main__":
    main()
