"""Verify a conversion: run the original frozen graph (TensorFlow) and each IR (OpenVINO) on the
same ImageNet validation pixels, and report accuracy, agreement and pass/fail.

Layers, top to bottom:

- metrics: plain arrays in, numbers out (`topk_ids`, `topk_correct`, `wilson_interval`,
  `agreement`, `set_agreement`, `prob_deltas`);
- decisions: pure functions from numbers and facts to `Check`s (`conversion_checks`,
  `reference_reasons`, `reference_checks`);
- `PredictionCache`: what each artefact predicted for each image, in sqlite, so an interrupted
  run resumes and a repeated one costs nothing;
- `evaluate_model`: the pipeline (decode once, every runtime on the same pixels) → `ModelReport`;
- `VerifyReport`: dataclasses that serialize to JSON (`to_dict`) and Markdown (`to_markdown`).

Nothing here prints. Every image is decoded and preprocessed once (`preprocess.prepare`) and
the same float pixels go to every runtime: the TF runner makes RGB NHWC `(x - mean) / scale` of
them, the IR runner BGR NCHW raw, so whatever differs is the conversion's.

How images/s is counted. Images are processed in chunks; a thread pool decodes chunk k+1 while the
runtimes, one after another, infer chunk k. A runtime's stage time is the sum over chunks of the
wall time the pipeline waited for that chunk's pixels (charged in full to every runtime that ran
on it: alone, it would have waited as long) plus its own wall time on the chunk: input layout,
inference, softmax, top-k, the |Δ prob| arithmetic and the cache write. images/s = images it
inferred ÷ that time, i.e. what it would sustain alone with a prefetching decoder. Loading the
runtime (TF import, graph import, IR compile, and one warm-up run on a blank image: TensorFlow
optimizes the graph on its first session run, ~4 s for Inception-ResNet-v2) is excluded, as
benchmark_app excludes compiling and its first inference; it is reported as `load_seconds`.
Cached images count in neither.

What the cache stores, and why not the probability vectors. Per artefact (frozen graph or IR,
by sha256) and image (absolute path, size, mtime): the top-5 class ids and their probabilities,
≈ 100 bytes. Per (IR, original) pair and image: max and sum of |Δ prob| over the classes,
computed while both vectors are in memory. That is everything the report needs: accuracy and
agreement from the top-5 ids, max / mean |Δ prob| from the pair rows — 10 MB per artefact for
50,000 images instead of 200 MB of float32 vectors (float16 vectors would be 100 MB and too coarse:
their rounding, up to 1e-4 at p = 0.4, exceeds the FP32 conversion's own |Δ| of ~1e-5). The price:
an IR that is new against a cached original re-runs the original on the images it needs, to
have its vectors.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from omzconv import __version__
from omzconv.datasets import Record, balanced_subset, load_dataset
from omzconv.errors import DatasetError, GraphError, ImageDecodeError
from omzconv.fileutil import read_json, write_bytes_atomic, write_json_atomic
from omzconv.runners import probabilities
from omzconv.registry import DatasetSpec, Model, PrecisionTolerance, Preprocessing, Reference, Registry, Tolerances
from omzconv.workspace import Workspace

SCHEMA = 1
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
TOP_K = 5
FIRST_PROBLEMS = 5  # problem images named in the report
CHUNK = 64  # images decoded ahead and run through every runtime together
EPS = 1e-9  # float slack in threshold comparisons (a 0.1 pp limit must accept 0.1 pp)
ORIGINAL = "original"


# --- metrics: plain arrays in, numbers out ---------------------------------------------------------


def topk_ids(probs: np.ndarray, k: int = TOP_K) -> np.ndarray:
    """The k most probable classes per row, most probable first (ties: lower class id first)."""
    probs = np.asarray(probs)
    return np.argsort(-probs, axis=-1, kind="stable")[..., :k]


def topk_correct(topk: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among their first k predicted ids."""
    topk, labels = np.asarray(topk), np.asarray(labels)
    if len(topk) == 0:
        return 0
    return int((topk[:, :k] == labels[:, None]).any(axis=1).sum())


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of positions where two label arrays agree (e.g. the top-1 classes of two models)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean(a == b)) if a.size else float("nan")


