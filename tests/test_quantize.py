"""INT8: calibration drawn class-balanced, seeded and disjoint from evaluation; the INT8 IR keeps the
FP32 interface and records where it came from; re-runs skip; no dataset is a one-line error.

NNCF quantizes once per session (Inception-v4, synthetic weights, 20 real calibration images, with
accuracy control on 10 held-out images): ~30-40 s.
"""

from __future__ import annotations

import contextlib

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from omzconv.cli import main
from omzconv.datasets import Record, load_dataset
from omzconv.errors import DatasetError
from omzconv.fileutil import file_digest
from omzconv.workspace import SIDECAR, current_sidecar
from omzconv.quantize import (RULE, calibration_split, default_calibration_size, evaluation_records, held_out,
                              import_nncf, record_key, records_digest)

MODEL = "inception_v4"
CALIBRATION = 20
VALIDATION = 10
CHECK = 10


def fake_records(counts: dict[int, int]) -> list[Record]:
    return [Record(Path(f"/data/c{label:03d}/img_{label:03d}_{i:03d}.JPEG"), label)
            for label, n in counts.items() for i in range(n)]


# --- the split ---------------------------------------------------------------------------------


def test_calibration_is_class_balanced_seeded_and_disjoint() -> None:
    records = fake_records({label: 3 + label for label in range(10)})  # 3..12 images per class, 75 in all
    split = calibration_split(records, 25, seed=7)
    assert len(split.calibration) == 25
    per_class = Counter(r.label for r in split.calibration)
    assert sorted(per_class.values()) == [2] * 5 + [3] * 5  # 25 over 10 classes: 2 or 3 each, never 0
    assert not set(split.calibration) & set(split.evaluation)
    assert sorted(split.calibration + split.evaluation) == sorted(records)
    again = calibration_split(list(reversed(records)), 25, seed=7)
    assert again.calibration == split.calibration  # deterministic, whatever the record order
    assert calibration_split(records, 25, seed=8).calibration != split.calibration
    assert split.digest == records_digest(split.calibration) != calibration_split(records, 25, seed=8).digest


def test_held_out_subsets_never_hold_calibration_images() -> None:
    records = fake_records({label: 4 for label in range(30)})
    split = calibration_split(records, 60, seed=0)
    for seed in range(5):
        subset = held_out(split, 40, seed)
        assert len(subset) == 40 and not set(subset) & set(split.calibration)
        assert max(Counter(r.label for r in subset).values()) <= 2  # 40 over 30 classes


def test_split_keeps_something_to_evaluate() -> None:
    records = fake_records({0: 5, 1: 5})
    with pytest.raises(DatasetError, match=r"cannot take 10 calibration images from a dataset of 10.*--calibration-size"):
        calibration_split(records, 10)
    with pytest.raises(DatasetError, match="at least 1"):
        calibration_split(records, 0)


def test_one_default_calibration_size_for_every_command() -> None:
    """300 images, or a quarter of a dataset under 1,200 (50 of the 200-image sample): the rule
    quantize, convert -p INT8 and verify share, so the README's own data works without options."""
    assert [default_calibration_size(n) for n in (200, 1199, 1200, 50_000, 3)] == [50, 299, 300, 300, 1]
    sample = fake_records({label: 1 for label in range(200)})
    assert len(calibration_split(sample).calibration) == 50  # main: "cannot take 300 ... of 200"
    assert len(calibration_split(fake_records({label: 2 for label in range(1000)})).calibration) == 300
    from omzconv.cli import main as cli
    for name in ("quantize", "convert"):
        parsed = cli.commands[name].make_context(name, [MODEL])
        assert parsed.params["calibration_size"] is None, name  # the library applies the rule


def test_records_digest_depends_on_names_and_labels() -> None:
    a = fake_records({0: 2, 1: 2})
    relabelled = [Record(a[0].path, 5), *a[1:]]
    moved = [Record(Path("/elsewhere") / r.path.name, r.label) for r in a]
    assert records_digest(a) != records_digest(relabelled)
    assert records_digest(a) == records_digest(moved)  # the images, not where the dataset is mounted


def test_nncf_is_imported_without_telemetry() -> None:
    import sys

    nncf = import_nncf()
    from nncf.telemetry import decorator, wrapper

    assert sys.modules["openvino_telemetry"] is None  # the import is blocked for this process
    assert isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub)
    assert decorator.telemetry is wrapper.telemetry
    assert nncf.__version__.startswith("3.")


# --- the CLI without a dataset -----------------------------------------------------------------


