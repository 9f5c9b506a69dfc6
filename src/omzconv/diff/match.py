"""Which TensorFlow tensor is which IR tensor: the layers of the original matched to the IR's.

Names cannot do it. OpenVINO's TensorFlow frontend turns NHWC into NCHW by inserting transposes and
sinking them through the graph, and drops the framework names of every tensor it moves past (by
design: only model outputs keep theirs), then fuses BatchNorm into the convolutions. In an IR made
by omzconv only the input and the outputs carry TensorFlow names; every op in between is called
e.g. `Multiply_10` or `Transpose_13`.

The graphs still have the same shape, so they are matched by structure, from the named ends: both
are reduced to their *layers* (anchors: convolutions, matmuls, activations, pools, means, softmax,
and every op joining two data paths — concat, residual add), each knowing the layers that feed it
(walking through single-input ops: BatchNorm, bias, Identity, FakeQuantize, transposes, reshapes).
From the pair (model output, IR result) the matcher walks up both graphs in step, pairing inputs of
paired layers when their kind and shape agree (a residual add's two inputs in whichever order their
sub-graphs agree). A layer's compared tensor is the end of its affine tail (a convolution's output
after its BatchNorm or bias: what the IR's fused convolution + add computes).

Everything here is plain Python over `Graph` descriptions; `tf_graph` and `ov_graph` make them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Tensor = tuple[str, int]  # (node name, output port)

TF_KINDS = {"Relu": "relu", "Relu6": "relu6", "MaxPool": "maxpool", "AvgPool": "avgpool", "ConcatV2": "concat",
            "Concat": "concat", "Conv2D": "conv", "DepthwiseConv2dNative": "conv", "MatMul": "matmul",
            "Mean": "mean", "Softmax": "softmax", "Placeholder": "input"}
OV_KINDS = {"Relu": "relu", "Clamp": "relu6", "MaxPool": "maxpool", "AvgPool": "avgpool", "Concat": "concat",
            "Convolution": "conv", "GroupConvolution": "conv", "MatMul": "matmul", "ReduceMean": "mean",
            "Softmax": "softmax", "Parameter": "input", "Result": "output"}
TF_JOINS = {"Add": "add", "AddV2": "add", "Mul": "mul", "Sub": "sub"}
OV_JOINS = {"Add": "add", "Multiply": "mul", "Subtract": "sub"}
TF_AFFINE = {"BiasAdd", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Add", "AddV2", "Sub", "Mul",
             "RealDiv", "Identity"}
OV_AFFINE = {"Add", "Multiply", "Subtract", "Divide"}
SHAPE_OPS = {"Shape", "ShapeOf"}  # their outputs are shapes, not data
COMMUTATIVE = {"add", "mul"}
SIGNATURE_DEPTH = 4
RESULT = "omzconv_result"


@dataclass
class Node:
    name: str
    op: str
    inputs: list[Tensor]  # every input, constants included
    shapes: list[tuple[int, ...] | None]  # per output, batch dimension dropped; None if unknown
    label: str = ""  # what a person calls it (an IR op's friendly name; the key is its unique name)


@dataclass
class Graph:
    """A graph as the matcher sees it: nodes in topological order, by name."""

    nodes: dict[str, Node]
    input: str  # the data input (placeholder / parameter)
    output: str  # the result op taking the compared output (TF: one added by `tf_graph`)
    kinds: dict[str, str]
    joins: dict[str, str]
    affine: set[str]
    nchw: bool = False  # 4-D tensors are NCHW (the IR)
    data: set[str] = field(default_factory=set)
    consumers: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            for src, _ in node.inputs:
                self.consumers.setdefault(src, []).append(node.name)
        self.data = {self.input}
        for node in self.nodes.values():  # topological order: producers first
            if node.op not in SHAPE_OPS and any(src in self.data for src, _ in node.inputs):
                self.data.add(node.name)

    def data_inputs(self, name: str) -> list[Tensor]:
        return [t for t in self.nodes[name].inputs if t[0] in self.data]

    def kind(self, name: str) -> str | None:
        node = self.nodes[name]
        if name in (self.input, self.output):
            return "input" if name == self.input else "output"
        if len(self.data_inputs(name)) >= 2:
            return self.joins.get(node.op) or self.kinds.get(node.op) or f"join:{node.op}"
        return self.kinds.get(node.op) if node.op not in ("Placeholder", "Parameter", "Result") else None

    def shape(self, tensor: Tensor) -> tuple[int, ...] | None:
        """The tensor's shape without batch, in NHWC for 4-D tensors."""
        shapes = self.nodes[tensor[0]].shapes
        shape = shapes[tensor[1]] if tensor[1] < len(shapes) else None
        if shape is not None and self.nchw and len(shape) == 3:
            return (shape[1], shape[2], shape[0])
        return shape