def set_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of rows whose top-k id sets are equal (order within the top-k ignored)."""
    a, b = np.sort(np.asarray(a), axis=-1), np.sort(np.asarray(b), axis=-1)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return float(np.mean((a == b).all(axis=-1))) if len(a) else float("nan")


def prob_deltas(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: max and sum over classes of |p - q| (the sum gives the mean over any set of rows)."""
    d = np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64))
    return d.max(axis=-1), d.sum(axis=-1)


# --- the report ------------------------------------------------------------------------------------


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
    seconds: float  # this run's stage wall time (see the module docstring)
    load_seconds: float
    images_per_second: float | None


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


@dataclass(frozen=True)
class Check:
    subject: str  # "FP32 vs original", "original vs TF-Slim published"
    metric: str  # "|Δ top-1|", "top-1 agreement", ...
    value: float | None  # in `unit`
    op: str  # "<=" or ">="
    limit: float
    unit: str  # "pp" or "%"
    status: str  # "passed" or "failed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"


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

    @property
    def passed(self) -> bool:
        return not self.interrupted and not any(c.failed for c in self.checks)


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

    @property
    def passed(self) -> bool:
        return not self.interrupted and all(m.passed for m in self.models)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for model, report in zip(data["models"], self.models):
            model["passed"] = report.passed
        return data

    def to_markdown(self) -> str:
        return render_markdown(self)


class VerifyInterrupted(KeyboardInterrupt):
    """Ctrl-C during `evaluate_model`: `.report` holds the result for the images that were done."""

    def __init__(self, report: ModelReport) -> None:
        super().__init__("interrupted")
        self.report = report


# --- decisions: pure functions ---------------------------------------------------------------------


def _status(ok: bool) -> str:
    return "passed" if ok else "failed"


def conversion_checks(precision: str, original_top1: float, converted_top1: float,
                      top1_agreement: float, tolerance: PrecisionTolerance) -> list[Check]:
    """A converted model against the original (accuracies and agreement as fractions)."""
    subject = f"{precision} vs {ORIGINAL}"
    delta = abs(converted_top1 - original_top1) * 100
    checks = [Check(subject, "|Δ top-1|", delta, "<=", tolerance.top1_pp, "pp",
                    _status(delta <= tolerance.top1_pp + EPS))]
    if tolerance.agreement is not None:
        value = top1_agreement * 100
        checks.append(Check(subject, "top-1 agreement", value, ">=", tolerance.agreement * 100, "%",
                            _status(value >= tolerance.agreement * 100 - EPS)))
    return checks


def reference_reasons(images: int, full_size: int, weights: str) -> list[str]:
    """Why a published accuracy does not apply to this run; empty when it does.

    A reference is measured on the whole validation set with the official weights: a subset's
    accuracy differs by sampling alone, and other weights are another model.
    """
    reasons = []
    if images != full_size:
        reasons.append(f"subset of {images:,} images (the reference is on all {full_size:,})")
    if weights == "synthetic":
        reasons.append("synthetic weights")
    elif weights == "custom":
        reasons.append("custom checkpoint")
    elif weights != "official":
        reasons.append(f"weights of unknown origin ({weights!r})")
    return reasons


def applicable_references(references: Sequence[Reference], output: str) -> list[Reference]:
    """The references measured on the output that was frozen (another node is another model)."""
    return [r for r in references if r.output == output]


def reference_checks(run_name: str, top1: float, top5: float, reference: Reference,
                     reference_pp: float) -> list[Check]:
    """One run's top-1 and top-5 (fractions) against a published reference (percent); only for
    runs where `reference_reasons` is empty."""
    subject = f"{run_name} vs {reference.source}"
    checks = []
    for metric, value, ref in (("|Δ top-1| to reference", top1, reference.top1),
                               ("|Δ top-5| to reference", top5, reference.top5)):
        delta = abs(value * 100 - ref)
        checks.append(Check(subject, metric, delta, "<=", reference_pp, "pp", _status(delta <= reference_pp + EPS)))
    return checks


# --- datasets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The images to evaluate and what the dataset said about itself."""

    info: DatasetInfo
    records: tuple[Record, ...]
    problems: tuple[tuple[Path, str], ...]


def skipped(problems: Sequence[tuple[Path, str]]) -> Skipped:
    return Skipped(len(problems), tuple(Problem(str(p), r) for p, r in problems[:FIRST_PROBLEMS]))


