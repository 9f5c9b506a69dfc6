"""FP32 IR → INT8 IR by NNCF post-training quantization, calibrated on real images.

The calibration rule, defined once here and recorded in every INT8 IR:

    calibration = split_disjoint(records, size, seed)[0]   # class-balanced, seeded
    evaluation  = every other record of the dataset

Accuracy control (`max_drop`) validates on a class-balanced subset of the evaluation records, and
the quick agreement check on another; `omzconv verify` must evaluate an INT8 IR only on records
whose key (`record_key`, the image's file name) is not in the IR's sidecar list
(`evaluation_records`). Images are prepared exactly as verify prepares them: `prepare`, then
the FP32 IR's own input convention (`IRInput.lay_out`).

NNCF sends usage telemetry through `openvino_telemetry` when it can import it; `import_nncf()`
blocks that import first (see `omzconv.ovcompat`) and checks that NNCF fell back to its stub.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omzconv import __version__
from omzconv.datasets import Record, balanced_subset, load_dataset, resolve_data_dir, split_disjoint
from omzconv.errors import ConversionError, DatasetError
from omzconv.fileutil import artefact_lock, atomic_dir, file_digest, read_json, write_json_atomic
from omzconv.ovcompat import stable_names
from omzconv.registry import Model, Registry
from omzconv.workspace import SIDECAR, current_sidecar, ir_files, ir_size

if TYPE_CHECKING:
    import numpy as np

PRECISION = "INT8"
DEFAULT_DATASET = "imagenet-val"
CALIBRATION_SIZE = 300
CALIBRATION_SEED = 0
VALIDATION_SIZE = 300
VALIDATION_SEED = 1
CHECK_IMAGES = 50
CHECK_SEED = 2
PRESET = "performance"
RULE = ("calibration = split_disjoint(records, size, seed)[0] (class-balanced, seeded); "
        "evaluation = all other records")

Stage = Callable[..., None]  # on_stage(text, done=None, total=None)


class QuantizationError(ConversionError):
    """NNCF could not quantize the model."""


def _quiet(stage: str, done: float | None = None, total: float | None = None) -> None:
    pass


# --- NNCF without telemetry ------------------------------------------------------------------------


def import_nncf() -> Any:
    """NNCF, imported so that it can never send telemetry and never writes to stdout.

    NNCF builds its telemetry object at import time from `openvino_telemetry` and falls back to a
    no-op stub when that import fails; `import_openvino()` makes it fail for this process.
    """
    from omzconv.ovcompat import import_openvino

    import_openvino()
    import nncf
    from nncf.common.logging.logger import nncf_logger
    from nncf.telemetry import decorator, wrapper

    if not isinstance(wrapper.telemetry, wrapper.NNCFTelemetryStub):  # openvino_telemetry got in first
        wrapper.telemetry = decorator.telemetry = wrapper.NNCFTelemetryStub()
    # NNCF logs INFO to stdout with its own handler; stdout belongs to the CLI's tables and JSON.
    for handler in list(nncf_logger.handlers):
        nncf_logger.removeHandler(handler)
    nncf_logger.propagate = True
    nncf_logger.setLevel(logging.NOTSET)
    return nncf


def nncf_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nncf")
    except PackageNotFoundError:
        return "not installed"


@contextlib.contextmanager
def _nncf_output(show_progress: bool) -> Iterator[None]:
    """NNCF's progress bars print to stdout: send them to stderr, or nowhere."""
    target = sys.stderr if show_progress else io.StringIO()
    with contextlib.redirect_stdout(target):
        yield


# --- the calibration / evaluation split ---------------------------------------------------------


def record_key(record: Record) -> str:
    """How a record is named in provenance: its file name (unique in ImageNet val, all layouts)."""
    return record.path.name


def records_digest(records: Iterable[Record]) -> str:
    """sha256 of the records' keys and labels, in order."""
    text = "".join(f"{record_key(r)} {r.label}\n" for r in records)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CalibrationSplit:
    calibration: tuple[Record, ...]
    evaluation: tuple[Record, ...]
    seed: int

    @property
    def digest(self) -> str:
        return records_digest(self.calibration)


