"""convert -p FP16 --keep-precision: the `precise` IR mark, the ranking-prefix search, the tolerance
judged, and on the synthetic mobilenet_v1_025_128: auto, named layers, inherit, none, too tight."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from omzconv.diff.match import OV_AFFINE, OV_JOINS, OV_KINDS, TF_AFFINE, TF_JOINS, TF_KINDS, Graph, Node, match
from omzconv.errors import UsageError
from omzconv.registry import PrecisionTolerance
from omzconv.repair import NONE, KeepRequest, parse_keep
from omzconv.repair.auto import judge, search
from omzconv.repair.mark import PRECISE, layer_ops, mark_xml, weight_ops

MODEL = "mobilenet_v1_025_128"

XML = b"""<?xml version="1.0"?>
<net name="m" version="11"><layers>
<layer id="0" name="w" type="Const" version="opset1"><data element_type="f32" shape="1" offset="0" size="4"/>
<output><port id="0" precision="FP32"/></output></layer>
<layer id="1" name="conv" type="Convolution" version="opset1"><data strides="1, 1"/><input/><output/></layer>
<layer id="2" name="relu" type="Relu" version="opset1"><rt_info><attribute name="fused_names" version="0"/></rt_info>
<input/><output/></layer>
</layers><edges/><rt_info><omzconv><model value="m"/></omzconv></rt_info></net>"""


def _attrs(xml: bytes, layer: str) -> list[str]:
    import xml.etree.ElementTree as ET

    node = next(x for x in ET.fromstring(xml).iter("layer") if x.get("name") == layer)
    return [a.get("name") for a in node.iter("attribute")]


def test_mark_xml_marks_exactly_the_named_layers():
    out = mark_xml(XML, ["w", "relu"])
    assert _attrs(out, "w") == [PRECISE] and _attrs(out, "conv") == []
    assert _attrs(out, "relu") == ["fused_names", PRECISE]  # added to the existing rt_info
    assert b'<model value="m"' in out  # the model's own rt_info survives
    assert mark_xml(out, ["w"]).count(b'name="precise"') == 2  # marking twice adds nothing
    with pytest.raises(ValueError, match="no IR layer named nope"):
        mark_xml(XML, ["nope"])


def test_a_layers_ops_are_its_tail_its_op_and_their_constants():
    nodes = [("p", "Parameter", []), ("w", "Constant", []), ("conv", "Convolution", ["p", "w"]),
             ("b", "Constant", []), ("add", "Add", ["conv", "b"]), ("relu", "Relu", ["add"]), ("res", "Result", ["relu"])]
    g = Graph({n: Node(n, op, [(i, 0) for i in ins], [(4, 8, 8)]) for n, op, ins in nodes}, "p", "res",
              OV_KINDS, OV_JOINS, OV_AFFINE, nchw=True)
    assert layer_ops(g, "add") == ["add", "b", "conv", "w"]  # the conv layer ends at its bias
    assert weight_ops(g, layer_ops(g, "add")) == ["b", "w"]
    assert layer_ops(g, "relu") == ["relu"]


def test_nested_concats_match_the_one_concat_openvino_merges_them_into():
    """Inception-v4's Mixed_7 blocks concat two convolutions inside a branch, then the branches;
    OpenVINO merges the two into one concat (found when `--keep-precision auto` ranked 1 layer of v4)."""
    def graph(nodes, kinds, joins, affine, nchw):
        return Graph({n: Node(n, op, [(i, 0) for i in ins], [shape]) for n, op, ins, shape in nodes},
                     nodes[0][0], nodes[-1][0], kinds, joins, affine, nchw=nchw)

    tf = graph([("in", "Placeholder", [], (8, 8, 3)), ("w", "Const", [], None),
                ("c1", "Conv2D", ["in", "w"], (8, 8, 4)), ("c2", "Conv2D", ["in", "w"], (8, 8, 4)),
                ("c3", "Conv2D", ["in", "w"], (8, 8, 4)), ("inner", "ConcatV2", ["c2", "c3", "w"], (8, 8, 8)),
                ("outer", "ConcatV2", ["c1", "inner", "w"], (8, 8, 12)), ("res", "Result", ["outer"], (8, 8, 12))],
               TF_KINDS, TF_JOINS, TF_AFFINE, False)
    ov = graph([("p", "Parameter", [], (3, 8, 8)), ("k", "Constant", [], None),
                ("x1", "Convolution", ["p", "k"], (4, 8, 8)), ("x2", "Convolution", ["p", "k"], (4, 8, 8)),
                ("x3", "Convolution", ["p", "k"], (4, 8, 8)), ("cat", "Concat", ["x1", "x2", "x3"], (12, 8, 8)),
                ("r", "Result", ["cat"], (12, 8, 8))], OV_KINDS, OV_JOINS, OV_AFFINE, True)
    m = match(tf, ov)
    assert {x.tf_node: x.ov_node for x in m.layers if x.kind == "conv"} == {"c1": "x1", "c2": "x2", "c3": "x3"}
    assert set(m.unmatched) == {"inner"} and "folded into the concat" in m.unmatched["inner"]


def test_search_finds_the_smallest_passing_prefix_in_few_trials():
    for needed in (1, 2, 3, 17, 99, 100):
        calls = []

        def passes(k, needed=needed):
            calls.append(k)
            return k >= needed
        assert search(100, passes) == needed
        assert len(calls) <= 2 * 7 + 1, calls
    assert search(100, lambda k: False) is None


def test_judge_applies_the_tolerance_and_ignores_near_ties():
    tol = PrecisionTolerance(top1_pp=0.3, max_prob_delta=0.01, tie_margin=0.05)
    ref = np.array([[0.7, 0.2, 0.1], [0.401, 0.399, 0.2]])
    swapped_tie = np.array([[0.7, 0.2, 0.1], [0.399, 0.401, 0.2]])  # a near-tie flips: allowed
    assert judge(ref, swapped_tie, tol).passed and judge(ref, swapped_tie, tol).top1_agreement == 0.5
    flipped = np.array([[0.2, 0.7, 0.1], [0.401, 0.399, 0.2]])
    result = judge(ref, flipped, tol)
    assert not result.passed and result.changed == 1 and result.max_prob_delta == pytest.approx(0.5)
    assert not judge(ref, ref + 0.02, tol).passed


def test_parse_keep():
    assert parse_keep(None) is None and parse_keep("None") == NONE
    assert parse_keep("auto") == KeepRequest("auto")
    assert parse_keep("a, b,a") == KeepRequest("layers", ("a", "b"))
    with pytest.raises(UsageError):
        parse_keep(" , ")


# --- on the synthetic mobilenet ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def repair_ws(artefacts, tmp_path_factory):
    """A workspace of its own (the session's FP16 IR stays plain): the session's frozen graph copied,
    and a registry whose FP16 tolerance (max |Δp| ≤ 5e-3) the plain FP16 IR fails."""
    artefacts.frozen(MODEL)
    ws = artefacts.workspace
    root = tmp_path_factory.mktemp("keep")
    src = ws.frozen_path(artefacts.model(MODEL)).parent
    dst = root / "out" / src.relative_to(ws.output_dir)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("FP16", "FP32", "INT8"))
    text = (artefacts.registry.path).read_text()
    tight = text.replace("FP16: {top1_pp: 0.3, max_prob_delta: 0.1,", "FP16: {top1_pp: 0.3, max_prob_delta: 5.0e-3,")
    assert tight != text
    (root / "models.yaml").write_text(tight)
    args = ["--models", str(root / "models.yaml"), "--cache-dir", str(ws.cache_dir), "-o", str(root / "out"), "-q",
            "convert", MODEL, "--synthetic-weights", "-p", "FP16"]
    return root, args, dst / "FP16" / f"{MODEL}.xml"


def _convert(args, *extra):
    from omzconv.cli import main

    return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False)


def _types(xml):
    from omzconv.repair.mark import f32_weights

    return f32_weights(xml)


@pytest.mark.slow
def test_keep_precision_auto_named_inherited_none(repair_ws, shared_dir):
    from omzconv.repair import kept_precision

    root, args, xml = repair_ws
    fast = ["--repair-images", "4", "--held-out-images", "8", "--speed-seconds", "0.2", "--json"]
    result = _convert(args, "--keep-precision", "auto", *fast)
    assert result.exit_code == 0, result.output
    [r] = json.loads(result.output)
    kept = r["kept"]
    assert kept["mode"] == "auto" and 1 <= len(kept["layers"]) < 28, kept["layers"]
    held = kept["results"]["held_out"]
    assert not held["before"]["passed"] and held["before"]["max_prob_delta"] > 5e-3  # the plain IR fails
    assert held["after"]["passed"] and held["after"]["max_prob_delta"] <= 5e-3 and held["after"]["images"] == 8
    assert kept["results"]["ranking"]["after"]["images"] == 4
    keys = kept["image_keys"]
    assert len(set(keys["ranking"])) == 4 and len(set(keys["held_out"])) == 8
    assert not set(keys["ranking"]) & set(keys["held_out"])
    tried = {t["layers"]: t["passed"] for t in kept["tried"]}
    k = len(kept["layers"])
    assert tried[k] and (k == 1 or tried[k - 1] is False)  # the fewest: one layer fewer was judged and failed
    assert kept["speed"]["ratio"] > 0
    assert kept_precision(xml)["layers"] == kept["layers"]
    types = _types(xml)
    assert sum(t == "f32" for t in types.values()) == kept["weights_kept"] >= 1
    meta = json.loads((xml.parent / "omzconv.json").read_text())
    assert meta["recipe"]["keep_precision"] == {"mode": "auto", "tolerance": {"max_prob_delta": 5e-3, "tie_margin": 0.05}}

    plain_again = _convert(args)  # no --keep-precision: the repair stays, and says so
    assert plain_again.exit_code == 0 and "up to date" in plain_again.output
    assert "[repaired earlier; --keep-precision none undoes it]" in plain_again.output
    from omzconv.cli import main

    narrow = CliRunner(env={"COLUMNS": "80"}).invoke(main, args, catch_exceptions=False)  # what was kept, wrapped
    assert narrow.exit_code == 0 and "kept " in narrow.output
    assert max(len(line) for line in narrow.output.splitlines() if not line.startswith(f"{MODEL} FP16: /")) <= 80
    assert kept_precision(xml)["layers"] == kept["layers"]

    names = ["Conv2d_0/Conv2D", "MobilenetV1/MobilenetV1/Conv2d_5_depthwise/depthwise"]
    named = _convert(args, "--keep-precision", ",".join(names), "--speed-seconds", "0", "--json")
    assert named.exit_code == 0, named.output
    kept = json.loads(named.output)[0]["kept"]
    assert kept["layers"] == ["MobilenetV1/MobilenetV1/Conv2d_0/Conv2D", names[1]]
    assert kept["speed"] is None and kept["weights_kept"] == 4  # two (weights, folded BatchNorm bias) pairs
    types = _types(xml)
    f32 = sorted(name for name, t in types.items() if t == "f32")
    weights = [op for op in kept["ops"] if op in types]
    assert f32 == sorted(weights) and len(f32) == 4
    assert sum(t == "f16" for t in types.values()) == len(types) - 4 > 50

    verify = [*args[:args.index("convert")], "verify", MODEL, "--synthetic-weights", "-p", "FP16", "--limit", "8",
              "--data-dir", str(shared_dir / "imagenet-sample"), "--no-diff", "--report", str(root / "r.json")]
    _convert(verify)  # verify says what the IR it verified keeps, in every rendering
    [run] = [r for r in json.loads((root / "r.json").read_text())["models"][0]["runs"] if r["name"] == "FP16"]
    assert run["kept"]["layers"] == kept["layers"] and run["kept"]["ops"] == len(kept["ops"])
    assert "kept 2 layers in f32 (" in (root / "r.md").read_text()
    assert "FP16: kept 2 layers in f32 (" in (root / "r.html").read_text()

    before = xml.with_suffix(".bin").read_bytes()
    bad = _convert(args, "--keep-precision", "Conv2d_0/Conv2D,Conv2d_99_pointwise")
    assert bad.exit_code == 2 and "'Conv2d_99_pointwise' is not a matched layer" in bad.output
    assert "omzconv diff" in bad.output and xml.with_suffix(".bin").read_bytes() == before  # nothing written

    none = _convert(args, "--keep-precision", "none", "--json")
    assert json.loads(none.output)[0]["kept"] is None and kept_precision(xml) is None
    assert set(_types(xml).values()) == {"f16"}


@pytest.mark.slow
def test_keep_precision_auto_says_when_even_every_layer_is_not_enough(repair_ws):
    root, args, xml = repair_ws
    impossible = root / "impossible.yaml"
    impossible.write_text((root / "models.yaml").read_text().replace("max_prob_delta: 5.0e-3,", "max_prob_delta: 1.0e-9,"))
    args = [a if a != str(root / "models.yaml") else str(impossible) for a in args]
    before = xml.with_suffix(".bin").read_bytes() if xml.is_file() else None
    result = _convert(args, "--keep-precision", "auto", "--repair-images", "2", "--held-out-images", "2")
    assert result.exit_code == 1
    assert "even keeping all 28 ranked layers in f32" in result.output and "nothing was replaced" in result.output
    assert (xml.with_suffix(".bin").read_bytes() if xml.is_file() else None) == before


# --- INT8: what NNCF reverted, beside diff's ranking --------------------------------------------------


def test_the_ops_nncf_reverted_are_read_from_its_own_report_message():
    """The message NNCF 3.4 logs at the end of accuracy control, made by its own formatter."""
    import logging
    from types import SimpleNamespace

    from omzconv.nncf_reverted import reverted_ops
    from omzconv.quantize import import_nncf

    import_nncf()
    from nncf.quantization.algorithms.accuracy_control.algorithm import _create_message

    ops = [SimpleNamespace(node_name="Multiply_20"), SimpleNamespace(node_name="Multiply_41")]
    nncf_log = logging.getLogger("nncf")
    with reverted_ops() as found:
        nncf_log.info("Accuracy drop: 0.25 (DropType.ABSOLUTE)")
        nncf_log.info("Total number of quantized operations in the model: 27")
        nncf_log.info("Algorithm completed: achieved required accuracy drop 0.0 (DropType.ABSOLUTE)")
        nncf_log.info(f"2 out of 27 were reverted back to the floating-point precision:\n{_create_message(ops)}")
    assert found["ops"] == (("Multiply_20", "Multiply_41"), 27)
    with reverted_ops() as found:
        nncf_log.info("Accuracy drop: 0.0 (DropType.ABSOLUTE)")  # within max_drop: no restoring at all
    assert found["ops"] == ((), None)
    with reverted_ops() as found:
        nncf_log.info("Accuracy drop: 0.25 (DropType.ABSOLUTE)")
        nncf_log.info("Total number of quantized operations in the model: 27")
        nncf_log.info("All layers have been checked and the AccuracyAwareQuantization will not be able to ...")
    assert "ops" not in found  # unknown, not "none"


@pytest.mark.slow
def test_int8_diff_matches_fake_quantize_and_shows_what_nncf_reverted(repair_ws, artefacts, shared_dir):
    from omzconv.cli.diff import nncf_lines
    from omzconv.diff import RunSpec, diff_run, load_images
    from omzconv.diff.nncf import nncf_reverted
    from omzconv.ovcompat import import_openvino
    from omzconv.quantize import ensure_quantized, load_calibration_source
    from omzconv.runners import TFRunner
    from omzconv.workspace import Workspace

    root, _, _ = repair_ws
    model = artefacts.model(MODEL)
    ws = Workspace(artefacts.workspace.cache_dir, root / "out", synthetic=True)
    source = load_calibration_source(artefacts.registry, "imagenet-val", shared_dir / "imagenet-sample")
    result = ensure_quantized(model, ws, artefacts.registry, source, calibration_size=8, max_drop=100.0,
                              validation_size=8, check_images=0)
    assert result.accuracy_control.reverted == ()  # within 100 pp at once: NNCF said it reverted nothing
    ov_model = import_openvino().Core().read_model(str(result.path))
    assert sum(op.get_type_name() == "FakeQuantize" for op in ov_model.get_ordered_ops()) >= 28
    first_conv = next(op.get_friendly_name() for op in ov_model.get_ordered_ops() if op.get_type_name() == "Convolution")

    pixels, _ = load_images(model, artefacts.registry, None, 2)
    runner = TFRunner(model, [model.default_outputs[0].name], pb_path=ws.frozen_path(model))
    try:
        run = diff_run(model, runner, RunSpec("INT8", "INT8", result.path, "f32"), pixels)
    finally:
        runner.close()
    assert run.matching.fraction == 1.0  # FakeQuantize walked through like any single-input op
    assert max(e.rel_error for e in run.layers) > 1e-3  # and INT8 is measurably not FP32
    found = nncf_reverted(run)
    assert found["reverted"] == [] and found["ranked_layers"] == 57 and len(found["diff_top"]) == 5
    assert "reverted no op" in nncf_lines(run)[0]

    sidecar = result.path.parent / "omzconv.json"  # as if NNCF had reverted the first convolution
    meta = json.loads(sidecar.read_text())
    meta["accuracy_control"].update(reverted=[first_conv], quantized_ops=28)
    sidecar.write_text(json.dumps(meta))
    [reverted] = nncf_reverted(run)["reverted"]
    assert reverted["tf_node"] == "MobilenetV1/MobilenetV1/Conv2d_0/Conv2D" and 1 <= reverted["diff_rank"] <= 57
    assert "reverted 1 of 28 quantized ops to float: " + first_conv in nncf_lines(run)[0]


@pytest.mark.slow
def test_keep_precision_auto_keeps_nothing_when_the_plain_ir_is_within_tolerance(repair_ws, artefacts):
    root, args, xml = repair_ws
    args = [a if a != str(root / "models.yaml") else str(artefacts.registry.path) for a in args]  # FP16: 0.1
    result = _convert(args, "--keep-precision", "auto", "--repair-images", "2", "--held-out-images", "4", "--json")
    assert result.exit_code == 0, result.output
    kept = json.loads(result.output)[0]["kept"]
    assert kept["layers"] == [] and kept["ops"] == [] and kept["speed"] is None and kept["tried"] == []
    assert "within its tolerance" in kept["reason"] and kept["results"]["held_out"]["before"]["passed"]
    assert set(_types(xml).values()) == {"f16"}


def test_ranking_and_held_out_images_share_none(registry, shared_dir):
    """With a dataset: quantize's class-balanced split (ranking) and a subset of the rest (held out);
    without: procedural pictures of two seeds."""
    from omzconv.quantize import load_calibration_source, record_key
    from omzconv.repair.auto import image_sets

    model = registry.model(MODEL)
    source = load_calibration_source(registry, "imagenet-val", shared_dir / "imagenet-sample")
    sets = image_sets(model, source, 4, 6)
    assert sets.ranking.shape == (4, 128, 128, 3) and sets.held_out.shape == (6, 128, 128, 3)
    assert len(set(sets.ranking_keys)) == 4 and len(set(sets.held_out_keys)) == 6
    assert not set(sets.ranking_keys) & set(sets.held_out_keys)
    assert set(sets.ranking_keys) | set(sets.held_out_keys) <= {record_key(r) for r in source.records}
    labels = {record_key(r): r.label for r in source.records}
    assert len({labels[k] for k in sets.ranking_keys}) == 4  # class-balanced: four classes
    assert image_sets(model, source, 4, 6).held_out_keys == sets.held_out_keys  # seeded
    procedural = image_sets(model, None, 3, 3)
    assert not set(procedural.ranking_keys) & set(procedural.held_out_keys)
    assert not np.array_equal(procedural.ranking, procedural.held_out)


def test_a_later_convert_inherits_the_request_its_fp16_ir_was_made_with(tmp_path):
    from omzconv.repair.record import inherited

    tol = PrecisionTolerance(top1_pp=0.3, max_prob_delta=5e-3, tie_margin=0.05)
    xml = tmp_path / "FP16" / "m.xml"
    xml.parent.mkdir()
    assert inherited(xml) is None  # no IR yet: plain
    for request in (KeepRequest("auto"), KeepRequest("layers", ("a/Conv2D", "b"))):
        (xml.parent / "omzconv.json").write_text(json.dumps({"recipe": {"keep_precision": request.recipe(tol)}}))
        assert inherited(xml) == request
    (xml.parent / "omzconv.json").write_text(json.dumps({"recipe": {"precision": "FP16"}}))
    assert inherited(xml) is None  # a plain FP16 IR stays plain