def strict_error(what: str, problems: Sequence[tuple[Path, str]]) -> DatasetError:
    path, reason = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return DatasetError(f"{what}: {path}: {reason}{more}; without --strict such images are skipped and counted")


def select_images(spec: DatasetSpec, data_dir: Path, *, limit: int | None = None, seed: int = 0,
                  strict: bool = False) -> Selection:
    """Read the dataset (layout detected by `datasets.load_dataset`) and take `limit` images of it,
    class-balanced and deterministic for `seed`. Missing images and labels out of range are
    problems: an error with `strict`, otherwise skipped and counted."""
    data_dir = Path(data_dir).resolve()
    dataset = load_dataset(data_dir, spec.num_classes)
    if strict and dataset.problems:
        raise strict_error(spec.name, dataset.problems)
    if limit is not None and limit < 1:
        raise DatasetError(f"--limit must be a positive number of images, got {limit}")
    records = balanced_subset(dataset.records, limit, seed) if limit is not None else list(dataset.records)
    info = DatasetInfo(
        name=spec.name, description=spec.description, layout=dataset.layout, found=dataset.description,
        data_dir=str(data_dir), listed=len(dataset.records), selected=len(records), limit=limit, seed=seed,
        full_size=spec.size, skipped=skipped(dataset.problems))
    return Selection(info, tuple(records), tuple(dataset.problems))


def model_labels(model: Model, records: Sequence[Record]) -> tuple[np.ndarray, list[tuple[Path, str]]]:
    """The model's class index for each record (dataset label + label_offset: 1001-class models
    have background at 0) and the records whose class the model does not have."""
    labels = np.array([r.label + model.label_offset for r in records], np.int64)
    bad = [(r.path, f"label {r.label} + offset {model.label_offset} outside the model's "
                    f"{model.num_classes} classes") for r, c in zip(records, labels) if c >= model.num_classes]
    return labels, bad


# --- artefacts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Artefact:
    name: str  # "original" or a precision
    runtime: str  # "tensorflow" or "openvino"
    path: Path
    sha256: str  # "sha256:<hex>", what the cache is keyed on


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
                     progress: Callable[[int, int | None], None] | None = None,
                     on_stage: Callable[[str], None] = lambda stage: None) -> ModelArtefacts:
    """The frozen graph and an IR per precision, running whatever stage is missing; each artefact
    with the hash its stage verified (the IR's sidecar is re-checked against its files, and the
    recipe's source hash is the frozen graph's, re-hashed, by `convert`)."""
    from omzconv.workspace import SIDECAR
    from omzconv.pipeline import ensure_converted, frozen_outputs, frozen_weights

    converted, source_sha = [], None
    for precision in precisions:
        result = ensure_converted(model, workspace, registry, precision, progress=progress, on_stage=on_stage)
        meta = read_json(result.path.parent / SIDECAR) or {}
        if not meta.get("sha256"):
            raise GraphError(f"{result.path.parent / SIDECAR}: missing or unreadable; run "
                             f"`omzconv convert {model.name} --force`")
        converted.append(Artefact(precision, "openvino", result.path, meta["sha256"]))
        source_sha = meta["recipe"]["source_sha256"]
    pb_path = workspace.frozen_path(model)
    if source_sha is None:  # no precision asked for: trust the graph's own sidecar
        from omzconv.freeze import sidecar_path

        source_sha = (read_json(sidecar_path(pb_path)) or {}).get("sha256") or ""
    return ModelArtefacts(output=frozen_outputs(model, workspace)[0], weights=frozen_weights(model, workspace),
                          original=Artefact(ORIGINAL, "tensorflow", pb_path, source_sha),
                          converted=tuple(converted))


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
        runner = OVAsyncRunner(model, artefact.path, outputs)
    runner.warm_up()
    return runner


# --- the cache ------------------------------------------------------------------------------------


