"""`omzconv benchmark`: latency and throughput of the IRs and of the original frozen graph."""

from __future__ import annotations

from dataclasses import asdict

import click

from omzconv.cli import App
from omzconv.cli.progress import stage_status, transfer_bars
from omzconv.cli.ui import (FIXED, NAME, inference_precision_option, info, ir_interface_options, models_argument,
                            print_json, print_table, synthetic_option)
from omzconv.errors import UsageError

RUNTIMES = ("openvino", "tensorflow")


def _runtimes(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    items = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [v for v in items if v not in RUNTIMES]
    if unknown or not items:
        raise click.BadParameter(f"choose from {', '.join(RUNTIMES)} (comma-separated), got {value!r}")
    return items


@click.command("benchmark", short_help="Latency and throughput of each IR and of the frozen graph in TensorFlow.")
@models_argument
@synthetic_option
@click.option("-p", "--precisions", default="FP32,FP16,INT8", show_default=True,
              help="IR precisions to measure (FP32/FP16 are converted if missing; INT8 only if quantized).")
@click.option("--runtime", "runtimes", default="openvino,tensorflow", show_default=True, callback=_runtimes,
              help="openvino (the IRs), tensorflow (the original frozen graph), or both.")
@click.option("-t", "--time", "seconds", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per measurement, after warm-up [default: 10].")
@click.option("--iterations", type=click.IntRange(min=1),
              help="Run exactly this many iterations instead (excludes --time).")
@click.option("--tf-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Batch size of the TensorFlow throughput measurement.")
@inference_precision_option("[default: f32, the IR as written; on a CPU whose default is not f32, FP32@default "
                            "too]")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random input pixels.")
@ir_interface_options
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def command(app: App, names, all_models, synthetic, precisions, runtimes, seconds, iterations, tf_batch,
            inference_precisions, seed, input_type, layout, as_json) -> None:
    """Measure NAME... (or --all): latency (LATENCY hint, one request) and throughput (THROUGHPUT hint,
    the optimal number of parallel requests) of each IR, and the original frozen graph in TensorFlow
    (batch-1 latency, batched throughput). Prints the model's GFLOPs per image and the GFLOP/s reached.

    \b
    Inputs are random (seeded) pixels of the right shape and type. Close other work first: on a
    shared CPU the figures drop with the load. Threads and streams are the runtime's choice.
    Each IR precision × --inference-precision is its own row (FP32, FP32@bf16, ...), with what
    OpenVINO computed it in.
    """
    from omzconv.benchmark import DEFAULT_SECONDS, benchmark_model
    from omzconv.convert import parse_precisions
    from omzconv.execution import cpu_default_precision

    if seconds is not None and iterations is not None:
        raise UsageError("--time and --iterations exclude each other")
    if iterations is None:
        seconds = seconds or DEFAULT_SECONDS

    models = app.registry.select(names, all_models)
    wanted = parse_precisions(precisions, ("FP32", "FP16", "INT8"))
    workspace = app.workspace(synthetic)
    cpu_default = cpu_default_precision() if "openvino" in runtimes else None
    results = []
    for model in models:
        with transfer_bars(app.quiet) as add_bar, stage_status(model.name, app.quiet) as on_stage:
            results.append(benchmark_model(
                model, workspace, app.registry, precisions=wanted, runtimes=runtimes, seconds=seconds,
                iterations=iterations, seed=seed, tf_batch=tf_batch, inference_precisions=inference_precisions,
                cpu_default=cpu_default or "f32", input_type=input_type, layout=layout, progress=add_bar(model.name), on_stage=on_stage))
    if as_json:
        print_json({
            "settings": {"seconds": seconds, "iterations": iterations, "seed": seed, "tf_batch": tf_batch,
                         "inference_precisions": list(inference_precisions) or ["f32"],
                         "cpu_default_precision": cpu_default, "synthetic": synthetic,
                         **_machine()},
            "models": [asdict(r) for r in results],
        })
        return
    if cpu_default:
        from omzconv.execution import cpu_default_text

        info(cpu_default_text(cpu_default), quiet=app.quiet)
    for r in results:
        render(r)


def _machine() -> dict:
    import os
    import platform

    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    return {"cpu": ov.Core().get_property("CPU", "FULL_DEVICE_NAME"), "cpu_count": os.cpu_count(),
            "openvino_version": ov.__version__, "python": platform.python_version()}


RUNTIME_NAMES = {"openvino": "OpenVINO", "tensorflow": "TensorFlow"}
COLUMNS = ["run", "computes", "p50 ms", "p90 ms", "img/s", "req×b", "GFLOP/s", "vs FP32"]  # req×b: requests × batch
KINDS = [NAME, FIXED, FIXED, FIXED, FIXED, FIXED, FIXED, FIXED]


def _figure(value: float) -> str:
    """Four significant digits at most, so a column stays narrow: 0.812, 21.35, 101.4, 1881."""
    return f"{value:.0f}" if value >= 1000 else f"{value:.4g}" if value >= 1 else f"{value:.3f}"


def benchmark_rows(result) -> list[list[str]]:
    """One line per measurement: 75 columns wide whatever the figures (see COLUMNS)."""
    base = next((m.throughput.images_per_s for m in result.measurements
                 if m.runtime == "openvino" and (m.run or m.precision) == "FP32"), None)
    rows = []
    for m in result.measurements:
        run = RUNTIME_NAMES[m.runtime] + (f" {m.run or m.precision}" if m.runtime == "openvino" else "")
        rows.append([
            run, f"int8+{m.inference_precision}" if m.precision == "INT8" else m.inference_precision,
            _figure(m.latency.median_ms), _figure(m.latency.p90_ms), _figure(m.throughput.images_per_s),
            f"{m.throughput.requests}×{m.throughput.batch}", f"{m.gflops_per_s:.0f}",
            f"{m.throughput.images_per_s / base:.2f}×" if base else "-"])
    return rows


def render(result) -> None:
    weights = ", synthetic weights" if result.weights == "synthetic" else ""  # they run as fast as real ones
    print_table(f"{result.model}: {result.gflops:g} GFLOPs per image{weights}", COLUMNS, benchmark_rows(result),
                kinds=KINDS)
    from omzconv.execution import unavailable_text

    for m in result.measurements:
        note = unavailable_text(m.run, m.precision, m.requested, m.inference_precision) if m.run else ""
        if m.runtime == "openvino" and note:
            info(f"{result.model} {note}", quiet=False)
    for missing in result.missing:
        info(f"{result.model} {missing.precision}: {missing.reason}", quiet=False)
