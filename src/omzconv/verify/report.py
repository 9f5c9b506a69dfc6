"""The report: dataclasses that serialize to JSON (`VerifyReport.to_dict`) and how it is assembled
(`make_report`). It knows no renderer: `render_md` and `render_html` take a report; where it goes
and in which form is `write`'s."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from omzconv import __version__
from omzconv.verify.metrics import wilson_interval

if TYPE_CHECKING:
    import numpy as np

    from omzconv.verify.selection import Selection

SCHEMA = 1
ORIGINAL = "original"  # the run of the original frozen graph
NOT_APPLICABLE = "not applicable"  # a check's status where its criterion means nothing (Check.detail says why)


@dataclass(frozen=True)
class Accuracy:
    correct: int
    images: int
    value: float | None  # fraction; None without images
    ci95: tuple[float, float]  # Wilson score interval

    @classmethod
    def of(cls, correct: int, images: int) -> Accuracy:
        return cls(correct, images, correct / images if images else None, wilson_interval(correct, images))


@dataclass(frozen=True)
class RunResult:
    """One runtime on one artefact: the original graph in TensorFlow or an IR in OpenVINO."""

    name: str  # "original", "FP32", "FP16"
    runtime: str  # "tensorflow" or "openvino"
    artefact: str
    sha256: str
    images: int  # images in the metrics (those every run of the model has)
    top1: Accuracy
    top5: Accuracy
    inferred: int  # images run now
    cached: int  # images taken from the cache
    seconds: float  # this run's stage wall time now (see evaluate's docstring)
    load_seconds: float
    images_per_second: float | None  # over the images run now and the cached ones whose time the cache kept
    excluded: int = 0  # images left out because they calibrated this (INT8) IR
    cached_seconds: float = 0.0  # the stage time the cached images took when they were run (from the cache)
    speed_source: str = ""  # what images_per_second is measured on: "this run", "cache", "this run and cache", ""
    inference_precision: str = "f32"  # what was asked of OpenVINO: f32, bf16, f16, default
    executed: str = "f32"  # what OpenVINO computed in on this CPU (an IR); TensorFlow: f32
    tolerance: str | None = None  # the models.yaml tolerance it was held to (execution.tolerance_key)
    kept: dict | None = None  # what a repaired FP16 IR keeps in f32 and why (repair.short_record)


@dataclass(frozen=True)
class Comparison:
    """A converted model against the original, image by image."""

    precision: str
    images: int
    top1_delta_pp: float | None  # converted top-1 minus original top-1, percentage points
    top1_agreement: float | None  # share of images with the same top-1 class
    top5_agreement: float | None  # share of images with the same top-5 set
    max_abs_prob_delta: float | None  # over images and classes
    mean_abs_prob_delta: float | None  # over images and classes
    reference: str = ORIGINAL  # what it is compared with: the original, or FP32 for INT8


@dataclass(frozen=True)
class Check:
    """One criterion of the verdict. Only "passed" and "failed" checks decide it; a check whose
    criterion means nothing here is "not applicable", and `detail` says why."""

    subject: str  # "FP32 vs original", "original vs TF-Slim published"
    metric: str  # "max |Δp|", "top-1 changes where margin > 0.05", "|Δ top-1|", ...
    value: float | None  # in `unit`; None when not applicable
    op: str  # "<=" or ">="
    limit: float
    unit: str  # "pp", "p" (a probability), "images"
    status: str  # "passed", "failed" or NOT_APPLICABLE
    detail: str = ""  # what it was measured on, or why it does not apply
    images: int | None = None  # images it was decided on (for the top-1 check: the decisive ones)
    near_ties: int | None = None  # images excluded as near-ties (the top-1 check)

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def applies(self) -> bool:
        return self.status != NOT_APPLICABLE


@dataclass(frozen=True)
class ReferenceResult:
    source: str
    output: str
    top1: float  # percent
    top5: float
    applied: bool
    reasons: tuple[str, ...]  # why not applied


@dataclass(frozen=True)
class Problem:
    path: str
    reason: str


@dataclass(frozen=True)
class Skipped:
    count: int
    first: tuple[Problem, ...]


@dataclass(frozen=True)
class WorkerSpeed:
    worker: str  # host:pid
    images: int  # in the chunks it returned
    seconds: float  # busy: decoding them, then every run
    images_per_second: float | None


@dataclass(frozen=True)
class Execution:
    """What ran a model's images: this process, or Ray workers (`--executor ray`)."""

    executor: str  # "in-process" or "ray"
    address: str  # "local" or the Ray cluster's address
    workers: int
    per_worker: tuple[WorkerSpeed, ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Where a run that failed, or disagreed with the original on some image, departs from it:
    `omzconv diff` on its worst images (a failed run: the page is written beside the report), or
    the command that would (a run that passed)."""

    run: str
    why: str  # "failed" or "disagreed"
    command: str  # the `omzconv diff` command that explains it
    page: str | None = None  # the diff page's file name, beside the report
    images: int = 0  # images diffed
    first_layer: str | None = None  # the first layer whose relative error exceeds `threshold`
    first_index: int | None = None  # its place in the original's topological order
    first_error: float | None = None
    threshold: float | None = None
    output_error: float | None = None  # the output's relative error on those images
    error: str | None = None  # why the diff could not run


@dataclass
class ModelReport:
    model: str
    alias: str
    output: str
    output_kind: str
    weights: str  # official, synthetic or custom
    images: int
    runs: list[RunResult]
    comparisons: list[Comparison]
    references: list[ReferenceResult]
    checks: list[Check]
    skipped: Skipped  # images this model could not use (undecodable, label out of its range)
    seconds: float
    interrupted: bool = False
    execution: Execution | None = None
    explanations: list[Explanation] = field(default_factory=list)
    per_image: PerImage | None = field(default=None, repr=False, compare=False)  # not in the JSON

    @property
    def passed(self) -> bool:
        return not self.interrupted and not any(c.failed for c in self.checks)

    @property
    def verdict(self) -> str:
        return "INTERRUPTED" if self.interrupted else "PASSED" if self.passed else "FAILED"


@dataclass(frozen=True)
class PerImage:
    """What the runs of one model predicted, image by image (the records' order): what the HTML
    report draws its disagreements, histograms and per-class figures from. Arrays, not JSON."""

    paths: tuple[str, ...]
    num_classes: int
    label_offset: int  # 1 when class 0 is background
    labels: np.ndarray  # the model's class index per image
    measured: dict[str, np.ndarray]  # run name → bool mask: images in its metrics
    top: dict[str, np.ndarray]  # run name → (n, TOP_K) class ids, most probable first
    prob: dict[str, np.ndarray]  # run name → (n, TOP_K) their probabilities
    dmax: dict[tuple[str, str], np.ndarray]  # (run, reference run) → max |Δ prob| over classes per image


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    layout: str  # caffe, kaggle, folders
    found: str  # one line: which layout was found where
    data_dir: str
    listed: int  # usable records the layout lists
    selected: int  # after --limit
    limit: int | None
    seed: int
    full_size: int  # the dataset's full size (models.yaml), what references are measured on
    skipped: Skipped  # listed images that are missing or have a label out of range


@dataclass
class VerifyReport:
    dataset: DatasetInfo
    models: list[ModelReport]
    synthetic: bool
    interrupted: bool = False
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA
    tool: str = f"omzconv {__version__}"
    notes: list[str] = field(default_factory=list)
    cpu_default: str | None = None  # what this CPU computes an f32 IR in without a hint (OpenVINO)

    @property
    def passed(self) -> bool:
        return not self.interrupted and all(m.passed for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    @property
    def verdict(self) -> str:
        return "INTERRUPTED" if self.interrupted else "PASSED" if self.passed else "FAILED"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(dataclasses.replace(self, models=[dataclasses.replace(m, per_image=None) for m in self.models]))
        data["passed"] = self.passed
        for model, report in zip(data["models"], self.models):
            model.pop("per_image")
            model["passed"] = report.passed
        return data


#: What differs between two runs that computed the same thing: wall times and speeds, when, and who
#: computed it. `comparable` drops them.
TIMING_KEYS = frozenset({"seconds", "load_seconds", "images_per_second", "execution", "created", "cached_seconds",
                         "speed_source"})


def comparable(data: Any) -> Any:
    """`VerifyReport.to_dict()` (or any part of it) without TIMING_KEYS: equal for two executors,
    or a repeated run, that produced the same figures."""
    if isinstance(data, dict):
        return {k: comparable(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [comparable(v) for v in data]
    return data


class VerifyInterrupted(KeyboardInterrupt):
    """Ctrl-C during `evaluate_model`: `.report` holds the result for the images that were done."""

    def __init__(self, report: ModelReport) -> None:
        super().__init__("interrupted")
        self.report = report


SYNTHETIC_NOTE = ("SYNTHETIC WEIGHTS: generated weights that recognize nothing; the accuracies are "
                  "meaningless, only the agreement between the original and the converted models means something "
                  "(the verdict rests on it: same top-1 on decisive images, bounded |Δp|).")
SPEED_NOTE = ("images/s of a run = images it inferred ÷ its stage's wall time: waiting for decoded pixels "
              "(decode + crop + resize, shared by the runs, charged to each in full) plus its own layout, "
              "inference and bookkeeping; loading excluded (graph import or IR compile, and a warm-up run: TensorFlow "
              "optimizes the graph on its first run), as benchmark_app excludes it. Images taken from the cache count "
              "with the stage time they took when they were run, which the cache keeps.")


def make_report(selection: Selection, models: list[ModelReport], synthetic: bool,
                interrupted: bool = False, cpu_default: str | None = None) -> VerifyReport:
    notes = [SPEED_NOTE]
    if synthetic:
        notes.insert(0, SYNTHETIC_NOTE)
    return VerifyReport(dataset=selection.info, models=models, synthetic=synthetic,
                        interrupted=interrupted or any(m.interrupted for m in models), notes=notes,
                        cpu_default=cpu_default)
