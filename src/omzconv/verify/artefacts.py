"""What is verified: the frozen graph and an IR per precision (made when missing), and the runner
that executes each (TensorFlow for the graph, OpenVINO for an IR)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from omzconv.errors import GraphError
from omzconv.execution import ir_precision
from omzconv.fileutil import read_json
from omzconv.registry import Model, Registry
from omzconv.verify.report import ORIGINAL
from omzconv.workspace import SIDECAR, Workspace, ir_variant

if TYPE_CHECKING:
    from omzconv.execution import RunPlan
    from omzconv.quantize import CalibrationSource

INT8 = "INT8"


@dataclass(frozen=True)
class Artefact:
    """A file verified and how it is executed: one run of the report."""

    name: str  # the run: "original", or an IR precision × execution precision ("FP32", "FP32@bf16")
    runtime: str  # "tensorflow" or "openvino"
    path: Path
    sha256: str  # "sha256:<hex>", what the cache is keyed on
    source: str | None = None  # the run it was made from, compared with too (INT8: "FP32")
    calibration: frozenset[str] = frozenset()  # record keys of images it must not be measured on
    inference_precision: str = "f32"  # asked of OpenVINO: f32, bf16, f16 or default (omzconv.execution)
    executed: str = "f32"  # what OpenVINO computes it in on this CPU (probed before the run)
    kept: dict | None = field(default=None, compare=False)  # what a repaired IR keeps in f32 (repair.short_record)

    @property
    def precision(self) -> str:
        """The IR's precision (FP32, FP16, INT8), without the execution precision."""
        return ir_precision(self.name)

    @property
    def identity(self) -> str:
        """What its predictions are keyed on: the bytes, and for an IR not pinned to f32 the
        execution asked and obtained (an FP32 and an FP32@bf16 run never share predictions)."""
        if (self.inference_precision, self.executed) == ("f32", "f32"):
            return self.sha256
        return f"{self.sha256}@{self.inference_precision}:{self.executed}"


@dataclass(frozen=True)
class ModelArtefacts:
    output: str  # the output evaluated: the first the graph was frozen with
    weights: str
    original: Artefact
    converted: tuple[Artefact, ...]

    @property
    def all(self) -> tuple[Artefact, ...]:
        return (self.original, *self.converted)


def ensure_artefacts(model: Model, workspace: Workspace, registry: Registry, precisions: Sequence[str], *,
                     input_type: str | None = None, layout: str | None = None,
                     calibration: Callable[[], CalibrationSource] | None = None,
                     calibration_size: int | None = None,
                     progress: Callable[[int, int | None], None] | None = None,
                     on_stage: Callable[..., None] = lambda *stage: None) -> ModelArtefacts:
    """The frozen graph and an IR per precision, running whatever stage is missing; each artefact
    with the hash its stage verified (the graph against its sidecar by `pipeline.ensure_graph`, which
    makes a damaged one again or refuses it; each IR's files against its sidecar). INT8 comes last, after
    FP32 it is made from (see `int8_artefact`); `calibration` gives the images to make it with.
    `input_type`/`layout` select the IR variant (default: the interface models.yaml declares)."""
    from omzconv.pipeline import ensure_converted, ensure_graph, frozen_outputs, frozen_weights
    from omzconv.repair import kept_precision, short_record

    pb_path, source_sha = ensure_graph(model, workspace, progress=progress, on_stage=on_stage)
    converted = []
    for precision in sorted(precisions, key=lambda p: p == INT8):
        if precision == INT8:
            converted.append(int8_artefact(model, workspace, registry, calibration, calibration_size,
                                           input_type=input_type, layout=layout, progress=progress,
                                           on_stage=on_stage))
            continue
        result = ensure_converted(model, workspace, registry, precision, input_type=input_type, layout=layout,
                                  progress=progress, on_stage=on_stage)
        meta = _sidecar(result.path, f"omzconv convert {model.name} -p {precision} --force")
        kept = kept_precision(result.path)
        converted.append(Artefact(precision, "openvino", result.path, meta["sha256"],
                                  kept=short_record(kept) if kept else None))
        source_sha = source_sha or meta["recipe"]["source_sha256"]  # a graph without a sidecar: convert hashed it
    return ModelArtefacts(output=frozen_outputs(model, workspace)[0], weights=frozen_weights(model, workspace),
                          original=Artefact(ORIGINAL, "tensorflow", pb_path, source_sha or ""),
                          converted=tuple(converted))