@dataclass(frozen=True)
class Layer:
    """A matched pair: what is compared, in TensorFlow's topological order."""

    index: int
    tf_node: str  # the layer's op in the original
    kind: str
    tf_tensor: str  # "node:port", the end of the layer's affine tail
    ov_node: str  # unique name (ov Node.get_name()) of the IR op whose output is compared
    ov_label: str  # its friendly name
    ov_port: int
    shape: tuple[int, ...]  # NHWC (or flat), batch dropped
    inputs: tuple[int, ...]  # indices of the matched layers feeding it


@dataclass(frozen=True)
class Matching:
    layers: tuple[Layer, ...]
    tf_layers: int  # layers (anchors) of the original, the input and output excluded
    ov_layers: int
    unmatched: dict[str, str]  # TF layer name → why it has no IR counterpart
    ov_unmatched: tuple[str, ...]  # IR layers left over (unique names)

    @property
    def fraction(self) -> float:
        return len([x for x in self.layers if x.kind != "output"]) / self.tf_layers if self.tf_layers else 1.0


def _anchors(g: Graph) -> dict[str, list[str]]:
    """Each layer → the layers feeding it (one per data input, in input order)."""
    result: dict[str, list[str]] = {}
    for name in g.nodes:
        if name not in g.data or g.kind(name) is None:
            continue
        feeds = []
        for src, _ in g.data_inputs(name):
            while g.kind(src) is None:
                ins = g.data_inputs(src)
                if len(ins) != 1:
                    break
                src = ins[0][0]
            feeds.append(src)
        result[name] = feeds
    return result


def _tail(g: Graph, name: str) -> Tensor:
    """The end of a layer's affine tail: follow single consumers that add/scale by constants."""
    tensor = (name, 0)
    while True:
        users = g.consumers.get(tensor[0], [])
        if len(users) != 1:
            return tensor
        nxt = g.nodes[users[0]]
        if nxt.op not in g.affine or len(g.data_inputs(nxt.name)) != 1 or g.kind(nxt.name) is not None:
            return tensor
        tensor = (nxt.name, 0)


def _signature(g: Graph, anchors: dict[str, list[str]], name: str, depth: int, memo: dict) -> Any:
    key = (name, depth)
    if key not in memo:
        kind = g.kind(name)
        shape = g.shape((name, 0)) if kind not in ("output",) else None
        feeds = () if depth == 0 else tuple(_signature(g, anchors, f, depth - 1, memo) for f in anchors.get(name, []))
        if kind in COMMUTATIVE:
            feeds = tuple(sorted(feeds, key=repr))
        memo[key] = (kind, shape, feeds)
    return memo[key]


def _flat_concat(g: Graph, anchors: dict[str, list[str]], name: str, feeds: list[str]) -> tuple[list[str], list[str]]:
    """A concat's inputs with every concat feeding only it replaced by that concat's inputs, as
    OpenVINO merges nested concats (Inception-v4's Mixed_7 branches); and the concats folded."""
    flat: list[str] = []
    folded: list[str] = []
    for f in feeds:
        if g.kind(f) == "concat" and g.consumers.get(f, []) == [name]:
            inner, inner_folded = _flat_concat(g, anchors, f, anchors.get(f, []))
            flat += inner
            folded += [f, *inner_folded]
        else:
            flat.append(f)
    return flat, folded


