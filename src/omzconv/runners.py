"""Run the original (TensorFlow frozen graph) and the converted (OpenVINO IR) model alike.

Both runners take the same thing — a batch of prepared RGB pixels, float32 N x H x W x 3 in
0..255 units (see `omzconv.preprocess`) — and each lays it out the way its model expects: the
frozen graph gets RGB NHWC `(x - mean) / scale`, the IR gets its declared layout, colour order and
element type, raw (it folds mean and scale itself). Any difference in what they return is the
conversion's alone. Outputs come back by name as float32 arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzconv.errors import GraphError
from omzconv.preprocess import to_nhwc_normalized
from omzconv.registry import Model

OnDone = Callable[[int], None]  # called with the number of images just finished
TF_BATCH = 8


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z, dtype=np.float64)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def probabilities(model: Model, output: str, values: np.ndarray) -> np.ndarray:
    """Softmax probabilities of an output, whether it holds logits or probabilities already."""
    values = values.reshape(values.shape[0], -1)
    return values if model.output(output).kind == "probabilities" else softmax(values)


def top_margin(probs: np.ndarray) -> np.ndarray:
    """Per image, the top-1 minus the top-2 probability: how decisive a prediction is (an image whose
    margin is within a precision's tie_margin is a near-tie that its rounding may reorder)."""
    top2 = np.sort(probs, axis=-1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def load_graph_def(pb_path: Path) -> Any:
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    graph_def = tf.GraphDef()
    try:
        graph_def.ParseFromString(Path(pb_path).read_bytes())
    except OSError as exc:
        raise GraphError(f"cannot read frozen graph {pb_path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # protobuf's DecodeError
        raise GraphError(f"{pb_path} is not a TensorFlow GraphDef (.pb): {exc}") from exc
    return graph_def


#: Constants larger than this (bytes) — the weights — are held in variables by `TFRunner`.
LARGE_CONSTANT = 1 << 16
_READ = "/omzconv_read"


def weights_as_variables(graph_def: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """`graph_def` with every large constant (the weights) replaced, in place, by a resource variable
    of the same name read where the constant was used; and the constants' values, to assign.

    Why: on a session's first run TensorFlow's graph optimizer (grappler) copies the graph a few
    times, and with the weights inside it as constants every copy holds them: a 553 MB VGG-16 graph
    peaked at 7.9 GB. As variables they stay outside the graph: 2.1 GB, the same outputs bit for
    bit, no slower (batch 8: 1.1–1.7 s vs 1.9 s); benchmarks/verify_memory.py measures verify's peak.
    The computation is unchanged — a variable read yields exactly the constant's tensor.
    """
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    from tensorflow.python.framework import tensor_util

    values = {}
    for node in graph_def.node:
        if node.op == "Const" and len(node.attr["value"].tensor.tensor_content) > LARGE_CONSTANT:
            values[node.name] = tensor_util.MakeNdarray(node.attr["value"].tensor)
            dtype = node.attr["dtype"].type
            node.op = "VarHandleOp"
            node.ClearField("attr")
            node.attr["dtype"].type = dtype
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(values[node.name].shape).as_proto())
            node.attr["shared_name"].s = node.name.encode()
    for node in graph_def.node:
        for k, name in enumerate(node.input):
            base = name.split(":")[0]
            if base in values:  # a data input (a control input "^name" keeps the handle)
                node.input[k] = base + _READ
    for name, value in values.items():
        read = graph_def.node.add(name=name + _READ, op="ReadVariableOp", input=[name])
        read.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
    return graph_def, values


class TFRunner:
    """A frozen graph in a TensorFlow session, with a batch dimension of any size.

    The graph's batch-1 input placeholder is replaced (input_map) by one of shape [None, H, W, 3];
    its weights are held in variables (`weights_as_variables`).
    """

    def __init__(self, model: Model, outputs: Sequence[str], pb_path: Path | None = None,
                 graph_def: Any = None) -> None:
        from omzconv.tfcompat import import_tf, session_config

        tf = import_tf()
        self.model, self.outputs = model, tuple(outputs)
        graph_def, values = weights_as_variables(graph_def if graph_def is not None else load_graph_def(pb_path))
        self.graph = tf.Graph()
        with self.graph.as_default():
            shape = [None, *model.input.shape[1:]]
            self._input = tf.placeholder(tf.float32, shape, name="omzconv_input")
            fetched = tf.import_graph_def(graph_def, input_map={f"{model.input.name}:0": self._input},
                                          return_elements=[f"{o}:0" for o in self.outputs], name="")
            del graph_def
            feeds = {tf.placeholder(v.dtype, v.shape): v for v in values.values()}
            assign = [tf.raw_ops.AssignVariableOp(resource=self.graph.get_tensor_by_name(f"{name}:0"), value=p)
                      for name, p in zip(values, feeds)]
        self._fetches = dict(zip(self.outputs, fetched))
        self.session = tf.Session(graph=self.graph, config=session_config())
        self.session.run(assign, feeds)

    def run(self, batch_rgb: np.ndarray) -> dict[str, np.ndarray]:
        pre = self.model.preprocessing
        feed = {self._input: to_nhwc_normalized(batch_rgb, pre.mean, pre.scale)}
        return {k: np.asarray(v, np.float32) for k, v in self.session.run(self._fetches, feed).items()}

    @property
    def input_op(self) -> str:
        """The name of the placeholder the graph's input was mapped to."""
        return self._input.op.name

    def fetch(self, batch_rgb: np.ndarray, tensors: Sequence[str]) -> list[np.ndarray]:
        """Any tensors of the graph (`"node:port"`) for a batch, e.g. every layer (`omzconv diff`)."""
        pre = self.model.preprocessing
        feed = {self._input: to_nhwc_normalized(batch_rgb, pre.mean, pre.scale)}
        return self.session.run([self.graph.get_tensor_by_name(t) for t in tensors], feed)

    def infer(self, batch_rgb: np.ndarray, on_done: OnDone | None = None,
              batch_size: int = TF_BATCH) -> dict[str, np.ndarray]:
        """`run` in session runs of `batch_size` images, reporting each to `on_done(n)`.

        The throughput path: a batched session keeps both cores busy (batch 8 is ~15 % faster
        per image than batch 1 on Inception; larger batches gain nothing more).
        """
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for start in range(0, len(batch_rgb), batch_size):
            out = self.run(batch_rgb[start:start + batch_size])
            for name in self.outputs:
                parts[name].append(out[name])
            if on_done is not None:
                on_done(len(out[self.outputs[0]]))
        return {name: np.concatenate(chunks) for name, chunks in parts.items()}

    def warm_up(self) -> None:
        """One session run on a blank image: TensorFlow optimizes the graph on the first run
        (~4 s for Inception-ResNet-v2), a one-time cost that belongs with loading."""
        self.run(np.zeros((1, *self.model.input.shape[1:]), np.float32))

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class IRInput:
    """How an IR wants its pixels: what `convert` declared in its PrePostProcessor."""

    layout: str = "NCHW"
    color: str = "BGR"
    element_type: str = "f32"

    def lay_out(self, batch_rgb: np.ndarray) -> np.ndarray:
        x = np.asarray(batch_rgb, np.float32)
        if x.ndim == 3:
            x = x[None]
        if self.color == "BGR":
            x = x[..., ::-1]
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        if self.element_type == "u8":
            return np.ascontiguousarray(np.clip(np.rint(x), 0, 255).astype(np.uint8))
        return np.ascontiguousarray(x)


def ir_input_of(ov_model: Any) -> IRInput:
    """The input convention recorded in an IR's rt_info by omzconv (defaults: the seed's)."""
    def get(key: str, default: str) -> str:
        path = ["model_info", key]
        if not ov_model.has_rt_info(path):
            return default
        value = ov_model.get_rt_info(path)  # an OVAny, whose str() is "<OVAny class>"
        return str(value.astype(str) if hasattr(value, "astype") else value)

    return IRInput(get("input_layout", "NCHW"), get("input_color", "BGR"), get("input_element_type", "f32"))


#: OpenVINO's CPU plugin executes f32 models in bf16 by default on CPUs that have it (AMX,
#: AVX512_BF16): on this project's machine that moved softmax outputs by up to 0.12. Verifying an
#: IR means running it as written, so omzconv pins f32 execution unless asked otherwise.
EXACT = {"INFERENCE_PRECISION_HINT": "f32"}


def compile_config(hint: str = "LATENCY", config: dict[str, str] | None = None) -> dict[str, str]:
    """CPU plugin settings for measuring the conversion, not the CPU's shortcuts.

    The CPU plugin's default inference precision is bf16 wherever the CPU has bf16 units (AVX512-BF16,
    AMX): that rounds every activation to 8 mantissa bits (|Δ prob| ~0.1 on Inception-v4, top-1
    flips) and would be blamed on the conversion. f32 (EXACT, the default) keeps FP32 IRs exact and
    runs FP16 IRs with their weights decompressed to f32, so what is measured is the IR itself.
    `config` replaces EXACT (`{}`: the plugin's own defaults).
    """
    return {"PERFORMANCE_HINT": hint, **(EXACT if config is None else config)}


class OVRunner:
    """An IR compiled for the CPU; `run` infers a batch image by image (batch-1 IR).

    `config` is passed to compile_model on top of the performance hint; the default executes in
    f32 (see EXACT); pass `{}` for the plugin's own defaults.
    """

    def __init__(self, model: Model, xml_path: Path, outputs: Sequence[str], hint: str = "LATENCY",
                 core: Any = None, config: dict[str, str] | None = None) -> None:
        from omzconv.ovcompat import import_openvino

        ov = import_openvino()
        self.model, self.outputs = model, tuple(outputs)
        core = core or ov.Core()
        ov_model = core.read_model(str(xml_path))
        self.input = ir_input_of(ov_model)
        self.compiled = core.compile_model(ov_model, "CPU", compile_config(hint, config))
        from omzconv.execution import executed_of

        self.executed = executed_of(self.compiled)  # what OpenVINO computes in: f32, bf16 or f16
        self._ports = {name: self.compiled.output(name) for name in self.outputs}
        self.request = self.compiled.create_infer_request()

    def run(self, batch_rgb: np.ndarray) -> dict[str, np.ndarray]:
        x = self.input.lay_out(batch_rgb)
        results: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for image in x:
            out = self.request.infer({0: image[None]})
            for name, port in self._ports.items():
                results[name].append(np.array(out[port], np.float32))
        return {name: np.concatenate(parts) for name, parts in results.items()}

    def close(self) -> None:
        self.request = self.compiled = None


class OVAsyncRunner(OVRunner):
    """The throughput path: THROUGHPUT hint and an AsyncInferQueue with as many requests in
    flight as the plugin asks for (one per stream), so every core works on some image.

    `infer` has `run`'s contract — a batch of prepared RGB pixels in, outputs by name out, in
    input order — and reports each finished image to `on_done`, from the calling thread.
    """

    def __init__(self, model: Model, xml_path: Path, outputs: Sequence[str], core: Any = None,
                 config: dict[str, str] | None = None, jobs: int | None = None) -> None:
        super().__init__(model, xml_path, outputs, hint="THROUGHPUT", core=core, config=config)
        from openvino import AsyncInferQueue

        self.jobs = int(jobs or self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = AsyncInferQueue(self.compiled, self.jobs)
        self.queue.set_callback(self._collect)
        self._shapes = {name: tuple(port.get_shape()) for name, port in self._ports.items()}
        self._sink: dict[str, np.ndarray] = {}
        self._finished = 0

    def _collect(self, request: Any, index: int) -> None:  # runs on an OpenVINO thread
        for name, port in self._ports.items():
            self._sink[name][index] = request.get_tensor(port).data[0]
        self._finished += 1  # one writer at a time: callbacks hold the GIL

    def infer(self, batch_rgb: np.ndarray, on_done: OnDone | None = None) -> dict[str, np.ndarray]:
        x = self.input.lay_out(batch_rgb)
        self._sink = {name: np.empty((len(x), *shape[1:]), np.float32) for name, shape in self._shapes.items()}
        self._finished = reported = 0
        try:
            for i in range(len(x)):
                self.queue.start_async({0: x[i:i + 1]}, i)  # waits for an idle request
                if on_done is not None and self._finished > reported:
                    finished = self._finished
                    on_done(finished - reported)
                    reported = finished
        finally:
            self.queue.wait_all()  # never leave requests writing into a sink we hand out
        if on_done is not None and len(x) > reported:
            on_done(len(x) - reported)
        return self._sink

    def warm_up(self) -> None:
        """One inference per request on a blank image (first-inference costs belong with loading)."""
        h, w = self.model.input.shape[1:3]
        self.infer(np.zeros((self.jobs, h, w, 3), np.float32))

    def close(self) -> None:
        self.queue = None
        super().close()
