"""omzconv diff: layer matching (pure, and on every network kind of the family), a fault injected
into an IR found where it was put, and the command's outputs."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from omzconv.diff.compare import groups_of
from omzconv.diff.match import OV_AFFINE, OV_JOINS, OV_KINDS, TF_AFFINE, TF_JOINS, TF_KINDS, Graph, Layer, Node, match

MODEL = "mobilenet_v1_025_128"


def _graph(nodes, kinds, joins, affine, nchw=False):
    names = [n[0] for n in nodes]
    return Graph({n: Node(n, op, [(i, 0) for i in ins], [shape]) for n, op, ins, shape in nodes},
                 names[0], names[-1], kinds, joins, affine, nchw=nchw)


def test_residual_add_inputs_are_paired_by_structure_whatever_their_order():
    """The IR lists a residual add's inputs the other way round and has no names inside: the
    branch with a relu still pairs with the branch with a relu, the bias tail with the fused tail."""
    tf = _graph([("input", "Placeholder", [], (8, 8, 3)), ("w", "Const", [], None),
                 ("c1", "Conv2D", ["input", "w"], (8, 8, 4)), ("bn", "FusedBatchNormV3", ["c1", "w"], (8, 8, 4)),
                 ("r1", "Relu", ["bn"], (8, 8, 4)), ("c2", "Conv2D", ["input", "w"], (8, 8, 4)),
                 ("b2", "BiasAdd", ["c2", "w"], (8, 8, 4)), ("add", "AddV2", ["r1", "b2"], (8, 8, 4)),
                 ("out", "Identity", ["add"], (8, 8, 4)), ("result", "Result", ["out"], (8, 8, 4))], TF_KINDS, TF_JOINS, TF_AFFINE)
    ov = _graph([("p", "Parameter", [], (3, 8, 8)), ("k", "Constant", [], None),
                 ("t", "Transpose", ["p", "k"], (3, 8, 8)),
                 ("x2", "Convolution", ["t", "k"], (4, 8, 8)), ("a2", "Add", ["x2", "k"], (4, 8, 8)),
                 ("x1", "Convolution", ["t", "k"], (4, 8, 8)), ("a1", "Add", ["x1", "k"], (4, 8, 8)),
                 ("y1", "Relu", ["a1"], (4, 8, 8)), ("sum", "Add", ["a2", "y1"], (4, 8, 8)),
                 ("res", "Result", ["sum"], (4, 8, 8))], OV_KINDS, OV_JOINS, OV_AFFINE, nchw=True)
    m = match(tf, ov)
    got = {layer.tf_node: (layer.tf_tensor, layer.ov_node) for layer in m.layers}
    assert got == {"c1": ("bn:0", "a1"), "r1": ("r1:0", "y1"), "c2": ("b2:0", "a2"), "add": ("out:0", "sum"),
                   "out": ("out:0", "sum")}
    assert m.tf_layers == 4 and m.fraction == 1.0 and not m.unmatched
    order = [layer.tf_node for layer in m.layers]
    assert order == ["c1", "r1", "c2", "add", "out"]  # the original's topological order
    assert m.layers[order.index("add")].inputs == (order.index("r1"), order.index("c2"))


def test_layers_of_another_kind_are_unmatched_with_the_reason():
    tf = _graph([("input", "Placeholder", [], (4,)), ("r", "Relu", ["input"], (4,)), ("out", "Softmax", ["r"], (4,)),
                 ("result", "Result", ["out"], (4,))],
                TF_KINDS, TF_JOINS, TF_AFFINE)
    ov = _graph([("p", "Parameter", [], (4,)), ("c", "Clamp", ["p"], (4,)), ("s", "Softmax", ["c"], (4,)),
                 ("res", "Result", ["s"], (4,))], OV_KINDS, OV_JOINS, OV_AFFINE)
    m = match(tf, ov)
    assert [layer.tf_node for layer in m.layers] == ["out", "out"]  # the softmax, then the output it is
    assert m.unmatched == {"r": "a relu in TensorFlow where the IR has a relu6 (fused or decomposed)"}


def test_groups_keep_each_fetch_under_the_budget():
    layers = [Layer(i, f"l{i}", "conv", f"l{i}:0", f"o{i}", f"o{i}", 0, (10, 10, 10), ()) for i in range(5)]
    groups = groups_of(layers, budget=4 * 2000 + 1)  # 4,000 bytes each: two per group
    assert [[x.index for x in g] for g in groups] == [[0, 1], [2, 3], [4]]
    assert len(groups_of(layers, budget=1 << 30)) == 1


# --- on real graphs -----------------------------------------------------------------------------

FAMILY = {"inception_v1": 0.99, MODEL: 1.0, "resnet_v1_50": 0.99}  # minimum matched fraction


def _tf_structure(tf, graph_def):
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
    return graph


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FAMILY))
def test_every_network_kind_is_matched(name, artefacts):
    """Inception (concats of branches), MobileNet (separable convolutions), ResNet (residual adds):
    the session's synthetic frozen graphs and FP32 IRs (test_family builds the same ones)."""
    from omzconv.diff.match import ov_graph, tf_graph
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import load_graph_def
    from omzconv.tfcompat import import_tf

    model = artefacts.model(name)
    output = model.default_outputs[0].name
    graph = _tf_structure(import_tf(), load_graph_def(artefacts.frozen(name)))
    ov_model = import_openvino().Core().read_model(str(artefacts.ir(name, "FP32")))
    m = match(tf_graph(graph, model.input.name, output), ov_graph(ov_model))
    assert m.fraction >= FAMILY[name], (m.fraction, m.unmatched)
    kinds = {layer.kind for layer in m.layers}
    assert {"conv", "output"} <= kinds
    if name == "inception_v1":
        assert {"concat", "maxpool"} <= kinds
        mixed = next(layer for layer in m.layers if layer.tf_node.endswith("Mixed_3b/concat"))
        assert mixed.shape == (28, 28, 256)
    if name == "resnet_v1_50":
        assert sum(layer.kind == "add" for layer in m.layers) == 16  # one residual add per unit
    print(f"{name}: {len(m.layers) - 1} of {m.tf_layers} layers matched ({m.fraction:.1%})")


