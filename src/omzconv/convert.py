"""Frozen graph → OpenVINO IR, with the model's preprocessing folded in, then a self-check.

The IR takes what the seed docs describe: by default NCHW [1,3,S,S] (S the model's input size), BGR,
raw 0..255 f32, cropped and resized by the model's recipe; its PrePostProcessor reverses the
channels and applies the mean/scale declared in models.yaml.
The IR is written to a temp directory, checked against the frozen graph in TensorFlow on a few
deterministic images, and only then renamed to `<out>/<name>/<PRECISION>/`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzconv import __version__
from omzconv.datasets import IMAGENET_SYNSETS
from omzconv.errors import ConversionError, UsageError
from omzconv.fileutil import atomic_dir, file_digest, write_json_atomic
from omzconv.freeze import check_frozen_graph
from omzconv.integrity import stamp
from omzconv.ovcompat import stable_names
from omzconv.registry import Model, PrecisionTolerance
from omzconv.runners import IRInput, OVRunner, probabilities, top_margin
from omzconv.selfcheck import check_images, reference_outputs
from omzconv.workspace import SIDECAR, current_sidecar, ir_files, ir_size

PRECISIONS = ("FP32", "FP16")


@dataclass(frozen=True)
class SelfCheck:
    images: int
    max_prob_delta: float
    top1_agreement: float  # over the images where the original is decisive (not a near-tie)
    ties: int
    criterion: str
    passed: bool


@dataclass(frozen=True)
class ConvertResult:
    model: str
    precision: str
    path: Path
    skipped: bool
    seconds: float
    size: int
    check: SelfCheck | None
    kept: dict | None = None  # FP16 with --keep-precision: what was kept in f32 and why (repair.KeptPrecision)


def parse_precisions(text: str | Sequence[str], allowed: Sequence[str] = PRECISIONS) -> tuple[str, ...]:
    items = [p.strip().upper() for p in (text.split(",") if isinstance(text, str) else text) if p.strip()]
    for item in items:
        if item not in allowed:
            raise UsageError(f"unknown precision {item!r}; choose from {', '.join(allowed)}")
    if not items:
        raise UsageError(f"no precision given; choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


def ir_input_for(model: Model, input_type: str | None, layout: str | None) -> IRInput:
    declared = model.converted_input
    return IRInput(layout or declared.layout, declared.color, input_type or declared.element_type)


def _stored_check(meta: dict) -> SelfCheck | None:
    return SelfCheck(**meta["check"]) if meta.get("check") else None


def convert(
    model: Model,
    pb_path: Path,
    xml_path: Path,
    precision: str,
    *,
    outputs: Sequence[str],
    tolerance: PrecisionTolerance,
    weights: str,
    input_type: str | None = None,
    layout: str | None = None,
    check: bool = True,
    force: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
    pb_sha256: str | None = None,
    keep: Any = None,
    repair: Any = None,
) -> ConvertResult:
    """Convert `pb_path` to the IR at `xml_path` in `precision`; skip if up to date (an IR whose
    files changed since it was made is made again, saying so). `pb_sha256`: the graph's hash when
    the caller has just checked it (`pipeline.ensure_graph`), else it is hashed here. `keep`: a
    `repair.KeepRequest` (FP16 only): the layers to keep in f32, `repair` its `RepairSettings`."""
    precision = parse_precisions([precision])[0]
    if keep is not None and precision != "FP16":
        raise UsageError(f"--keep-precision applies to FP16 IRs, not {precision}")
    ir_input = ir_input_for(model, input_type, layout)
    if pb_sha256 is None:
        on_stage("hashing frozen graph")
        pb_sha256 = "sha256:" + file_digest(pb_path)
    recipe = {
        "source_sha256": pb_sha256,
        "precision": precision,
        "outputs": list(outputs),
        "input": asdict(ir_input),
        "weights": weights,
        "omzconv_version": __version__,
        **({"keep_precision": keep.recipe(tolerance)} if keep is not None else {}),
    }
    if not force and (meta := current_sidecar(xml_path, recipe)):
        return ConvertResult(model.name, precision, xml_path, True, 0.0, ir_size(xml_path), _stored_check(meta),
                             meta.get("keep_precision"))

    started = time.perf_counter()
    timings = {}
    on_stage("converting")
    ov_model = build_ov_model(model, pb_path, outputs, ir_input)
    set_model_info(ov_model, model, ir_input, recipe)
    timings["convert"] = round(time.perf_counter() - started, 3)
    from openvino import save_model

    with atomic_dir(xml_path.parent) as tmp:
        tmp_xml = tmp / xml_path.name
        on_stage("saving")
        t0 = time.perf_counter()
        kept = None
        if keep is None:
            save_model(ov_model, str(tmp_xml), compress_to_fp16=(precision == "FP16"))
        else:
            from omzconv.repair import RepairSettings, keep_precision

            kept = keep_precision(model, ov_model, pb_path, tmp_xml, keep, tolerance, outputs,
                                  repair or RepairSettings(), on_stage).to_dict()
        timings["save"] = round(time.perf_counter() - t0, 3)
        result = None
        if check:
            on_stage("self-check")
            t0 = time.perf_counter()
            result = self_check(model, pb_path, pb_sha256, tmp_xml, outputs, tolerance)
            timings["self_check"] = round(time.perf_counter() - t0, 3)
            if not result.passed:
                raise ConversionError(
                    f"{model.name} {precision}: self-check failed ({result.criterion}): max |Δ prob| "
                    f"{result.max_prob_delta:.3g}, top-1 agreement {result.top1_agreement:.0%} on "
                    f"{result.images} images; nothing was written")
        seconds = time.perf_counter() - started
        write_json_atomic(tmp / SIDECAR, {
            "recipe": recipe,
            "sha256": "sha256:" + file_digest(ir_files(tmp_xml)),
            "stamp": stamp(ir_files(tmp_xml)),
            "check": asdict(result) if result else None,
            "seconds": {**timings, "total": round(seconds, 3)},
            **({"keep_precision": kept} if keep is not None else {}),
        })
    return ConvertResult(model.name, precision, xml_path, False, seconds, ir_size(xml_path), result, kept)


def build_ov_model(model: Model, pb_path: Path, outputs: Sequence[str], ir_input: IRInput) -> Any:
    """convert_model + PrePostProcessor; tensor names as the seed docs give them."""
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    from openvino.preprocess import ColorFormat, PrePostProcessor

    check_frozen_graph(model, pb_path, outputs)
    try:
        ov_model = ov.convert_model(str(pb_path), input=[(f"{model.input.name}:0", list(model.input.shape))],
                                    output=[f"{o}:0" for o in outputs])
    except Exception as exc:  # OpenVINO raises its own exception types with multi-line text
        raise ConversionError(f"OpenVINO could not convert {pb_path}: {str(exc).strip().splitlines()[0]}") from exc

    pre = model.preprocessing
    ppp = PrePostProcessor(ov_model)
    tensor = ppp.input().tensor()
    tensor.set_element_type(ov.Type.u8 if ir_input.element_type == "u8" else ov.Type.f32)
    tensor.set_layout(ov.Layout(ir_input.layout))
    tensor.set_color_format(getattr(ColorFormat, ir_input.color))
    ppp.input().model().set_layout(ov.Layout(model.input.layout))
    steps = ppp.input().preprocess()
    if ir_input.element_type == "u8":
        steps.convert_element_type(ov.Type.f32)
    if ir_input.color != pre.color:
        steps.convert_color(getattr(ColorFormat, pre.color))
    steps.mean(pre.mean[0] if len(pre.mean) == 1 else list(pre.mean))
    if pre.scale != (1.0,):
        steps.scale(pre.scale[0] if len(pre.scale) == 1 else list(pre.scale))
    ov_model = ppp.build()

    ci = model.converted_input
    ov_model.inputs[0].get_tensor().set_names({ci.name, *ci.aliases})
    for port in ov_model.outputs:
        names = port.get_names()
        match = [o for o in outputs if o in names or f"{o}:0" in names]
        if len(match) != 1:
            raise ConversionError(f"cannot tell which requested output the IR output {sorted(names)} is")
        port.get_tensor().set_names({match[0]})
    ov_model.set_friendly_name(model.name)
    stable_names(ov_model)
    return ov_model


def imagenet_labels(num_classes: int, label_offset: int) -> list[str]:
    """Class names for the model's outputs: 'background' first for 1001-class models."""
    names = [line.split(" ", 1)[1].split(",")[0].strip().replace(" ", "_")
             for line in IMAGENET_SYNSETS.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = ["background"] * label_offset + names
    if len(labels) != num_classes:
        raise ConversionError(f"{len(labels)} labels for {num_classes} classes")
    return labels


def set_model_info(ov_model: Any, model: Model, ir_input: IRInput, recipe: dict) -> None:
    """rt_info the way openvino-model-api reads it, plus omzconv's provenance."""
    info = {
        "model_type": "Classification",
        "labels": " ".join(imagenet_labels(model.num_classes, model.label_offset)),
        "embedded_processing": "True",
        "reverse_input_channels": "False",
        "mean_values": "0 0 0",
        "scale_values": "1 1 1",
        "resize_type": "standard",
        "output_raw_scores": "True",
        "input_layout": ir_input.layout,
        "input_color": ir_input.color,
        "input_element_type": ir_input.element_type,
        "preprocessing": model.preprocessing.recipe,
        "central_fraction": str(model.preprocessing.central_fraction),
        **({"resize_side": str(model.preprocessing.resize_side)} if model.preprocessing.resize_side else {}),
        "folded_mean": " ".join(map(str, model.preprocessing.mean)),
        "folded_scale": " ".join(map(str, model.preprocessing.scale)),
    }
    for key, value in info.items():
        ov_model.set_rt_info(value, ["model_info", key])
    provenance = {"version": __version__, "model": model.name, "source_sha256": recipe["source_sha256"],
                  "weights": recipe["weights"], "precision": recipe["precision"],
                  "outputs": " ".join(recipe["outputs"])}
    for key, value in provenance.items():
        ov_model.set_rt_info(value, ["omzconv", key])


def self_check(model: Model, pb_path: Path, pb_sha256: str, xml_path: Path, outputs: Sequence[str],
               tolerance: PrecisionTolerance) -> SelfCheck:
    """Compare the IR with the frozen graph on a few deterministic natural-looking images."""
    images = check_images(model)
    expected = reference_outputs(model, pb_path, pb_sha256, outputs)
    got = OVRunner(model, xml_path, outputs).run(images)
    deltas, agree, ties = [], [], 0
    for name in outputs:
        p_ref, p_ir = probabilities(model, name, expected[name]), probabilities(model, name, got[name])
        deltas.append(float(np.abs(p_ref - p_ir).max()))
        decisive = top_margin(p_ref) > tolerance.self_check_tie_margin
        ties += int((~decisive).sum())
        same = p_ref.argmax(-1) == p_ir.argmax(-1)
        agree.append(float(same[decisive].mean()) if decisive.any() else 1.0)
    max_delta, agreement = max(deltas), min(agree)
    criteria = []
    passed = True
    if tolerance.self_check_max_prob_delta is not None:
        criteria.append(f"max |Δ prob| ≤ {tolerance.self_check_max_prob_delta:g}")
        passed &= max_delta <= tolerance.self_check_max_prob_delta
    if tolerance.self_check_top1:
        criteria.append(f"top-1 agrees where the original's margin > {tolerance.self_check_tie_margin:g}")
        passed &= agreement == 1.0
    return SelfCheck(len(images), max_delta, agreement, ties, ", ".join(criteria) or "none", bool(passed))