def match(tf: Graph, ov: Graph) -> Matching:
    """Pair the layers of `tf` (the original) with those of `ov` (the IR), from the output up."""
    ta, oa = _anchors(tf), _anchors(ov)
    t_memo: dict = {}
    o_memo: dict = {}
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    unmatched: dict[str, str] = {}
    stack = [(tf.output, ov.output)]
    while stack:
        t, o = stack.pop()
        if t in pairs or o in taken:
            if pairs.get(t) != o:
                unmatched.setdefault(t, "structure differs (its IR counterpart is taken)")
            continue
        pairs[t] = o
        taken.add(o)
        tin, oin = ta.get(t, []), oa.get(o, [])
        if len(tin) != len(oin) and tf.kind(t) == "concat" == ov.kind(o):
            flat, folded = _flat_concat(tf, ta, t, tin)
            if len(flat) == len(oin):
                tin = flat
                for f in folded:
                    unmatched.setdefault(f, "a concat folded into the concat taking it (one concat in the IR)")
        if len(tin) != len(oin):
            for f in tin:
                unmatched.setdefault(f, f"its consumer has {len(tin)} inputs in TensorFlow, {len(oin)} in the IR")
            continue
        if tf.kind(t) in COMMUTATIVE and len(tin) == 2:
            sig = [_signature(tf, ta, f, SIGNATURE_DEPTH, t_memo) for f in tin]
            osig = [_signature(ov, oa, f, SIGNATURE_DEPTH, o_memo) for f in oin]
            if sig != osig and sig == osig[::-1]:
                oin = oin[::-1]
        for f, g_ in zip(tin, oin):
            tk, ok = tf.kind(f), ov.kind(g_)
            tshape, oshape = tf.shape(_tail(tf, f)), ov.shape(_tail(ov, g_))
            if tk != ok:
                unmatched.setdefault(f, f"a {tk} in TensorFlow where the IR has a {ok} (fused or decomposed)")
            elif tk not in ("input",) and tshape != oshape and None not in (tshape, oshape):
                unmatched.setdefault(f, f"shape {tshape} in TensorFlow, {oshape} in the IR")
            else:
                stack.append((f, g_))
    order = {name: k for k, name in enumerate(tf.nodes)}
    matched = sorted((t for t in pairs if tf.kind(t) != "input"), key=order.__getitem__)
    index = {t: k for k, t in enumerate(matched)}
    layers = []
    for t in matched:
        if tf.kind(t) == "output":  # the tensors both results take: the model's output
            tt, (on, op) = tf.nodes[t].inputs[0], ov.nodes[pairs[t]].inputs[0]
        else:
            tt, (on, op) = _tail(tf, t), _tail(ov, pairs[t])
        layers.append(Layer(index[t], tt[0] if tf.kind(t) == "output" else t, tf.kind(t) or "?",
                            f"{tt[0]}:{tt[1]}", on, ov.nodes[on].label, op,
                            tf.shape(tt) or (), tuple(index[f] for f in ta.get(t, []) if f in index)))
    tf_layers = [n for n in ta if tf.kind(n) not in ("input", "output")]
    for name in tf_layers:
        if name not in pairs:
            unmatched.setdefault(name, "upstream of an unmatched layer")
    ov_layers = [n for n in oa if ov.kind(n) not in ("input", "output")]
    return Matching(tuple(layers), len(tf_layers), len(ov_layers),
                    {k: v for k, v in unmatched.items() if k in set(tf_layers)},
                    tuple(n for n in ov_layers if n not in taken))


def tf_graph(graph: Any, input_name: str, output: str) -> Graph:
    """The matcher's view of a `tf.Graph` (its ops are in topological order)."""
    nodes = {}
    for op in graph.get_operations():
        inputs = [(t.op.name, t.value_index) for t in op.inputs]
        shapes = [tuple(t.shape.as_list()[1:]) if t.shape.rank is not None and None not in t.shape.as_list()[1:]
                  else None for t in op.outputs]
        nodes[op.name] = Node(op.name, op.type, inputs, shapes)
    result = f"{output}/{RESULT}"  # TensorFlow has no result op; the IR's counterpart is its Result
    nodes[result] = Node(result, "Result", [(output, 0)], [nodes[output].shapes[0]])
    return Graph(nodes, input_name, result, TF_KINDS, TF_JOINS, TF_AFFINE)


def ov_graph(ov_model: Any, input_name: str | None = None) -> Graph:
    """The matcher's view of an `ov.Model`: its (first, or `input_name`d) parameter is the data input,
    its first result the compared output."""
    nodes = {}
    for op in ov_model.get_ordered_ops():
        inputs = [(op.input_value(k).get_node().get_name(), op.input_value(k).get_index())
                  for k in range(op.get_input_size())]
        shapes = []
        for out in op.outputs():
            ps = out.get_partial_shape()
            shapes.append(tuple(d.get_length() for d in ps)[1:] if ps.is_static else None)
        nodes[op.get_name()] = Node(op.get_name(), op.get_type_name(), inputs, shapes, op.get_friendly_name())
    data = next(p for p in ov_model.get_parameters() if input_name in (None, p.get_friendly_name()))
    return Graph(nodes, data.get_name(), ov_model.get_results()[0].get_name(),
                 OV_KINDS, OV_JOINS, OV_AFFINE, nchw=True)


def unmatched_by_reason(matching: Matching) -> list[tuple[str, list[str]]]:
    """(reason, the TF layers it applies to), the commonest reason first."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in matching.unmatched.items():
        by_reason.setdefault(reason, []).append(name)
    return sorted(by_reason.items(), key=lambda kv: -len(kv[1]))


def describe_unmatched(matching: Matching, limit: int = 5) -> list[str]:
    """One line per reason: how many TF layers and the first few names."""
    return [f"{len(names)} × {reason}: {', '.join(names[:limit])}{' …' if len(names) > limit else ''}"
            for reason, names in unmatched_by_reason(matching)]