def calibration_split(records: Sequence[Record], size: int | None = None,
                      seed: int = CALIBRATION_SEED) -> CalibrationSplit:
    """THE rule: a class-balanced, seeded `size` records to calibrate on (default:
    `default_calibration_size`); the rest to evaluate on."""
    size = default_calibration_size(len(records)) if size is None else size
    if size < 1:
        raise DatasetError(f"the calibration size must be at least 1, got {size}")
    if size >= len(records):
        raise DatasetError(f"cannot take {size} calibration images from a dataset of {len(records)} and "
                           f"keep any to evaluate on; pass a smaller --calibration-size")
    first, rest = split_disjoint(records, size, seed)
    return CalibrationSplit(tuple(first), tuple(rest), seed)


def held_out(split: CalibrationSplit, size: int, seed: int) -> list[Record]:
    """A class-balanced subset of the evaluation records (never a calibration image)."""
    return balanced_subset(split.evaluation, size, seed)


def calibration_keys(int8_xml: Path) -> frozenset[str] | None:
    """The keys of the images an INT8 IR was calibrated on (its sidecar), or None if unknown."""
    meta = read_json(Path(int8_xml).parent / SIDECAR) or {}
    keys = (meta.get("calibration") or {}).get("images")
    return frozenset(keys) if keys is not None else None


