"""convert -p FP16 --keep-precision auto on synthetic weights: what is kept, what it buys, what it costs.

For each model: the plain FP16 IR is made (not measured), then `--keep-precision auto` against a
models.yaml whose FP16 `max_prob_delta` is tightened so that the plain IR fails it (synthetic
weights' FP16 error is ~1e-2; the shipped tolerance, 0.1, would keep nothing). Printed: the CPU and
what OpenVINO computes in, then per model the ops kept, top-1 agreement and max |Δp| with the
original on the held-out images before → after, and the repaired IR's speed against the plain
FP16 IR's (medians of --rounds interleaved benchmark_ir runs). Finally, on the last model, what
each convolution ran in when compiled with INFERENCE_PRECISION_HINT=bf16, marked vs unmarked.

    python benchmarks/keep_precision.py [--workdir /tmp/omzconv-keep] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIGHT = {"inception_v4": 2e-3, "mobilenet_v1_025_128": 5e-3}  # FP16 max |Δp| the plain IRs fail


def cpu() -> str:
    text = Path("/proc/cpuinfo").read_text()
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f in flags]
    return f"{name}; {', '.join(have) or 'none of avx2/avx512/amx'}"


def execution(core, xml: Path) -> str:
    got = []
    for hint in (None, "bf16", "f16"):
        config = {"INFERENCE_PRECISION_HINT": hint} if hint else {}
        compiled = core.compile_model(core.read_model(str(xml)), "CPU", config)
        got.append(f"{hint or 'no hint'} → {compiled.get_property('INFERENCE_PRECISION_HINT').to_string()}")
    return "; ".join(got)


def runtime_precisions(core, xml: Path, marked: set[str]) -> dict[str, dict[str, int]]:
    """Per group (marked, unmarked): runtimePrecision → how many convolutions/matmuls ran in it."""
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    counts: dict[str, dict[str, int]] = {"marked": {}, "unmarked": {}}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else ""
        if kind not in ("Convolution", "FullyConnected", "MatMul"):
            continue
        names = set(info["originalLayersNames"].astype(str).split(",")) if "originalLayersNames" in info else set()
        group = counts["marked" if names & marked else "unmarked"]
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
        group[precision] = group.get(precision, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(TIGHT))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-keep"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per timed loop")
    parser.add_argument("--held-out", type=int, default=20)
    parser.add_argument("--ranking", type=int, default=8)
    args = parser.parse_args()

    import openvino as ov

    from omzconv.benchmark import benchmark_ir
    from omzconv.pipeline import ensure_converted
    from omzconv.registry import load_registry
    from omzconv.repair import KeepRequest, RepairSettings
    from omzconv.workspace import Workspace, default_cache_dir

    core = ov.Core()
    print(f"CPU: {cpu()}")
    print(f"OpenVINO {ov.get_version()}; OPTIMIZATION_CAPABILITIES: "
          f"{', '.join(core.get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}")
    ws = Workspace(default_cache_dir(), args.workdir / "out", synthetic=True)
    base = load_registry(ROOT / "models.yaml")
    rows, last = [], None
    for name in args.names:
        text = (ROOT / "models.yaml").read_text()
        tight = text.replace("FP16: {top1_pp: 0.3, max_prob_delta: 0.1,",
                             f"FP16: {{top1_pp: 0.3, max_prob_delta: {TIGHT.get(name, 2e-3):g},")
        path = args.workdir / f"models-{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tight)
        registry = load_registry(path)
        model = base.model(name)
        plain = ensure_converted(model, ws, base, "FP16", keep="none").path
        plain_copy = args.workdir / "plain" / name / plain.name
        plain_copy.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".xml", ".bin"):
            shutil.copy(plain.with_suffix(suffix), plain_copy.with_suffix(suffix))
        if name == args.names[0]:
            print(f"execution precision of an FP16 IR here: {execution(core, plain_copy)}")
        started = time.perf_counter()
        result = ensure_converted(model, ws, registry, "FP16", keep=KeepRequest("auto"), force=True,
                                  repair=RepairSettings(None, args.ranking, args.held_out, speed_seconds=0))
        seconds = time.perf_counter() - started
        kept = result.kept
        ratios, lat = [], []
        for _ in range(args.rounds):
            p = benchmark_ir(model, plain_copy, "FP16", seconds=args.seconds)
            k = benchmark_ir(model, result.path, "FP16", seconds=args.seconds)
            ratios.append(k.throughput.images_per_s / p.throughput.images_per_s)
            lat.append(k.latency.median_ms / p.latency.median_ms)
        held = kept["results"]["held_out"]
        rows.append((name, TIGHT.get(name, 2e-3), kept, held, statistics.median(ratios), statistics.median(lat), seconds))
        last = (result.path, set(kept["ops"]))

    print(f"\nFP16 --keep-precision auto, synthetic weights, {args.ranking} ranking + {args.held_out} held-out "
          f"procedural images, speed: median of {args.rounds} rounds × {args.seconds:g} s")
    print(f"  {'model':22} {'tol':>6} {'layers':>7} {'ops':>5} {'top-1 before→after':>19} "
          f"{'max|Δp| before→after':>22} {'img/s ×':>8} {'lat ×':>6} {'took':>6}")
    for name, tol, kept, held, ratio, latency, seconds in rows:
        b, a = held["before"], held["after"]
        print(f"  {name:22} {tol:6.0e} {len(kept['layers']):7} {len(kept['ops']):5} "
              f"{b['top1_agreement']:8.0%} → {a['top1_agreement']:4.0%}   {b['max_prob_delta']:9.1e} → "
              f"{a['max_prob_delta']:8.1e} {ratio:8.2f} {latency:6.2f} {seconds:5.0f}s")
        print(f"    kept: {', '.join('/'.join(t.split('/')[-2:]) for t in kept['layers'][:6])}"
              f"{' …' if len(kept['layers']) > 6 else ''}; {kept['weights_kept']} weights f32; "
              f"judged {len(kept['tried'])} prefixes")
    if last and last[1]:
        counts = runtime_precisions(core, *last)
        print(f"\nruntimePrecision with INFERENCE_PRECISION_HINT=bf16 ({args.names[-1]}, convolutions/matmuls): "
              f"marked {counts['marked']}, unmarked {counts['unmarked']}")


if __name__ == "__main__":
    main()
