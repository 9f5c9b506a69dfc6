"""How fast `omzconv verify` runs each runtime, against what the runtime can do at best.

    python benchmarks/verify_speed.py [--model inception_v4] [--runs 3] [--data-dir ../shared/imagenet-sample]

For each round (interleaved, so background load hits every measurement alike):

- TensorFlow baseline: a bare loop of batched session runs (batch 8) on the images decoded,
  preprocessed and normalized beforehand, in a session made the way omzconv makes it;
- OpenVINO baseline: `benchmark_app -m <FP32 xml> -hint throughput -t 15 -infer_precision f32`
  (f32 because omzconv runs IRs in f32: on CPUs with bf16 units the plugin would otherwise compute
  in bf16, which is another computation; the default-precision figure is printed once for scale);
- omzconv: `verify.evaluate_model` on the same images, cache off, whose per-runtime images/s
  counts each stage's whole wall time (waiting for decoded pixels + layout + inference +
  bookkeeping; see omzconv.verify.evaluate's docstring).

Prints the median of each over the rounds and the ratios omzconv ÷ baseline (goal ≥ 0.9). The
artefacts are synthetic-weight ones, built on first use under --workdir (a few minutes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from baselines import benchmark_app  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def tf_baseline(model, pb_path: Path, pixels: np.ndarray, output: str, batch: int = 8) -> float:
    """images/s of a bare batched session loop on pre-normalized NHWC tensors."""
    from omzconv.preprocess import to_nhwc_normalized
    from omzconv.runners import load_graph_def
    from omzconv.tfcompat import import_tf, session_config

    tf = import_tf()
    graph = tf.Graph()
    with graph.as_default():
        x = tf.placeholder(tf.float32, [None, *model.input.shape[1:]])
        (y,) = tf.import_graph_def(load_graph_def(pb_path), input_map={f"{model.input.name}:0": x},
                                   return_elements=[f"{output}:0"], name="")
    pre = model.preprocessing
    batches = [to_nhwc_normalized(pixels[i:i + batch], pre.mean, pre.scale) for i in range(0, len(pixels), batch)]
    with tf.Session(graph=graph, config=session_config()) as session:
        session.run(y, {x: batches[0][:1]})  # warm-up, as benchmark_app does
        started = time.perf_counter()
        for b in batches:
            session.run(y, {x: b})
        return len(pixels) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="inception_v4")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-bench"))
    parser.add_argument("--seconds", type=int, default=15, help="benchmark_app -t")
    args = parser.parse_args()

    from omzconv import verify
    from omzconv.preprocess import prepare
    from omzconv.registry import load_registry
    from omzconv.workspace import Workspace

    registry = load_registry(ROOT / "models.yaml")
    model = registry.model(args.model)
    workspace = Workspace(args.workdir / "cache", args.workdir / "out", synthetic=True)
    print(f"preparing synthetic artefacts of {model.name} under {args.workdir} …", flush=True)
    artefacts = verify.ensure_artefacts(model, workspace, registry, ["FP32"])
    selection = verify.select_images(registry.dataset("imagenet-val"), args.data_dir)
    pre = model.preprocessing
    pixels = np.stack([prepare(r.path, pre) for r in selection.records])
    xml = artefacts.converted[0].path
    print(f"{len(pixels)} images; IR {xml}", flush=True)
    print(f"benchmark_app at the plugin's default precision (for scale): "
          f"{benchmark_app(xml, args.seconds, None):.2f} FPS", flush=True)

    figures: dict[str, list[float]] = {k: [] for k in ("tf_base", "ov_base", "tf_verify", "ov_verify", "verify_wall")}
    for i in range(args.runs):
        figures["tf_base"].append(tf_baseline(model, artefacts.original.path, pixels, artefacts.output))
        figures["ov_base"].append(benchmark_app(xml, args.seconds, "f32"))
        started = time.perf_counter()
        report = verify.evaluate_model(model, artefacts, selection, registry.tolerances, cache_dir=None)
        figures["verify_wall"].append(len(pixels) / (time.perf_counter() - started))
        runs = {r.name: r for r in report.runs}
        figures["tf_verify"].append(runs["original"].images_per_second)
        figures["ov_verify"].append(runs["FP32"].images_per_second)
        print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in figures.items()), flush=True)

    med = {k: statistics.median(v) for k, v in figures.items()}
    # the median of per-round ratios resists background load better than a ratio of medians
    tf_ratio = statistics.median(v / b for v, b in zip(figures["tf_verify"], figures["tf_base"]))
    ov_ratio = statistics.median(v / b for v, b in zip(figures["ov_verify"], figures["ov_base"]))
    print(f"\n{model.name}, {len(pixels)} images, medians of {args.runs} rounds (images/s):")
    print(f"  TensorFlow  bare batched loop {med['tf_base']:6.2f} | verify stage {med['tf_verify']:6.2f} | "
          f"ratio of medians {med['tf_verify'] / med['tf_base']:.2f}, median of round ratios {tf_ratio:.2f}")
    print(f"  OpenVINO    benchmark_app f32 {med['ov_base']:6.2f} | verify stage {med['ov_verify']:6.2f} | "
          f"ratio of medians {med['ov_verify'] / med['ov_base']:.2f}, median of round ratios {ov_ratio:.2f}")
    print(f"  whole verify (original + FP32, decode once): {med['verify_wall']:.2f} images/s")


if __name__ == "__main__":
    main()
