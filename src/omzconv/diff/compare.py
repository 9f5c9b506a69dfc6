"""Run the original and an IR on the same images with every matched layer as an output, and compare.

Per matched layer, over all images (the IR's NCHW activations transposed to NHWC; both in the same
units, since the IR folds the input's mean and scale into its first ops): the relative error
‖a − b‖ / ‖a‖ (a the original's values, b the IR's, norms over every element of every image), the
cosine similarity, and max |Δ|. Only sums are kept, image by image, so memory is one image's
activations per runtime; layers are fetched in groups when those would exceed `group_bytes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzconv.diff.match import Layer, Matching, match, ov_graph, tf_graph
from omzconv.registry import Model

GROUP_BYTES = 1 << 30  # per image and runtime: activations fetched at once
FLOOR = 1e-5  # "error before" below this counts as this much (f32 rounding noise is ~1e-7..1e-6)


@dataclass(frozen=True)
class RunSpec:
    name: str  # e.g. "FP16@bf16"
    precision: str  # the IR's: FP32, FP16, INT8
    xml: Path
    inference_precision: str  # f32, bf16, f16 or default (no hint)


@dataclass(frozen=True)
class LayerError:
    layer: Layer
    rel_error: float
    cosine: float
    max_abs: float
    scale: float  # ‖a‖ / sqrt(n): the original's RMS, to read max |Δ| against
    before: float  # the largest rel_error among the matched layers feeding it (0: none)

    @property
    def gain(self) -> float:
        """How much this layer multiplies the error it receives."""
        return self.rel_error / max(self.before, FLOOR)


@dataclass(frozen=True)
class RunDiff:
    spec: RunSpec
    executed_in: str  # what OpenVINO computed in (compiled INFERENCE_PRECISION_HINT)
    matching: Matching
    layers: tuple[LayerError, ...]  # in topological order
    groups: int
    seconds: float


def _accumulate(stats: np.ndarray, k: int, a: np.ndarray, b: np.ndarray) -> None:
    """Add one image's sums for layer `k`: ‖d‖², ‖a‖², ‖b‖², a·b (BLAS dot products in f32, summed in
    f64 across images), and the running max |d|."""
    a = np.ascontiguousarray(a, np.float32).ravel()
    b = np.ascontiguousarray(b, np.float32).ravel()
    if a.size != b.size:
        raise ValueError(f"layer {k}: {a.size} values in TensorFlow, {b.size} in the IR")
    d = b - a
    stats[k, :4] += (float(np.dot(d, d)), float(np.dot(a, a)), float(np.dot(b, b)), float(np.dot(a, b)))
    stats[k, 4] = max(stats[k, 4], float(np.abs(d).max(initial=0.0)))
    stats[k, 5] += a.size


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def groups_of(layers: Sequence[Layer], budget: int) -> list[list[Layer]]:
    """Consecutive layers, as few groups as fit `budget` bytes of f32 activations per image."""
    out: list[list[Layer]] = [[]]
    used = 0
    for layer in layers:
        size = 4 * int(np.prod(layer.shape or (1,)))
        if out[-1] and used + size > budget:
            out.append([])
            used = 0
        out[-1].append(layer)
        used += size
    return out


def errors(layers: Sequence[Layer], stats: np.ndarray) -> tuple[LayerError, ...]:
    rel = np.sqrt(stats[:, 0]) / np.maximum(np.sqrt(stats[:, 1]), 1e-30)
    cos = stats[:, 3] / np.maximum(np.sqrt(stats[:, 1] * stats[:, 2]), 1e-30)
    scale = np.sqrt(stats[:, 1] / np.maximum(stats[:, 5], 1))
    result = []
    for layer in layers:
        k = layer.index
        before = max((float(rel[i]) for i in layer.inputs), default=0.0)
        result.append(LayerError(layer, float(rel[k]), float(cos[k]), float(stats[k, 4]), float(scale[k]), before))
    return tuple(result)


def diff_run(model: Model, tf_runner: Any, spec: RunSpec, images: np.ndarray, *, core: Any = None,
             group_bytes: int = GROUP_BYTES, on_image: Callable[[int], None] = lambda n: None) -> RunDiff:
    """Compare one IR run with the original (`tf_runner`, a `runners.TFRunner` on the frozen graph)."""
    from omzconv.execution import executed_of, hint_config
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import compile_config, ir_input_of

    ov = import_openvino()
    started = time.perf_counter()
    core = core or ov.Core()
    ov_model = core.read_model(str(spec.xml))
    output = tf_runner.outputs[0]
    matching = match(tf_graph(tf_runner.graph, tf_runner.input_op, output), ov_graph(ov_model))
    ops = {op.get_name(): op for op in ov_model.get_ordered_ops()}
    lay_out = ir_input_of(ov_model).lay_out
    config = hint_config(spec.inference_precision)
    stats = np.zeros((len(matching.layers), 6))
    groups = groups_of(matching.layers, group_bytes)
    executed = "?"
    for group in groups:
        added = ov_model.add_outputs([ops[layer.ov_node].output(layer.ov_port) for layer in group])
        try:
            compiled = core.compile_model(ov_model, "CPU", compile_config("LATENCY", config))
        finally:
            for port in added:
                ov_model.remove_result(port.get_node())
        executed = executed_of(compiled)
        ports = [compiled.output(port.get_any_name()) for port in added]
        request = compiled.create_infer_request()
        tensors = [layer.tf_tensor for layer in group]
        for i in range(len(images)):
            x = images[i:i + 1]
            tf_values = tf_runner.fetch(x, tensors)
            result = request.infer({0: lay_out(x)})
            for layer, a, port in zip(group, tf_values, ports):
                _accumulate(stats, layer.index, a, _nhwc(np.asarray(result[port])))
            on_image(1)
        del compiled, request
    return RunDiff(spec, executed, matching, errors(matching.layers, stats), len(groups),
                   time.perf_counter() - started)