def default_calibration_size(available: int) -> int:
    """THE default calibration size, for quantize, convert -p INT8 and verify alike: CALIBRATION_SIZE
    images, or a quarter of a dataset too small to keep three quarters of it for evaluation at that
    size (a dataset under 1,200 images: 50 of the 200-image sample)."""
    return max(1, min(CALIBRATION_SIZE, available // 4))


def up_to_date_int8(int8_xml: Path, fp32_xml: Path) -> dict | None:
    """The INT8 IR's sidecar when the IR is intact, was quantized from the FP32 IR as it is now and
    lists its calibration images; else None. Whatever calibration settings it was made with."""
    int8_xml, fp32_xml = Path(int8_xml), Path(fp32_xml)
    meta = read_json(int8_xml.parent / SIDECAR)
    if not meta or calibration_keys(int8_xml) is None or not all(p.is_file() for p in ir_files(fp32_xml)):
        return None
    if (meta.get("recipe") or {}).get("source_sha256") != "sha256:" + file_digest(ir_files(fp32_xml)):
        return None
    return current_sidecar(int8_xml, meta["recipe"])


def evaluation_records(records: Iterable[Record], int8_xml: Path) -> list[Record]:
    """`records` minus the INT8 IR's calibration images: what it may be evaluated on."""
    keys = calibration_keys(int8_xml)
    if keys is None:
        raise DatasetError(f"{Path(int8_xml).parent / SIDECAR} does not say which images calibrated "
                           f"{Path(int8_xml).name}; re-run `omzconv quantize --force`")
    return [r for r in records if record_key(r) not in keys]


# --- where the calibration images come from -------------------------------------------------------


@dataclass(frozen=True)
class CalibrationSource:
    dataset: str
    data_dir: Path
    description: str
    records: tuple[Record, ...]


def load_calibration_source(registry: Registry, dataset: str = DEFAULT_DATASET,
                            data_dir: Path | None = None) -> CalibrationSource:
    spec = registry.dataset(dataset)
    root = resolve_data_dir(spec, data_dir, "INT8 needs real calibration images")
    found = load_dataset(root, spec.num_classes)
    return CalibrationSource(spec.name, root, found.description, tuple(found.records))


# --- quantization ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    dataset: str
    data_dir: str
    size: int
    seed: int
    images_sha256: str
    rule: str = RULE


@dataclass(frozen=True)
class AccuracyControl:
    """`nncf.quantize_with_accuracy_control` on held-out images: top-1 in percent."""

    max_drop_pp: float
    images: int
    seed: int
    top1_fp32: float
    top1_int8: float
    drop_pp: float
    met: bool
    reverted: tuple[str, ...] | None = None  # IR ops NNCF returned to float (None: its log did not say)
    quantized_ops: int | None = None  # of how many quantized


@dataclass(frozen=True)
class AgreementCheck:
    """Same top-1 class in the INT8 and the FP32 IR on held-out images (reported, not enforced)."""

    images: int
    seed: int
    agreement: float


@dataclass(frozen=True)
class QuantizeResult:
    model: str
    precision: str
    path: Path
    skipped: bool
    seconds: float
    size: int
    weights: str
    source_sha256: str
    nncf_version: str
    calibration: Calibration
    accuracy_control: AccuracyControl | None
    check: AgreementCheck | None


def _source_weights(fp32_xml: Path) -> str:
    meta = read_json(fp32_xml.parent / SIDECAR) or {}
    return (meta.get("recipe") or {}).get("weights", "unknown")


def _result_from_sidecar(model: Model, xml_path: Path, meta: dict) -> QuantizeResult:
    recipe = meta["recipe"]
    cal = meta["calibration"]
    return QuantizeResult(
        model.name, PRECISION, xml_path, True, 0.0, ir_size(xml_path), recipe["weights"],
        recipe["source_sha256"], recipe["nncf_version"],
        Calibration(cal["dataset"], cal["data_dir"], cal["size"], cal["seed"], cal["images_sha256"]),
        AccuracyControl(**meta["accuracy_control"]) if meta.get("accuracy_control") else None,
        AgreementCheck(**meta["check"]) if meta.get("check") else None)


def _top1_index(model: Model, outputs: dict[str, np.ndarray]) -> np.ndarray:
    values = outputs[model.default_outputs[0].name]
    return values.reshape(values.shape[0], -1).argmax(-1)


def quantize(
    model: Model,
    fp32_xml: Path,
    int8_xml: Path,
    source: CalibrationSource,
    *,
    calibration_size: int | None = None,
    seed: int = CALIBRATION_SEED,
    max_drop: float | None = None,
    validation_size: int = VALIDATION_SIZE,
    check_images: int = CHECK_IMAGES,
    force: bool = False,
    show_progress: bool = False,
    on_stage: Stage = _quiet,
) -> QuantizeResult:
    """Quantize the FP32 IR at `fp32_xml` to INT8 at `int8_xml`; skip if up to date.

    `calibration_size` None: `default_calibration_size` of the dataset (the rule every command uses).
    `max_drop` (top-1 percentage points) switches to accuracy control on `validation_size`
    held-out images. `check_images` held-out images measure INT8-vs-FP32 top-1 agreement (0: none).
    """
    fp32_xml, int8_xml = Path(fp32_xml), Path(int8_xml)
    if not fp32_xml.is_file():
        raise QuantizationError(f"{fp32_xml} not found; run `omzconv convert {model.name} -p FP32` first")
    if max_drop is not None and max_drop < 0:
        raise QuantizationError(f"--max-drop must be a non-negative number of percentage points, got {max_drop}")
    split = calibration_split(source.records, calibration_size, seed)
    validation = held_out(split, validation_size, VALIDATION_SEED) if max_drop is not None else []
    if max_drop is not None and not validation:
        raise DatasetError("accuracy control needs held-out validation images; pass --validation-size N > 0")

    on_stage("hashing FP32 IR")
    weights = _source_weights(fp32_xml)
    calibration = Calibration(source.dataset, str(source.data_dir), len(split.calibration), seed, split.digest)
    recipe = {
        "source_sha256": "sha256:" + file_digest(ir_files(fp32_xml)),
        "precision": PRECISION,
        "calibration": {"dataset": source.dataset, "size": calibration.size, "seed": seed,
                        "images_sha256": calibration.images_sha256},
        "preset": PRESET,
        "accuracy_control": None if max_drop is None else {
            "max_drop_pp": float(max_drop), "size": len(validation), "seed": VALIDATION_SEED,
            "images_sha256": records_digest(validation)},
        "check_images": check_images,
        "weights": weights,
        "nncf_version": nncf_version(),
        "omzconv_version": __version__,
    }
    if not force and (meta := current_sidecar(int8_xml, recipe)):
        return _result_from_sidecar(model, int8_xml, meta)

    started = time.perf_counter()
    on_stage("loading NNCF")
    nncf = import_nncf()
    from omzconv.ovcompat import import_openvino
    from omzconv.preprocess import prepare
    from omzconv.runners import ir_input_of

    ov = import_openvino()
    fp32 = ov.Core().read_model(str(fp32_xml))
    ir_input = ir_input_of(fp32)
    pre = model.preprocessing

    def transform(record: Record) -> np.ndarray:
        return ir_input.lay_out(prepare(record.path, pre))

    stage, total, prepared = f"calibrating on {len(split.calibration)} images", len(split.calibration), [0]

    def counted(record: Record) -> np.ndarray:  # NNCF's statistics pass prepares each image once
        prepared[0] += 1
        on_stage(stage, min(prepared[0], total), total)
        return transform(record)

    calibration_data = nncf.Dataset(list(split.calibration), counted)
    accuracy = None
    on_stage(stage, 0, total)
    try:
        with _nncf_output(show_progress):
            if max_drop is None:
                quantized = nncf.quantize(fp32, calibration_data, subset_size=len(split.calibration),
                                          preset=nncf.QuantizationPreset.PERFORMANCE)
            else:
                quantized, accuracy = _quantize_with_accuracy_control(
                    nncf, model, fp32, calibration_data, validation, transform, len(split.calibration),
                    max_drop, on_stage)
    except (nncf.ValidationError, nncf.InternalError) as exc:
        raise QuantizationError(f"NNCF could not quantize {model.name}: {str(exc).strip().splitlines()[0]}") from exc

    provenance = {
        "precision": PRECISION,
        "weights": weights,
        "source_fp32_sha256": recipe["source_sha256"],
        "calibration_dataset": source.dataset,
        "calibration_size": str(calibration.size),
        "calibration_seed": str(seed),
        "calibration_images_sha256": calibration.images_sha256,
        "calibration_rule": RULE,
        "preset": PRESET,
        "nncf_version": recipe["nncf_version"],
        "max_drop_pp": "" if max_drop is None else str(max_drop),
        "version": __version__,
    }
    for key, value in provenance.items():
        quantized.set_rt_info(value, ["omzconv", key])

    with atomic_dir(int8_xml.parent) as tmp:
        tmp_xml = tmp / int8_xml.name
        on_stage("saving")
        stable_names(quantized)
        ov.save_model(quantized, str(tmp_xml), compress_to_fp16=False)
        check = None
        if check_images > 0:
            on_stage("checking agreement with FP32")
            check = agreement_check(model, fp32_xml, tmp_xml, held_out(split, check_images, CHECK_SEED))
        seconds = time.perf_counter() - started
        write_json_atomic(tmp / SIDECAR, {
            "recipe": recipe,
            "sha256": "sha256:" + file_digest(ir_files(tmp_xml)),
            "calibration": {**asdict(calibration), "images": [record_key(r) for r in split.calibration]},
            "accuracy_control": asdict(accuracy) if accuracy else None,
            "check": asdict(check) if check else None,
            "seconds": round(seconds, 3),
        })
    return QuantizeResult(model.name, PRECISION, int8_xml, False, seconds, ir_size(int8_xml), weights,
                          recipe["source_sha256"], recipe["nncf_version"], calibration, accuracy, check)


def _quantize_with_accuracy_control(nncf: Any, model: Model, fp32: Any, calibration_data: Any,
                                    validation: list[Record], transform: Callable[[Record], np.ndarray],
                                    subset_size: int, max_drop: float, on_stage: Stage) -> tuple[Any, AccuracyControl]:
    """Top-1 accuracy (labels + the model's label offset) is the metric NNCF keeps within `max_drop`."""
    import numpy as np

    output = model.default_outputs[0].name
    cache: dict[Path, np.ndarray] = {}
    full_runs: list[float] = []

    def validate(compiled: Any, items: Iterable[Record]) -> tuple[float, list[float]]:
        port = compiled.output(output)
        request = compiled.create_infer_request()
        correct = []
        for record in items:
            if record.path not in cache:
                cache[record.path] = transform(record)
            top1 = int(np.asarray(request.infer({0: cache[record.path]})[port]).reshape(-1).argmax())
            correct.append(float(top1 == record.label + model.label_offset))
        metric = float(np.mean(correct)) if correct else 0.0
        if len(correct) == len(validation):
            full_runs.append(metric)
        return metric, correct

    validation_data = nncf.Dataset(validation)
    from omzconv.nncf_reverted import reverted_ops

    with reverted_ops() as reverted:
        quantized = nncf.quantize_with_accuracy_control(
            fp32, calibration_data, validation_data, validate, max_drop=max_drop / 100.0,
            drop_type=nncf.DropType.ABSOLUTE, preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=subset_size)
    on_stage("measuring the accuracy reached")
    top1_fp32 = full_runs[0] * 100  # NNCF validates the initial model first
    from omzconv.ovcompat import import_openvino
    from omzconv.runners import EXACT

    compiled = import_openvino().Core().compile_model(quantized, "CPU", EXACT)
    top1_int8 = validate(compiled, validation)[0] * 100  # compiled as NNCF compiles what it validates
    drop = top1_fp32 - top1_int8
    return quantized, AccuracyControl(float(max_drop), len(validation), VALIDATION_SEED, round(top1_fp32, 3),
                                      round(top1_int8, 3), round(drop, 3), drop <= max_drop + 1e-9,
                                      *reverted.get("ops", (None, None)))


def agreement_check(model: Model, fp32_xml: Path, int8_xml: Path, records: Sequence[Record]) -> AgreementCheck:
    """Share of `records` whose top-1 class is the same in the INT8 and the FP32 IR."""
    from omzconv.preprocess import prepare
    from omzconv.runners import OVRunner

    outputs = [model.default_outputs[0].name]
    fp32, int8 = OVRunner(model, fp32_xml, outputs), OVRunner(model, int8_xml, outputs)
    pre = model.preprocessing
    same = 0
    for record in records:
        image = prepare(record.path, pre)[None]
        same += int(_top1_index(model, fp32.run(image))[0] == _top1_index(model, int8.run(image))[0])
    return AgreementCheck(len(records), CHECK_SEED, same / len(records) if records else 0.0)


# --- the pipeline stage --------------------------------------------------------------------------


def ensure_quantized(model: Model, workspace: Any, registry: Registry, source: CalibrationSource, *,
                     input_type: str | None = None, layout: str | None = None, progress: Any = None,
                     on_stage: Stage = _quiet, **options: Any) -> QuantizeResult:
    """INT8 IR of `model` in `workspace`, from its FP32 IR with the same input interface (converted
    first if missing, or again, saying so, if its files changed since it was made)."""
    from omzconv.integrity import changed
    from omzconv.pipeline import ensure_converted, within
    from omzconv.workspace import ir_variant

    variant = ir_variant(model, input_type, layout)
    fp32_xml = workspace.ir_path(model, "FP32", variant)
    fp32_meta = read_json(fp32_xml.parent / SIDECAR)
    if not fp32_xml.is_file() or (fp32_meta and changed(ir_files(fp32_xml), fp32_meta)):
        ensure_converted(model, workspace, registry, "FP32", input_type=input_type, layout=layout,
                         progress=progress, on_stage=on_stage)
    int8_xml = workspace.ir_path(model, PRECISION, variant)
    with artefact_lock(int8_xml.parent):
        return quantize(model, fp32_xml, int8_xml, source, on_stage=within(on_stage, "quantize"), **options)