def image_key(path: Path) -> str:
    """An image's identity for the cache: its absolute path, size and modification time."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class PredictionCache:
    """One artefact's predictions in sqlite: top-5 ids and probabilities per image, and per
    (image, reference artefact) the max and sum of |Δ prob|. Committed after every chunk, so a
    crash loses at most the chunk in flight."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path) if path is not None else ":memory:")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS predictions (image TEXT PRIMARY KEY, top BLOB, prob BLOB);"
            "CREATE TABLE IF NOT EXISTS deltas (image TEXT, reference TEXT, max REAL, sum REAL,"
            " PRIMARY KEY (image, reference));")

    @classmethod
    def for_artefact(cls, cache_dir: Path | None, artefact: Artefact, output: str, model: Model) -> PredictionCache:
        """The artefact's cache file under `cache_dir` (None: memory only, for --no-cache). The name
        hashes everything that decides a prediction besides the image: the artefact's bytes, the
        output read, the preprocessing."""
        if cache_dir is None:
            return cls(None)
        pre = model.preprocessing
        recipe = f"{artefact.sha256} {output} {pre.central_fraction} {pre.size} {TOP_K} v{SCHEMA}"
        if pre.recipe != "inception":
            recipe += f" {pre.recipe} {pre.resize_side}"
        digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
        return cls(cache_dir / f"{artefact.sha256.removeprefix('sha256:')[:16]}-{digest}.sqlite")

    def predictions(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        wanted = set(keys)
        rows = self.db.execute("SELECT image, top, prob FROM predictions")
        return {k: (np.frombuffer(t, np.int16).astype(np.int64), np.frombuffer(p, np.float32))
                for k, t, p in rows if k in wanted}

    def deltas(self, keys: Sequence[str], reference: str) -> dict[str, tuple[float, float]]:
        wanted = set(keys)
        rows = self.db.execute("SELECT image, max, sum FROM deltas WHERE reference = ?", (reference,))
        return {k: (m, s) for k, m, s in rows if k in wanted}

    def put(self, keys: Sequence[str], top: np.ndarray, prob: np.ndarray) -> None:
        self.db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                            [(k, t.astype(np.int16).tobytes(), p.astype(np.float32).tobytes())
                             for k, t, p in zip(keys, top, prob)])

    def put_deltas(self, keys: Sequence[str], reference: str, dmax: np.ndarray, dsum: np.ndarray) -> None:
        self.db.executemany("INSERT OR REPLACE INTO deltas VALUES (?, ?, ?, ?)",
                            [(k, reference, float(m), float(s)) for k, m, s in zip(keys, dmax, dsum)])

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one artefact has for each image of the model's list, filled from cache and inference."""

    artefact: Artefact
    cache: PredictionCache
    n: int
    runner: Runner | None = None
    top: np.ndarray = field(init=False)
    prob: np.ndarray = field(init=False)
    have: np.ndarray = field(init=False)
    dmax: np.ndarray = field(init=False)
    dsum: np.ndarray = field(init=False)
    have_delta: np.ndarray = field(init=False)
    need: np.ndarray = field(init=False)  # images to run now
    inferred: int = 0
    cached: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.top = np.full((self.n, TOP_K), -1, np.int64)
        self.prob = np.zeros((self.n, TOP_K), np.float32)
        self.have = np.zeros(self.n, bool)
        self.dmax = np.zeros(self.n, np.float64)
        self.dsum = np.zeros(self.n, np.float64)
        self.have_delta = np.zeros(self.n, bool)
        self.need = np.zeros(self.n, bool)