@pytest.mark.parametrize("args", [["quantize", MODEL], ["convert", MODEL, "-p", "FP32,INT8"]])
def test_int8_without_dataset_is_one_line_error(tmp_path, monkeypatch, args) -> None:
    monkeypatch.delenv("OMZCONV_IMAGENET_VAL", raising=False)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["--cache-dir", str(tmp_path / "c"), "-o", str(tmp_path / "o"), *args,
                                       "--synthetic-weights"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: INT8 needs real calibration images: pass --data-dir DIR")
    assert "OMZCONV_IMAGENET_VAL" in lines[0]
    assert time.perf_counter() - started < 5  # failed before converting anything
    assert not (tmp_path / "o").exists()


def test_data_dir_from_the_environment(tmp_path, monkeypatch) -> None:
    """A missing directory is named with where it came from: the variable, or --data-dir."""
    monkeypatch.setenv("OMZCONV_IMAGENET_VAL", str(tmp_path / "nowhere"))
    result = CliRunner().invoke(main, ["-o", str(tmp_path / "o"), "quantize", MODEL, "--synthetic-weights"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {tmp_path / 'nowhere'}: dataset directory not found (from OMZCONV_IMAGENET_VAL; set it to your "
        "copy of the ILSVRC2012 validation set or pass --data-dir)")
    result = CliRunner().invoke(main, ["-o", str(tmp_path / "o"), "quantize", MODEL, "--synthetic-weights",
                                       "--data-dir", str(tmp_path / "elsewhere")])
    assert result.output.strip() == f"Error: {tmp_path / 'elsewhere'}: dataset directory not found (--data-dir)"
    assert not (tmp_path / "o").exists()


# --- one real quantization ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_dir(shared_dir) -> Path:
    return shared_dir / "imagenet-sample"


STAGES_SEEN: list[tuple] = []  # what `omzconv quantize` showed as its stages, with counts


@contextlib.contextmanager
def _recording_stage_status(label, quiet):
    yield lambda stage, done=None, total=None: STAGES_SEEN.append((stage, done, total))


@pytest.fixture(scope="session")
def int8(artefacts, sample_dir):
    """The FP32 IR, then `omzconv quantize` on it; returns (FP32 xml, INT8 xml, JSON result, seconds)."""
    fp32_xml = artefacts.ir(MODEL, "FP32")
    ws = artefacts.workspace
    args = ["--cache-dir", str(ws.cache_dir), "-o", str(ws.output_dir), "quantize", MODEL, "--synthetic-weights",
            "--data-dir", str(sample_dir), "--calibration-size", str(CALIBRATION), "--max-drop", "100",
            "--validation-size", str(VALIDATION), "--check-images", str(CHECK), "--json"]
    started = time.perf_counter()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("omzconv.cli.quantize.stage_status", _recording_stage_status)
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    [data] = json.loads(result.stdout)
    return fp32_xml, ws.ir_path(artefacts.model(MODEL), "INT8"), data, seconds, args


def test_calibration_shows_a_count_image_by_image(int8) -> None:
    counts = [(done, total) for stage, done, total in STAGES_SEEN if stage.startswith("quantize: calibrating on")]
    assert counts[0] == (0, CALIBRATION) and counts[-1] == (CALIBRATION, CALIBRATION)
    assert [d for d, _ in counts] == sorted(d for d, _ in counts)  # it only moves forward
    assert len(counts) >= CALIBRATION  # one step per image prepared, not a spinner


def test_int8_ir_has_the_fp32_interface(int8) -> None:
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    fp32_xml, int8_xml, data, _, _ = int8
    core = ov.Core()
    fp32, q = core.read_model(str(fp32_xml)), core.read_model(str(int8_xml))
    [inp] = q.inputs
    assert inp.get_names() == {"data", "input"}
    assert list(inp.get_partial_shape().to_shape()) == [1, 3, 299, 299]
    assert inp.get_element_type() == ov.Type.f32
    assert [(i.get_names(), i.get_partial_shape(), i.get_element_type()) for i in q.inputs] == \
        [(i.get_names(), i.get_partial_shape(), i.get_element_type()) for i in fp32.inputs]
    assert [o.get_names() for o in q.outputs] == [{"InceptionV4/Logits/Predictions"}]
    assert str(q.get_parameters()[0].get_layout()) == "[N,C,H,W]"
    # really quantized: int8 weights, FakeQuantize on activations, a quarter of the size
    ops = Counter(op.get_type_name() for op in q.get_ops())
    assert ops["FakeQuantize"] > 100
    int8_weights = [op for op in q.get_ops() if op.get_type_name() == "Constant"
                    and op.get_output_element_type(0) == ov.Type.i8]
    assert len(int8_weights) > 100
    assert int8_xml.with_suffix(".bin").stat().st_size < 0.3 * fp32_xml.with_suffix(".bin").stat().st_size
    assert data["size"] == int8_xml.stat().st_size + int8_xml.with_suffix(".bin").stat().st_size


def test_int8_rt_info_records_provenance(int8, sample_dir) -> None:
    from omzconv.ovcompat import import_openvino

    fp32_xml, int8_xml, _, _, _ = int8
    q = import_openvino().Core().read_model(str(int8_xml))

    def rt(key: str) -> str:
        return q.get_rt_info(["omzconv", key]).astype(str)

    records = load_dataset(sample_dir).records
    expected = calibration_split(records, CALIBRATION, 0)
    assert rt("precision") == "INT8"
    assert rt("weights") == "synthetic"
    assert rt("calibration_dataset") == "imagenet-val"
    assert rt("calibration_size") == str(CALIBRATION)
    assert rt("calibration_seed") == "0"
    assert rt("calibration_images_sha256") == expected.digest
    assert rt("calibration_rule") == RULE
    assert rt("nncf_version") == import_nncf().__version__
    assert rt("source_fp32_sha256") == "sha256:" + file_digest([fp32_xml, fp32_xml.with_suffix(".bin")])
    assert rt("max_drop_pp") == "100.0"
    # the FP32 IR's model_info (read by openvino-model-api) survives quantization
    assert q.get_rt_info(["model_info", "input_layout"]).astype(str) == "NCHW"
    assert q.get_rt_info(["model_info", "model_type"]).astype(str) == "Classification"


def test_calibration_images_are_recorded_and_held_out(int8, sample_dir) -> None:
    _, int8_xml, data, _, _ = int8
    sidecar = json.loads((int8_xml.parent / SIDECAR).read_text())
    records = load_dataset(sample_dir).records
    split = calibration_split(records, CALIBRATION, 0)
    assert sidecar["calibration"]["images"] == [record_key(r) for r in split.calibration]
    assert len(set(sidecar["calibration"]["images"])) == CALIBRATION
    evaluation = evaluation_records(records, int8_xml)
    assert len(evaluation) == len(records) - CALIBRATION
    assert not {record_key(r) for r in evaluation} & set(sidecar["calibration"]["images"])
    assert data["calibration"]["size"] == CALIBRATION and data["calibration"]["images_sha256"] == split.digest
    assert data["calibration"]["data_dir"] == str(sample_dir)


def test_accuracy_control_and_agreement_are_reported(int8) -> None:
    _, _, data, _, _ = int8
    control = data["accuracy_control"]
    assert control["images"] == VALIDATION and control["max_drop_pp"] == 100.0
    assert 0 <= control["top1_fp32"] <= 100 and 0 <= control["top1_int8"] <= 100
    assert control["drop_pp"] == pytest.approx(control["top1_fp32"] - control["top1_int8"], abs=1e-3)
    assert control["met"] is True
    check = data["check"]
    assert check["images"] == CHECK
    assert check["agreement"] * CHECK == pytest.approx(round(check["agreement"] * CHECK))  # k of 10 images
    assert data["synthetic"] is True and data["weights"] == "synthetic"
    assert data["precision"] == "INT8" and data["skipped"] is False


def test_rerun_skips_and_a_changed_recipe_does_not(int8) -> None:
    _, int8_xml, data, first_seconds, args = int8
    mtime = int8_xml.with_suffix(".bin").stat().st_mtime_ns
    started = time.perf_counter()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [again] = json.loads(result.stdout)
    assert again["skipped"] is True
    assert time.perf_counter() - started < min(10, first_seconds / 2)
    assert int8_xml.with_suffix(".bin").stat().st_mtime_ns == mtime
    assert again["calibration"] == data["calibration"] and again["check"] == data["check"]
    recipe = json.loads((int8_xml.parent / SIDECAR).read_text())["recipe"]
    assert current_sidecar(int8_xml, recipe) is not None
    assert current_sidecar(int8_xml, {**recipe, "calibration": {**recipe["calibration"], "seed": 1}}) is None
    assert current_sidecar(int8_xml, {**recipe, "source_sha256": "sha256:" + "0" * 64}) is None


def test_quantize_table_labels_synthetic(int8) -> None:
    *_, args = int8
    result = CliRunner().invoke(main, [a for a in args if a != "--json"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "synthetic weights" in result.output and "up to date" in result.output
    assert "20, seed 0" in result.output



def test_quantize_the_readme_sample_without_options(artefacts, sample_dir) -> None:
    """`omzconv quantize NAME --data-dir ../shared/imagenet-sample` (the README's own data, and what
    benchmark's hint suggests) works: 50 of the 200 images calibrate, the other 150 are held out."""
    small = "mobilenet_v1_025_128"  # the cheapest model proves the rule
    artefacts.ir(small, "FP32")
    ws = artefacts.workspace
    result = CliRunner().invoke(main, ["--cache-dir", str(ws.cache_dir), "-o", str(ws.output_dir), "quantize", small,
                                       "--synthetic-weights", "--data-dir", str(sample_dir), "--check-images", "0",
                                       "--json"])
    assert result.exit_code == 0, result.output
    [data] = json.loads(result.stdout)
    assert (data["calibration"]["size"], data["calibration"]["seed"]) == (50, 0)
    xml = ws.ir_path(artefacts.model(small), "INT8")
    assert len(evaluation_records(load_dataset(sample_dir, 1000).records, xml)) == 150