def with_runs(artefacts: ModelArtefacts, runs: Sequence[RunPlan], executed: Callable[[str], str]) -> ModelArtefacts:
    """One artefact per planned run (IR precision × execution precision, `execution.plan_runs`), in
    the plan's order, each knowing what OpenVINO computes it in (`executed(asked)`); a run made from
    another (INT8 from FP32) is compared with that one computed the same way, when it is verified."""
    from omzconv.execution import run_name

    by_precision = {a.name: a for a in artefacts.converted}
    planned = {run.name for run in runs}
    converted = []
    for run in runs:
        a = by_precision[run.precision]
        source = run_name(a.source, run.inference_precision) if a.source else None
        converted.append(replace(a, name=run.name, inference_precision=run.inference_precision,
                                 executed=executed(run.inference_precision),
                                 source=source if source in planned else a.source))
    return replace(artefacts, converted=tuple(converted))


def int8_artefact(model: Model, workspace: Workspace, registry: Registry,
                  calibration: Callable[[], CalibrationSource] | None, calibration_size: int | None, *,
                  input_type: str | None = None, layout: str | None = None,
                  progress: Callable[[int, int | None], None] | None = None,
                  on_stage: Callable[..., None] = lambda *stage: None) -> Artefact:
    """The INT8 IR as it is when it is up to date with the FP32 IR (whoever made it, with whatever
    calibration: its sidecar names the images to leave out); otherwise quantized now from the FP32
    IR on `calibration_size` images of `calibration()` (default: `default_calibration_size`)."""
    from omzconv.quantize import (calibration_keys, default_calibration_size, ensure_quantized,
                                  up_to_date_int8)

    variant = ir_variant(model, input_type, layout)
    xml = workspace.ir_path(model, INT8, variant)
    if up_to_date_int8(xml, workspace.ir_path(model, "FP32", variant)) is None:
        if calibration is None:
            raise GraphError(f"{xml}: no up-to-date INT8 IR, and no dataset to calibrate one on")
        source = calibration()
        on_stage("quantizing to INT8")
        ensure_quantized(model, workspace, registry, source, input_type=input_type, layout=layout,
                         progress=progress, on_stage=on_stage,
                         calibration_size=calibration_size or default_calibration_size(len(source.records)),
                         check_images=0)  # verify measures INT8 against FP32 on every held-out image
    meta = _sidecar(xml, f"omzconv quantize {model.name} --force")
    keys = calibration_keys(xml)
    if keys is None:
        raise GraphError(f"{xml.parent / SIDECAR} does not say which images calibrated {xml.name}; "
                         f"run `omzconv quantize {model.name} --force`")
    return Artefact(INT8, "openvino", xml, meta["sha256"], source="FP32", calibration=keys)


def _sidecar(xml: Path, remedy: str) -> dict:
    meta = read_json(xml.parent / SIDECAR) or {}
    if not meta.get("sha256"):
        raise GraphError(f"{xml.parent / SIDECAR}: missing or unreadable; run `{remedy}`")
    return meta


class Runner(Protocol):
    def infer(self, batch_rgb: np.ndarray, on_done: Callable[[int], None] | None = None) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


RunnerFactory = Callable[[Model, Artefact, Sequence[str]], Runner]


def open_runner(model: Model, artefact: Artefact, outputs: Sequence[str]) -> Runner:
    """TensorFlow for the frozen graph, OpenVINO (throughput mode) for an IR; warmed up."""
    from omzconv.runners import OVAsyncRunner, TFRunner

    if artefact.runtime == "tensorflow":
        runner = TFRunner(model, outputs, pb_path=artefact.path)
    else:
        from omzconv.execution import hint_config

        runner = OVAsyncRunner(model, artefact.path, outputs, config=hint_config(artefact.inference_precision))
    runner.warm_up()
    return runner