def _decode_chunk(pool: ThreadPoolExecutor, paths: Sequence[Path], pre: Preprocessing) -> list[Future]:
    from omzconv.preprocess import prepare

    return [pool.submit(prepare, p, pre) for p in paths]


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def evaluate_model(
    model: Model,
    artefacts: ModelArtefacts,
    selection: Selection,
    tolerances: Tolerances,
    *,
    cache_dir: Path | None = None,
    strict: bool = False,
    runner_factory: RunnerFactory | None = None,
    chunk: int = CHUNK,
    workers: int | None = None,
    on_total: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[float], None] = lambda images: None,
) -> ModelReport:
    """Run the original and every converted artefact of `model` on the selected images → report.

    Images come from the cache where every artefact has them; the rest are decoded once per chunk
    and run through each artefact that lacks them (an IR's |Δ prob| needs the original's vector, so
    the original runs wherever an IR does). `on_total(n)` announces the images to process,
    `on_progress(k)` reports progress in images. Ctrl-C raises VerifyInterrupted with the report
    for the images done; other errors propagate after the finished chunks are committed.
    """
    started = time.perf_counter()
    runner_factory = runner_factory or open_runner
    labels, problems = model_labels(model, selection.records)
    if strict and problems:
        raise strict_error(model.name, problems)
    outputs = [artefacts.output]
    records = list(selection.records)
    keys: list[str | None] = []
    for r in records:
        try:
            keys.append(image_key(r.path))
        except OSError as exc:
            keys.append(None)
            problems.append((r.path, f"cannot read: {exc.strerror or exc}"))
    usable = np.array([k is not None and labels[i] < model.num_classes for i, k in enumerate(keys)], bool)
    if strict and not usable.all():
        raise strict_error(model.name, problems)

    runs = [_Run(a, PredictionCache.for_artefact(cache_dir, a, artefacts.output, model), len(records))
            for a in artefacts.all]
    original, converted = runs[0], runs[1:]
    index = {k: i for i, k in enumerate(keys) if k is not None}
    live = [k for k in keys if k is not None]
    for run in runs:
        for k, (top, prob) in run.cache.predictions(live).items():
            i = index[k]
            run.top[i], run.prob[i], run.have[i] = top, prob, True
    for run in converted:
        for k, (m, s) in run.cache.deltas(live, original.artefact.sha256).items():
            i = index[k]
            run.dmax[i], run.dsum[i], run.have_delta[i] = m, s, True

    original.need = usable & ~original.have
    for run in converted:
        run.need = usable & ~(run.have & run.have_delta)
        original.need |= run.need  # the IR's |Δ prob| needs the original's vector
    for run in runs:
        run.cached = int((usable & run.have & ~run.need).sum())
    pending = np.flatnonzero(original.need).tolist()
    on_total(len(pending))

    interrupted = False
    pre = model.preprocessing
    pool = ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2), thread_name_prefix="decode")
    try:
        chunks = list(_chunks(pending, chunk))
        ahead = _decode_chunk(pool, [records[i].path for i in chunks[0]], pre) if chunks else []
        for c, ids in enumerate(chunks):
            waited = time.perf_counter()
            pixels, ok = [], []
            for i, future in zip(ids, ahead):
                try:
                    pixels.append(future.result())
                    ok.append(i)
                except ImageDecodeError as exc:
                    usable[i] = False
                    problems.append((records[i].path, str(exc).removeprefix(f"{records[i].path}: ")))
                    if strict:
                        raise strict_error(model.name, problems[-1:]) from None
            waited = time.perf_counter() - waited
            if c + 1 < len(chunks):
                ahead = _decode_chunk(pool, [records[i].path for i in chunks[c + 1]], pre)
            on_progress(len(ids) - len(ok))
            if not ok:
                continue
            batch = np.stack(pixels)
            position = {i: p for p, i in enumerate(ok)}
            todo = [(run, [i for i in ok if run.need[i]]) for run in runs]
            work = sum(len(t) for _, t in todo)
            reference_probs: dict[int, np.ndarray] = {}
            for run, todo_ids in todo:
                if not todo_ids:
                    continue
                if run.runner is None:
                    t0 = time.perf_counter()
                    run.runner = runner_factory(model, run.artefact, outputs)
                    run.load_seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                sub = batch if len(todo_ids) == len(ok) else batch[[position[i] for i in todo_ids]]
                out = run.runner.infer(sub, lambda n: on_progress(n * len(ok) / work))
                probs = probabilities(model, artefacts.output, out[artefacts.output])
                top = topk_ids(probs)
                sel = np.array(todo_ids)
                run.top[sel], run.prob[sel] = top, np.take_along_axis(probs, top, axis=-1)
                run.have[sel] = True
                chunk_keys = [keys[i] for i in todo_ids]
                run.cache.put(chunk_keys, run.top[sel], run.prob[sel])
                if run is original:
                    reference_probs = {i: probs[p] for p, i in enumerate(todo_ids)}
                else:
                    ref = np.stack([reference_probs[i] for i in todo_ids])
                    run.dmax[sel], run.dsum[sel] = prob_deltas(probs, ref)
                    run.have_delta[sel] = True
                    run.cache.put_deltas(chunk_keys, original.artefact.sha256, run.dmax[sel], run.dsum[sel])
                run.cache.commit()
                run.inferred += len(todo_ids)
                run.seconds += waited + time.perf_counter() - t0
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for run in runs:
            if run.runner is not None:
                run.runner.close()
            run.cache.close()

    report = _model_report(model, artefacts, runs, labels, usable, problems, tolerances,
                           selection.info.full_size, time.perf_counter() - started, interrupted)
    if interrupted:
        raise VerifyInterrupted(report)
    return report