@pytest.mark.slow
def test_vgg_is_matched_from_its_structure_alone(registry):
    """VGG-16 without weights (its 553 MB would cost a minute to make and convert): every variable
    becomes a placeholder, so the graph converts in a second with the same layers (VGG has no
    BatchNorm to fold: conv → bias → relu either way)."""
    from omzconv.diff.match import ov_graph, tf_graph
    from omzconv.freeze import build_inference_graph
    from omzconv.ovcompat import import_openvino
    from omzconv.tfcompat import import_tf

    tf, ov = import_tf(), import_openvino()
    model = registry.model("vgg_16")
    output = model.default_outputs[0].name
    graph = tf.Graph()
    build_inference_graph(model, graph)
    graph_def = graph.as_graph_def()
    handles = {n.name: n for n in graph_def.node if n.op == "VarHandleOp"}
    for node in graph_def.node:
        if node.op == "ReadVariableOp" and node.input[0] in handles:
            shape = handles[node.input[0]].attr["shape"]
            node.op, node.input[:] = "Placeholder", []
            node.ClearField("attr")
            node.attr["dtype"].type = tf.float32.as_datatype_enum
            node.attr["shape"].CopyFrom(shape)
    graph_def = tf.graph_util.extract_sub_graph(graph_def, [output])
    inputs = [n.name for n in graph_def.node if n.op == "Placeholder"]
    ov_model = ov.convert_model(graph_def, input=[f"{n}:0" for n in inputs], output=[f"{output}:0"])
    ov_model.get_parameters()[inputs.index(model.input.name)].set_friendly_name(model.input.name)
    m = match(tf_graph(_tf_structure(tf, graph_def), model.input.name, output), ov_graph(ov_model, model.input.name))
    assert m.tf_layers == 36 and m.fraction == 1.0, m.unmatched  # 13 conv + 13 relu + 5 pools + 3 fc + 2 relu
    assert sum(layer.kind == "maxpool" for layer in m.layers) == 5
    print(f"vgg_16: {len(m.layers) - 1} of {m.tf_layers} layers matched ({m.fraction:.1%})")


