"""How fast the IRs run on this machine, and the original frozen graph in TensorFlow.

OpenVINO: latency is one request at a time with the LATENCY hint (median and 90th percentile of
the runtime's own per-request timing); throughput uses the THROUGHPUT hint with the compiled
model's optimal number of requests in an `AsyncInferQueue`, counted the way `benchmark_app`
counts it (iterations / wall time of the loop, inputs prepared once). Threads and streams are the
runtime's choice; the execution precision is asked per run (`omzconv.execution`: `FP32` pinned to
f32, `FP32@bf16`, `FP32@default` the plugin's own choice — bf16 on CPUs with AMX or AVX512-BF16),
and each measurement records what OpenVINO computed in. TensorFlow: batch-1 latency and batched
throughput of `session.run`.

Inputs are random but seeded, of the model's shape and element type: speed does not depend on
pixel values. Every loop warms up first, then runs until `seconds` have passed (or exactly
`iterations` times).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omzconv.registry import Model, Registry
from omzconv.workspace import Workspace

DEFAULT_SECONDS = 10.0
DEFAULT_SEED = 0
TF_BATCH = 8
WARMUP = 2
RUNTIMES = ("openvino", "tensorflow")
PRECISIONS = ("FP32", "FP16", "INT8")

Stage = Callable[..., None]  # on_stage(text, done=None, total=None)


def _quiet(stage: str, done: float | None = None, total: float | None = None) -> None:
    pass


@dataclass(frozen=True)
class Timing:
    """One timed loop. Latencies are per request (OpenVINO) or per `session.run` (TensorFlow)."""

    mode: str  # "latency" or "throughput"
    hint: str | None  # the OpenVINO performance hint; None for TensorFlow
    batch: int
    requests: int  # requests in flight
    iterations: int
    seconds: float
    median_ms: float
    p90_ms: float
    images_per_s: float


@dataclass(frozen=True)
class Measurement:
    runtime: str  # "openvino" or "tensorflow"
    precision: str  # of the IR; "FP32" for the frozen graph
    path: str
    inference_precision: str  # what the runtime computed in, e.g. "bf16", "f32"
    latency: Timing
    throughput: Timing
    gflops_per_s: float  # throughput x the model's GFLOPs per image
    run: str = ""  # IR precision × execution precision asked: "FP32", "FP32@bf16" (execution.run_name)
    requested: str = "f32"  # the execution precision asked: f32, bf16, f16 or default


@dataclass(frozen=True)
class Missing:
    runtime: str
    precision: str
    reason: str


@dataclass(frozen=True)
class ModelBenchmark:
    model: str
    gflops: float
    weights: str
    measurements: list[Measurement]
    missing: list[Missing]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation); 0.0 for no values."""
    import numpy as np

    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else 0.0


def _timing(mode: str, hint: str | None, batch: int, requests: int, latencies_ms: Sequence[float],
            iterations: int, seconds: float) -> Timing:
    return Timing(mode, hint, batch, requests, iterations, round(seconds, 4), round(percentile(latencies_ms, 50), 3),
                  round(percentile(latencies_ms, 90), 3), round(batch * iterations / seconds, 3) if seconds else 0.0)


def _keep_going(started: float, done: int, seconds: float, iterations: int | None) -> bool:
    if iterations is not None:
        return done < iterations
    return time.perf_counter() - started < seconds


