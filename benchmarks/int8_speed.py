"""INT8 against FP32 throughput, and `omzconv benchmark` against `benchmark_app`, on this machine.

    python benchmarks/int8_speed.py [--models inception_v4,inception_resnet_v2] [--runs 3] [--seconds 10]
                                    [--data-dir ../shared/imagenet-sample] [--calibration-size 50]
                                    [--workdir /tmp/omzconv-int8-bench] [--reuse-int8] [--json]

1. Makes the synthetic-weight FP32 IRs if missing (`omzconv convert`, a few minutes the first time).
2. Quantizes each (`omzconv quantize --force`, real calibration images from --data-dir) in a fresh
   process, recording its wall time and peak RSS (skipped with --reuse-int8 if an INT8 IR exists).
   Synthetic weights run at the speed of real ones: speed depends on shapes, not values.
3. For --runs rounds, interleaved so background load hits every figure alike, per model:
   - omzconv FP32: the THROUGHPUT-hint loop `omzconv benchmark` runs (`benchmark.measure_throughput`);
   - benchmark_app FP32: `benchmark_app -m <FP32 xml> -hint throughput -t <seconds>` (runtime defaults,
     like omzconv: on CPUs with AMX/AVX512-BF16 both compute an FP32 IR in bf16), run through its
     own entry point with OpenVINO's telemetry blocked (the console script would phone home);
   - omzconv INT8, and omzconv FP32 forced to f32 (`--inference-precision f32`) for scale.
Prints the medians and the best figures over the rounds (on a machine shared with intermittent
work, the best of several short rounds estimates the unloaded speed), and the medians of the
per-round ratios (each pair measured back to back): INT8 ÷ FP32 (goal ≥ 3) and
omzconv ÷ benchmark_app (goal within 5 %). The 1-minute load average before each round is
recorded: on a shared 2-core machine anything else running moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from baselines import benchmark_app  # benchmarks/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]
QUANTIZE_PROBE = """
import json, resource, sys, time
from omzconv.cli import main
started = time.perf_counter()
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def omzconv(workdir: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    cmd = ["omzconv", "--cache-dir", str(workdir / "cache"), "-o", str(workdir / "out"), "-q", *args]
    return subprocess.run(cmd, check=True, text=True, capture_output=capture)


def quantize(workdir: Path, model: str, data_dir: Path, size: int) -> dict:
    args = ["--cache-dir", str(workdir / "cache"), "-o", str(workdir / "out"), "-q", "quantize", model,
            "--synthetic-weights", "--data-dir", str(data_dir), "--calibration-size", str(size),
            "--check-images", "20", "--force", "--json"]
    proc = subprocess.run([sys.executable, "-c", QUANTIZE_PROBE, *args], check=True, text=True, capture_output=True)
    probe = json.loads(proc.stderr.strip().splitlines()[-1])
    [result] = json.loads(proc.stdout)
    return {**probe, "agreement": result["check"]["agreement"], "agreement_images": result["check"]["images"],
            "size_mb": result["size"] / 1e6}


def omzconv_throughput(xml: Path, seconds: float, inference_precision: str | None = None) -> float:
    from omzconv.benchmark import _compile, measure_throughput
    from omzconv.ovcompat import import_openvino

    core = import_openvino().Core()
    compiled = _compile(core, core.read_model(str(xml)), "THROUGHPUT", inference_precision)
    return measure_throughput(compiled, seconds).images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="inception_v4,inception_resnet_v2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "imagenet-sample")
    parser.add_argument("--calibration-size", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/omzconv-int8-bench"))
    parser.add_argument("--reuse-int8", action="store_true", help="Keep an existing INT8 IR (no quantize timing).")
    parser.add_argument("--json", action="store_true", help="Also print the raw figures as JSON.")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    def ir(model: str, precision: str) -> Path:
        return args.workdir / "out" / "synthetic" / model / precision / f"{model}.xml"

    report: dict = {"load_before": os.getloadavg(), "models": {}}
    for model in models:
        if not ir(model, "FP32").is_file():
            print(f"{model}: converting FP32 (synthetic weights)…", file=sys.stderr)
            omzconv(args.workdir, "convert", model, "--synthetic-weights", "-p", "FP32")
        entry = report["models"].setdefault(model, {"runs": []})
        if not (args.reuse_int8 and ir(model, "INT8").is_file()):
            print(f"{model}: quantizing on {args.calibration_size} images…", file=sys.stderr)
            entry["quantize"] = quantize(args.workdir, model, args.data_dir, args.calibration_size)

    for run in range(args.runs):
        for model in models:
            figures = {
                "load_1min": os.getloadavg()[0],
                "omzconv_fp32": omzconv_throughput(ir(model, "FP32"), args.seconds),
                "benchmark_app_fp32": benchmark_app(ir(model, "FP32"), args.seconds),
                "omzconv_int8": omzconv_throughput(ir(model, "INT8"), args.seconds),
                "omzconv_fp32_f32": omzconv_throughput(ir(model, "FP32"), args.seconds, "f32"),
            }
            figures["int8_over_fp32"] = figures["omzconv_int8"] / figures["omzconv_fp32"]
            figures["int8_over_fp32_f32"] = figures["omzconv_int8"] / figures["omzconv_fp32_f32"]
            figures["omzconv_over_benchmark_app"] = figures["omzconv_fp32"] / figures["benchmark_app_fp32"]
            report["models"][model]["runs"].append(figures)
            print(f"run {run + 1} {model}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), file=sys.stderr,
                  flush=True)
    report["load_after"] = os.getloadavg()

    print(f"\nmedians over {args.runs} runs of {args.seconds:g} s (img/s); load average before "
          f"{report['load_before'][0]:.2f}, after {report['load_after'][0]:.2f}")
    for model, entry in report["models"].items():
        med = {k: statistics.median(r[k] for r in entry["runs"]) for k in entry["runs"][0]}
        best = {k: max(r[k] for r in entry["runs"]) for k in entry["runs"][0]}
        entry["median"], entry["best"] = med, best
        for label, f in (("median", med), ("best", best)):
            print(f"{model} {label}: FP32 omzconv {f['omzconv_fp32']:.2f} | benchmark_app {f['benchmark_app_fp32']:.2f} "
                  f"(omzconv/benchmark_app {f['omzconv_fp32'] / f['benchmark_app_fp32']:.3f}) | INT8 "
                  f"{f['omzconv_int8']:.2f} (INT8/FP32 {f['omzconv_int8'] / f['omzconv_fp32']:.2f}×) | FP32 computed "
                  f"in f32 {f['omzconv_fp32_f32']:.2f} (INT8/f32 {f['omzconv_int8'] / f['omzconv_fp32_f32']:.2f}×)")
        print(f"  median of the paired per-round ratios: omzconv/benchmark_app {med['omzconv_over_benchmark_app']:.3f}, "
              f"INT8/FP32 {med['int8_over_fp32']:.2f}×, INT8/FP32-in-f32 {med['int8_over_fp32_f32']:.2f}×; "
              f"1-min load average {min(r['load_1min'] for r in entry['runs']):.2f}–"
              f"{max(r['load_1min'] for r in entry['runs']):.2f}")
        if "quantize" in entry:
            q = entry["quantize"]
            print(f"  quantize: {q['seconds']:.1f} s, peak RSS {q['peak_rss_mb']:.0f} MB, INT8 IR {q['size_mb']:.1f} MB, "
                  f"top-1 agreement with FP32 {q['agreement']:.0%} of {q['agreement_images']} (synthetic weights)")
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