def _model_report(model: Model, artefacts: ModelArtefacts, runs: list[_Run], labels: np.ndarray,
                  usable: np.ndarray, problems: list[tuple[Path, str]], tolerances: Tolerances,
                  full_size: int, seconds: float, interrupted: bool) -> ModelReport:
    original, converted = runs[0], runs[1:]
    done = usable & original.have
    for run in converted:
        done &= run.have & run.have_delta
    ids, n = np.flatnonzero(done), int(done.sum())
    y = labels[ids]

    results, accuracy = [], {}
    for run in runs:
        top = run.top[ids]
        top1, top5 = Accuracy.of(topk_correct(top, y, 1), n), Accuracy.of(topk_correct(top, y, 5), n)
        accuracy[run.artefact.name] = (top1, top5)
        results.append(RunResult(
            name=run.artefact.name, runtime=run.artefact.runtime, artefact=str(run.artefact.path),
            sha256=run.artefact.sha256, images=n, top1=top1, top5=top5, inferred=run.inferred,
            cached=run.cached, seconds=round(run.seconds, 3), load_seconds=round(run.load_seconds, 3),
            images_per_second=round(run.inferred / run.seconds, 3) if run.inferred and run.seconds > 0 else None))

    comparisons, checks = [], []
    o1 = accuracy[ORIGINAL][0].value
    for run in converted:
        c1 = accuracy[run.artefact.name][0].value
        top1_agree = agreement(run.top[ids, 0], original.top[ids, 0]) if n else None
        comparisons.append(Comparison(
            precision=run.artefact.name, images=n,
            top1_delta_pp=(c1 - o1) * 100 if n else None,
            top1_agreement=top1_agree,
            top5_agreement=set_agreement(run.top[ids], original.top[ids]) if n else None,
            max_abs_prob_delta=float(run.dmax[ids].max()) if n else None,
            mean_abs_prob_delta=float(run.dsum[ids].sum() / (n * model.num_classes)) if n else None))
        tolerance = tolerances.precisions.get(run.artefact.name)
        if n and tolerance is not None:
            checks.extend(conversion_checks(run.artefact.name, o1, c1, top1_agree, tolerance))

    references = []
    reasons = reference_reasons(n, full_size, artefacts.weights)
    for ref in applicable_references(model.references, artefacts.output):
        references.append(ReferenceResult(ref.source, ref.output, ref.top1, ref.top5, not reasons, tuple(reasons)))
        if n and not reasons:
            for run in runs:
                top1, top5 = accuracy[run.artefact.name]
                checks.extend(reference_checks(run.artefact.name, top1.value, top5.value, ref,
                                               tolerances.reference_pp))

    return ModelReport(
        model=model.name, alias=model.alias, output=artefacts.output,
        output_kind=model.output(artefacts.output).kind, weights=artefacts.weights, images=n,
        runs=results, comparisons=comparisons, references=references, checks=checks,
        skipped=skipped(problems), seconds=round(seconds, 3), interrupted=interrupted)


# --- the whole report ----------------------------------------------------------------------------


SYNTHETIC_NOTE = ("SYNTHETIC WEIGHTS: generated weights that recognize nothing; the accuracies are "
                  "meaningless, only the agreement between the original and the converted models means something.")
SPEED_NOTE = ("images/s of a run = images it inferred ÷ its stage's wall time: waiting for decoded pixels "
              "(decode + crop + resize, shared by the runs, charged to each in full) plus its own layout, "
              "inference and bookkeeping; loading excluded (graph import or IR compile, and a warm-up run: TensorFlow "
              "optimizes the graph on its first run), as benchmark_app excludes it. Cached images count in neither.")


def make_report(selection: Selection, models: list[ModelReport], synthetic: bool,
                interrupted: bool = False) -> VerifyReport:
    notes = [SPEED_NOTE]
    if synthetic:
        notes.insert(0, SYNTHETIC_NOTE)
    return VerifyReport(dataset=selection.info, models=models, synthetic=synthetic,
                        interrupted=interrupted or any(m.interrupted for m in models), notes=notes)


def cache_dir_for(workspace: Workspace, model: Model) -> Path:
    """`<output-dir>/cache/verify` (under `synthetic/` for synthetic weights)."""
    return workspace.model_dir(model).parent / "cache" / "verify"