def random_input(shape: Sequence[int], element_type: str, seed: int = DEFAULT_SEED) -> Any:
    """Seeded random pixels in 0..255 of `shape`: uint8 for "u8", float32 otherwise."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if element_type == "u8":
        return rng.integers(0, 256, size=tuple(shape), dtype=np.uint8)
    return rng.uniform(0.0, 255.0, size=tuple(shape)).astype(np.float32)


# --- OpenVINO --------------------------------------------------------------------------------------


def _compile(core: Any, ov_model: Any, hint: str, inference_precision: str) -> Any:
    from omzconv.execution import hint_config

    return core.compile_model(ov_model, "CPU", {"PERFORMANCE_HINT": hint, **hint_config(inference_precision)})


def _input_tensor(ov: Any, compiled: Any, seed: int) -> Any:
    port = compiled.input(0)
    data = random_input(list(port.get_shape()), port.get_element_type().to_string(), seed)
    return ov.Tensor(data)


def measure_latency(compiled: Any, seconds: float = DEFAULT_SECONDS, iterations: int | None = None,
                    seed: int = DEFAULT_SEED, warmup: int = WARMUP) -> Timing:
    """Synchronous requests one after another: the LATENCY-hint figure."""
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    request = compiled.create_infer_request()
    request.set_input_tensor(_input_tensor(ov, compiled, seed))
    for _ in range(warmup):
        request.infer()
    latencies, done = [], 0
    started = time.perf_counter()
    while _keep_going(started, done, seconds, iterations):
        request.infer()
        latencies.append(request.latency)
        done += 1
    elapsed = time.perf_counter() - started
    return _timing("latency", "LATENCY", _batch(compiled), 1, latencies, done, elapsed)


def measure_throughput(compiled: Any, seconds: float = DEFAULT_SECONDS, iterations: int | None = None,
                       seed: int = DEFAULT_SEED, warmup: int = 1) -> Timing:
    """The optimal number of requests kept in flight: the THROUGHPUT-hint figure, as benchmark_app
    measures it (iterations / wall time; the loop ends on a whole round of requests)."""
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    nireq = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    queue = ov.AsyncInferQueue(compiled, nireq)
    for i, request in enumerate(queue):
        request.set_input_tensor(_input_tensor(ov, compiled, seed + i))
    for _ in range(warmup * nireq):
        queue.start_async()
    queue.wait_all()
    latencies, done, in_flight = [], 0, set()
    started = time.perf_counter()
    while _keep_going(started, done, seconds, iterations) or done % nireq:
        idle = queue.get_idle_request_id()
        if idle in in_flight:
            latencies.append(queue[idle].latency)
        in_flight.add(idle)
        queue.start_async()
        done += 1
    queue.wait_all()
    elapsed = time.perf_counter() - started
    latencies.extend(queue[i].latency for i in in_flight)
    return _timing("throughput", "THROUGHPUT", _batch(compiled), nireq, latencies, done, elapsed)


def _batch(compiled: Any) -> int:
    shape = compiled.input(0).get_shape()
    return int(shape[0]) if len(shape) else 1


def benchmark_ir(model: Model, xml_path: Path, precision: str, *, seconds: float = DEFAULT_SECONDS,
                 iterations: int | None = None, seed: int = DEFAULT_SEED, inference_precision: str = "f32",
                 on_stage: Stage = _quiet) -> Measurement:
    """Latency and throughput of one IR on the CPU, computed in `inference_precision` (f32: the IR
    as written; `default`: the plugin's choice)."""
    from omzconv.execution import executed_of, run_name
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    core = ov.Core()
    ov_model = core.read_model(str(xml_path))
    name = run_name(precision, inference_precision)
    on_stage(f"OpenVINO {name} latency")
    compiled = _compile(core, ov_model, "LATENCY", inference_precision)
    executed = executed_of(compiled)
    latency = measure_latency(compiled, seconds, iterations, seed)
    del compiled
    on_stage(f"OpenVINO {name} throughput")
    compiled = _compile(core, ov_model, "THROUGHPUT", inference_precision)
    throughput = measure_throughput(compiled, seconds, iterations, seed)
    del compiled
    return Measurement("openvino", precision, str(xml_path), executed, latency, throughput,
                       round(throughput.images_per_s * model.gflops, 2), name, inference_precision)


# --- TensorFlow --------------------------------------------------------------------------------


def benchmark_frozen_graph(model: Model, pb_path: Path, outputs: Sequence[str], *,
                           seconds: float = DEFAULT_SECONDS, iterations: int | None = None,
                           seed: int = DEFAULT_SEED, batch: int = TF_BATCH, on_stage: Stage = _quiet) -> Measurement:
    """Batch-1 latency and batch-`batch` throughput of the frozen graph in a TensorFlow session."""
    from omzconv.runners import TFRunner

    on_stage("loading the frozen graph in TensorFlow")
    runner = TFRunner(model, outputs, pb_path=pb_path)
    h, w, c = model.input.shape[1:]
    try:
        timings = []
        for mode, n in (("latency", 1), ("throughput", batch)):
            on_stage(f"TensorFlow {mode} (batch {n})")
            x = random_input((n, h, w, c), "f32", seed)
            for _ in range(WARMUP if n == 1 else 1):
                runner.run(x)
            latencies, done = [], 0
            started = time.perf_counter()
            while _keep_going(started, done, seconds, iterations):
                t0 = time.perf_counter()
                runner.run(x)
                latencies.append((time.perf_counter() - t0) * 1000)
                done += 1
            timings.append(_timing(mode, None, n, 1, latencies, done, time.perf_counter() - started))
    finally:
        runner.close()
    latency, throughput = timings
    return Measurement("tensorflow", "FP32", str(pb_path), "f32", latency, throughput,
                       round(throughput.images_per_s * model.gflops, 2), "original")


# --- per model ---------------------------------------------------------------------------------


def benchmark_model(model: Model, workspace: Workspace, registry: Registry, *,
                    precisions: Sequence[str] = PRECISIONS, runtimes: Sequence[str] = RUNTIMES,
                    seconds: float = DEFAULT_SECONDS, iterations: int | None = None, seed: int = DEFAULT_SEED,
                    tf_batch: int = TF_BATCH, inference_precisions: Sequence[str] = (),
                    cpu_default: str = "f32", input_type: str | None = None, layout: str | None = None,
                    progress: Any = None, on_stage: Stage = _quiet) -> ModelBenchmark:
    """Every requested precision's IR (FP32/FP16 converted if missing; INT8 only if present), with the
    input interface `input_type`/`layout` select (default: models.yaml's), computed in each of
    `inference_precisions` (none: as `execution.plan_runs` decides with `cpu_default`), and the frozen
    graph."""
    from omzconv.execution import plan_runs

    from omzconv.pipeline import ensure_converted, ensure_graph, frozen_outputs
    from omzconv.workspace import ir_variant

    variant = ir_variant(model, input_type, layout)
    measurements: list[Measurement] = []
    missing: list[Missing] = []
    if "openvino" in runtimes:
        for precision in precisions:
            xml = workspace.ir_path(model, precision, variant)
            if not xml.is_file():
                if precision == "INT8":
                    options = " --synthetic-weights" if workspace.synthetic else ""
                    options += f" --input-type {input_type}" if input_type else ""
                    options += f" --layout {layout}" if layout else ""
                    missing.append(Missing("openvino", precision, (
                        f"no INT8 IR at {xml}; make it with `omzconv quantize {model.name} --data-dir DIR{options}`")))
                    continue
                ensure_converted(model, workspace, registry, precision, input_type=input_type, layout=layout,
                                 progress=progress, on_stage=on_stage)
            for run in plan_runs([precision], inference_precisions, cpu_default):
                measurements.append(benchmark_ir(model, xml, precision, seconds=seconds, iterations=iterations,
                                                 seed=seed, inference_precision=run.inference_precision,
                                                 on_stage=on_stage))
    if "tensorflow" in runtimes:
        pb_path, _ = ensure_graph(model, workspace, progress=progress, on_stage=on_stage)
        measurements.append(benchmark_frozen_graph(
            model, pb_path, frozen_outputs(model, workspace), seconds=seconds, iterations=iterations, seed=seed,
            batch=tf_batch, on_stage=on_stage))
    return ModelBenchmark(model.name, model.gflops, _weights(model, workspace), measurements, missing)


def _weights(model: Model, workspace: Workspace) -> str:
    from omzconv.errors import GraphError
    from omzconv.pipeline import frozen_weights

    if workspace.synthetic:
        return "synthetic"
    try:
        return frozen_weights(model, workspace)
    except GraphError:  # no frozen graph (or no sidecar): IRs copied in by hand
        return "unknown"