def _scaled_conv_ir(artefacts, tmp_path, factor=1.01):
    """A copy of the FP32 IR with one convolution's weights times `factor`; and the TF name of that
    convolution, found by its unique weight shape (not by the matcher under test)."""
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import load_graph_def

    ov = import_openvino()
    ov_model = ov.Core().read_model(str(artefacts.ir(MODEL, "FP32")))
    convs = [op for op in ov_model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    conv = convs[3]  # a pointwise convolution in the middle of the network
    weights = conv.input_value(1).get_node()
    data = weights.get_data()
    conv.input(1).replace_source_output(ov.op.Constant((data * factor).astype(data.dtype)).output(0))
    xml = tmp_path / "faulty" / f"{MODEL}.xml"
    ov.save_model(ov_model, str(xml), compress_to_fp16=False)

    cout, cin, kh, kw = data.shape
    graph = load_graph_def(artefacts.frozen(MODEL))
    consts = {n.name: tuple(d.size for d in n.attr["value"].tensor.tensor_shape.dim) for n in graph.node if n.op == "Const"}
    source = {n.name: n.input[0] for n in graph.node if n.op == "Identity"}
    hits = [n.name for n in graph.node if n.op == "Conv2D"
            and consts.get(source.get(n.input[1], n.input[1])) == (kh, kw, cin, cout)]
    assert len(hits) == 1, hits
    return xml, hits[0]


@pytest.mark.slow
def test_a_fault_injected_into_one_convolution_is_the_first_divergence(artefacts, tmp_path):
    from omzconv.diff import RunSpec, diff_run, first_divergence, load_images
    from omzconv.runners import TFRunner

    model = artefacts.model(MODEL)
    faulty, conv_name = _scaled_conv_ir(artefacts, tmp_path)
    pixels, _ = load_images(model, artefacts.registry, None, 4)
    runner = TFRunner(model, [model.default_outputs[0].name], pb_path=artefacts.frozen(MODEL))
    try:
        clean = diff_run(model, runner, RunSpec("FP32", "FP32", artefacts.ir(MODEL, "FP32"), "f32"), pixels)
        bad = diff_run(model, runner, RunSpec("FP32", "FP32", faulty, "f32"), pixels)
    finally:
        runner.close()
    assert clean.matching.fraction == 1.0
    assert max(e.rel_error for e in clean.layers) < 1e-4  # every pair matched is the same tensor
    assert first_divergence(clean, 1e-3) is None
    first = first_divergence(bad, 1e-3)
    assert first is not None and first.layer.tf_node == conv_name, (first, conv_name)
    assert 2e-3 < first.rel_error < 2e-2  # ~1 % of the convolution's share of the output
    before = [e for e in bad.layers if e.layer.index < first.layer.index]
    assert before and max(e.rel_error for e in before) < 1e-5
    assert max(bad.layers, key=lambda e: e.gain if e.layer.kind != "output" else 0).layer.tf_node == conv_name


@pytest.mark.slow
def test_diff_command_json_table_and_page(artefacts, tmp_path):
    from omzconv.cli import main

    artefacts.ir(MODEL, "FP16")
    ws = artefacts.workspace
    page = tmp_path / "diff.html"
    root = ["--cache-dir", str(ws.cache_dir), "-o", str(ws.output_dir), "-q"]
    args = [*root, "diff", MODEL, "--synthetic-weights", "-p", "FP16", "--images", "2", "--report", str(page)]
    result = CliRunner().invoke(main, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    [run] = data["runs"]
    assert run["run"] == "FP16" and run["inference_precision"] == {"requested": "f32", "executed": "f32"}
    assert run["matching"]["fraction"] == 1.0 and run["matching"]["matched"] == 57
    assert 1e-5 < run["layers"][-1]["rel_error"] < 0.1  # FP16 weights: small, not zero
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "http" not in html.split("<svg")[0]
    table = CliRunner(env={"COLUMNS": "80"}).invoke(main, args, catch_exceptions=False)
    assert table.exit_code == 0 and "matched 57 of 57 layers" in table.output
    assert max(len(line) for line in table.output.splitlines() if not line.startswith("HTML")) <= 80
    lines = table.output.splitlines()
    first = next(i for i, line in enumerate(lines) if "first divergence" in line)
    assert "relative error" in lines[first] and lines[first + 1].startswith("    ")  # the name, indented