def default_report_path(workspace: Workspace, dataset: str, models: Sequence[Model]) -> Path:
    names = "+".join(m.name for m in models)
    return workspace.model_dir(models[0]).parent / "reports" / f"verify-{dataset}-{names}.json"


def write_report(report: VerifyReport, path: Path, fmt: str | None = None) -> list[Path]:
    """JSON at `path` and Markdown beside it (`.md`), or with `fmt="md"` (the default for a `.md`
    path) only Markdown at `path`. Returns the files written."""
    path = Path(path)
    fmt = fmt or ("md" if path.suffix.lower() == ".md" else "json")
    if fmt == "md":
        write_bytes_atomic(path, report.to_markdown().encode())
        return [path]
    write_json_atomic(path, report.to_dict())
    md = path.with_suffix(".md")
    write_bytes_atomic(md, report.to_markdown().encode())
    return [path, md]


def percent(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def accuracy_text(acc: Accuracy) -> str:
    if acc.value is None:
        return "–"
    lo, hi = acc.ci95
    return f"{acc.value * 100:.2f} % [{lo * 100:.1f}, {hi * 100:.1f}]"


def check_text(check: Check) -> str:
    value = "–" if check.value is None else f"{check.value:.3g} {check.unit}"
    op = "≤" if check.op == "<=" else "≥"
    return f"{check.subject}: {check.metric} {value} ({op} {check.limit:g} {check.unit}): {check.status.upper()}"


def reference_text(ref: ReferenceResult) -> str:
    text = f"{ref.source} ({ref.output}): top-1 {ref.top1:g} %, top-5 {ref.top5:g} %"
    return text + ("" if ref.applied else f" — not applied: {'; '.join(ref.reasons)}")


def render_markdown(report: VerifyReport) -> str:
    d = report.dataset
    lines = [f"# omzconv verify — {d.name}", ""]
    if report.synthetic:
        lines += [f"> **{SYNTHETIC_NOTE}**", ""]
    if report.interrupted:
        lines += ["> **INTERRUPTED: partial result for the images done.**", ""]
    verdict = "PASSED" if report.passed else "INTERRUPTED" if report.interrupted else "FAILED"
    lines += [f"**Result: {verdict}** · {report.tool} · {report.created}", "",
              f"- dataset: {d.description} — {d.found}",
              f"- images: {d.selected:,} of {d.listed:,}"
              + (f" (class-balanced subset, --limit {d.limit}, seed {d.seed})" if d.limit is not None else ""),
              f"- skipped (listed but missing, or label out of range): {d.skipped.count}"]
    lines += [f"  - `{p.path}`: {p.reason}" for p in d.skipped.first]
    for m in report.models:
        lines += ["", f"## {m.model} ({m.alias}) — {'PASSED' if m.passed else 'FAILED'}", "",
                  f"output `{m.output}` ({m.output_kind}), {m.weights} weights, {m.images:,} images"
                  + (f", {m.skipped.count} skipped" if m.skipped.count else "") + (" (INTERRUPTED)" if m.interrupted else ""),
                  ""]
        lines += [f"- skipped `{p.path}`: {p.reason}" for p in m.skipped.first]
        lines += ["| run | runtime | top-1 [95 % CI] | top-5 [95 % CI] | top-1 agree | top-5 agree | max \\|Δp\\| "
                  "| mean \\|Δp\\| | images/s | inferred / cached |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        comps = {c.precision: c for c in m.comparisons}
        for r in m.runs:
            c = comps.get(r.name)
            speed = "–" if r.images_per_second is None else f"{r.images_per_second:.2f}"
            lines.append(f"| {r.name} | {r.runtime} | {accuracy_text(r.top1)} | {accuracy_text(r.top5)} | "
                         f"{percent(c.top1_agreement) if c else '–'} | {percent(c.top5_agreement) if c else '–'} | "
                         f"{_sci(c.max_abs_prob_delta) if c else '–'} | {_sci(c.mean_abs_prob_delta) if c else '–'} | "
                         f"{speed} | {r.inferred} / {r.cached} |")
        if m.references:
            lines += ["", "References:"]
            lines += [f"- {reference_text(r)}" for r in m.references]
        lines += ["", "Checks:"]
        lines += [f"- {check_text(c)}" for c in m.checks] or ["- none"]
    lines += ["", "Notes:"] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"
