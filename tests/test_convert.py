"""Convert: frozen graph → IR with the seed's interface, faithful within tolerance, atomic, re-run safe."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.convert import build_ov_model, convert, parse_precisions
from omzconv.errors import ConversionError, GraphError, UsageError
from omzconv.fileutil import file_digest
from omzconv.ovcompat import import_openvino
from omzconv.preprocess import prepare_image
from omzconv.runners import OVRunner, TFRunner, IRInput, probabilities

MODELS = ["inception_v4", "inception_resnet_v2"]
EXPECTED_IO = {
    "inception_v4": ({"data", "input"}, "InceptionV4/Logits/Predictions"),
    "inception_resnet_v2": ({"input"}, "InceptionResnetV2/Logits/Logits/BiasAdd"),
}


@pytest.fixture(scope="module")
def sample_pixels(shared_dir):
    """Eight real images, decoded/cropped/resized once: the same pixels for both runtimes."""
    paths = sorted((shared_dir / "imagenet-sample" / "ILSVRC2012_img_val").glob("*.JPEG"))[::25]
    return np.stack([prepare_image(p, 0.875, 299) for p in paths])


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("precision", ["FP32", "FP16"])
def test_ir_interface_is_the_seeds(artefacts, name, precision):
    ov = import_openvino()
    xml = artefacts.ir(name, precision)
    ir = ov.Core().read_model(str(xml))
    names, output = EXPECTED_IO[name]
    [inp] = ir.inputs
    assert inp.get_names() == names
    assert list(inp.get_partial_shape().to_shape()) == [1, 3, 299, 299]
    assert inp.get_element_type() == ov.Type.f32
    assert str(ir.get_parameters()[0].get_layout()) == "[N,C,H,W]"
    assert [o.get_names() for o in ir.outputs] == [{output}]
    assert not any(":0" in n for port in [*ir.inputs, *ir.outputs] for n in port.get_names())
    info = ir.get_rt_info()["model_info"]
    assert info["model_type"].astype(str) == "Classification"
    labels = info["labels"].astype(str).split()
    assert len(labels) == 1001 and labels[0] == "background" and labels[1] == "tench"
    assert ir.get_rt_info(["omzconv", "weights"]).astype(str) == "synthetic"
    assert ir.get_rt_info(["omzconv", "precision"]).astype(str) == precision
    weights = [op for op in ir.get_ops() if op.get_type_name() == "Constant" and op.get_output_size() == 1]
    types = {op.get_output_element_type(0).get_type_name() for op in weights if np.prod(op.get_output_shape(0)) > 1000}
    assert types == ({"f16"} if precision == "FP16" else {"f32"})


@pytest.mark.parametrize("name", MODELS)
def test_ir_on_bgr_raw_matches_frozen_graph_on_rgb_normalized(artefacts, sample_pixels, name):
    """The IR given BGR NCHW raw pixels computes what the frozen graph computes on RGB NHWC [-1,1]."""
    model = artefacts.model(name)
    output = EXPECTED_IO[name][1]
    reference = probabilities(model, output, TFRunner(model, [output], pb_path=artefacts.frozen(name))
                              .run(sample_pixels)[output])
    ov = import_openvino()
    for precision in ("FP32", "FP16"):
        compiled = ov.Core().compile_model(str(artefacts.ir(name, precision)), "CPU",
                                           {"INFERENCE_PRECISION_HINT": "f32"})
        bgr_nchw = sample_pixels[..., ::-1].transpose(0, 3, 1, 2)  # laid out by hand, not by omzconv
        got = np.concatenate([compiled(bgr_nchw[i:i + 1])[output] for i in range(len(bgr_nchw))])
        got = probabilities(model, output, got)
        if precision == "FP32":
            assert np.abs(got - reference).max() <= 1e-4
        else:
            assert (got.argmax(-1) == reference.argmax(-1)).mean() >= 7 / 8


def test_self_check_is_recorded_and_rerun_skips(artefacts, registry):
    model = artefacts.model("inception_v4")
    xml = artefacts.ir("inception_v4", "FP32")
    meta = json.loads((xml.parent / "omzconv.json").read_text())
    assert meta["check"]["passed"] and meta["check"]["max_prob_delta"] <= 1e-4
    assert meta["recipe"]["source_sha256"] == "sha256:" + file_digest(artefacts.frozen("inception_v4"))
    before = xml.stat().st_mtime_ns
    again = convert(model, artefacts.frozen("inception_v4"), xml, "FP32",
                    outputs=[EXPECTED_IO["inception_v4"][1]], tolerance=registry.tolerances.precisions["FP32"],
                    weights="synthetic")
    assert again.skipped and xml.stat().st_mtime_ns == before
    assert again.check.max_prob_delta == meta["check"]["max_prob_delta"]


def test_u8_nhwc_variant(artefacts, registry, tmp_path, sample_pixels):
    model = artefacts.model("inception_v4")
    output = EXPECTED_IO["inception_v4"][1]
    xml = tmp_path / "u8" / "inception_v4.xml"
    result = convert(model, artefacts.frozen("inception_v4"), xml, "FP32", outputs=[output],
                     tolerance=registry.tolerances.precisions["FP32"], weights="synthetic",
                     input_type="u8", layout="NHWC")
    assert result.check.passed
    ov = import_openvino()
    ir = ov.Core().read_model(str(xml))
    assert ir.inputs[0].get_element_type() == ov.Type.u8
    assert list(ir.inputs[0].get_partial_shape().to_shape()) == [1, 299, 299, 3]
    runner = OVRunner(model, xml, [output])
    assert runner.input == IRInput("NHWC", "BGR", "u8")
    pixels = np.rint(sample_pixels[:2])
    a = runner.run(pixels)[output]
    b = OVRunner(model, artefacts.ir("inception_v4", "FP32"), [output]).run(pixels)[output]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_failed_self_check_writes_nothing(artefacts, registry, tmp_path, monkeypatch):
    """An IR that disagrees with the original never lands under its final name."""
    import omzconv.convert as convert_module
    model = artefacts.model("inception_v4")
    real = convert_module.OVRunner

    class Skewed(real):
        def run(self, batch):
            return {k: v[:, ::-1].copy() for k, v in super().run(batch).items()}

    monkeypatch.setattr(convert_module, "OVRunner", Skewed)
    xml = tmp_path / "FP32" / "inception_v4.xml"
    with pytest.raises(ConversionError, match="self-check failed .*nothing was written"):
        convert(model, artefacts.frozen("inception_v4"), xml, "FP32", outputs=[EXPECTED_IO["inception_v4"][1]],
                tolerance=registry.tolerances.precisions["FP32"], weights="synthetic")
    assert not xml.parent.exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_bad_sources_give_clear_errors(artefacts, tmp_path):
    model = artefacts.model("inception_v4")
    junk = tmp_path / "junk.pb"
    junk.write_bytes(b"\xff\xfe not a graph")
    with pytest.raises(GraphError, match="is not a TensorFlow GraphDef"):
        build_ov_model(model, junk, ["InceptionV4/Logits/Predictions"], IRInput())
    with pytest.raises(GraphError, match="names that look close: InceptionV4/Logits/Predictions"):
        build_ov_model(model, artefacts.frozen("inception_v4"), ["InceptionV4/Logits/Prediction"], IRInput())
    with pytest.raises(UsageError, match="unknown precision 'FP8'; choose from FP32, FP16"):
        parse_precisions("FP32,FP8")


def test_cli_convert_dry_run_and_json(artefacts, synthetic_workspace):
    artefacts.ir("inception_v4", "FP32")
    base = ["--cache-dir", str(synthetic_workspace.cache_dir), "-o", str(synthetic_workspace.output_dir)]
    dry = CliRunner().invoke(main, [*base, "convert", "inception_v4", "--synthetic-weights", "-p", "FP32", "-n"])
    assert dry.exit_code == 0 and "inception_v4 FP32:" in dry.output
    result = CliRunner().invoke(main, [*base, "convert", "googlenet-v4-tf", "--synthetic-weights",
                                       "--precisions", "fp32", "--json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    assert entry["skipped"] and entry["synthetic"] and entry["check"]["passed"]
    bad = CliRunner().invoke(main, [*base, "convert", "inception_v4", "-p", "INT4"])
    assert bad.exit_code == 2 and "unknown precision 'INT4'" in bad.output


def test_same_inputs_give_byte_identical_irs(artefacts, registry, tmp_path):
    """OpenVINO numbers the nodes it names itself with a process-wide counter: a process that had
    converted something before wrote other bytes. Convert, convert something else, convert again."""
    model = artefacts.model("inception_v4")
    pb = artefacts.frozen("inception_v4")
    options = dict(outputs=[EXPECTED_IO["inception_v4"][1]], weights="synthetic", check=False)
    first = convert(model, pb, tmp_path / "a" / "FP16" / "m.xml", "FP16",
                    tolerance=registry.tolerances.precisions["FP16"], **options)
    convert(model, pb, tmp_path / "other" / "FP32" / "m.xml", "FP32", input_type="u8",
            tolerance=registry.tolerances.precisions["FP32"], **options)
    second = convert(model, pb, tmp_path / "b" / "FP16" / "m.xml", "FP16",
                     tolerance=registry.tolerances.precisions["FP16"], **options)
    for suffix in (".xml", ".bin"):
        assert first.path.with_suffix(suffix).read_bytes() == second.path.with_suffix(suffix).read_bytes(), suffix


def test_interface_variants_get_their_own_folder(artefacts, synthetic_workspace):
    default_xml = artefacts.ir("inception_v4", "FP32")
    before = file_digest(default_xml)
    base = ["--cache-dir", str(synthetic_workspace.cache_dir), "-o", str(synthetic_workspace.output_dir)]
    result = CliRunner().invoke(main, [*base, "convert", "inception_v4", "--synthetic-weights", "-p", "FP32",
                                       "--input-type", "u8", "--layout", "NHWC", "--no-check", "--json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.output)
    variant = default_xml.parent.parent / "FP32-u8-nhwc" / "inception_v4.xml"
    assert entry["path"] == str(variant) and not entry["skipped"]
    assert file_digest(default_xml) == before  # the default IR is untouched
    ov = import_openvino()
    port = ov.Core().read_model(variant).inputs[0]
    assert port.get_element_type() == ov.Type.u8 and list(port.get_partial_shape().to_shape()) == [1, 299, 299, 3]

    bench = CliRunner().invoke(main, [*base, "benchmark", "inception_v4", "--synthetic-weights", "-p", "FP32",
                                      "--runtime", "openvino", "--iterations", "2", "--input-type", "u8",
                                      "--layout", "NHWC", "--json"])
    assert bench.exit_code == 0, bench.output
    [measured] = json.loads(bench.output)["models"][0]["measurements"]
    assert measured["path"] == str(variant)
