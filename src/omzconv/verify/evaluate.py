"""The evaluation loop: every runtime on the same decoded pixels, image by image → `ModelReport`.

Nothing here prints. Every image is decoded and preprocessed once (`preprocess.prepare`) and
the same float pixels go to every runtime: the TF runner makes RGB NHWC `(x - mean) / scale` of
them, the IR runner BGR NCHW raw, so whatever differs is the conversion's.

Who computes. The driver (this module) plans the work as chunks of images (`work.Job`: which run
needs which image), an executor (`executors`: this process by default, or Ray workers) returns
each chunk's top-k and |Δ prob| (`work.JobResult`), and the driver alone writes them into the
cache and the report — so the report does not depend on the executor, and an interrupted run keeps
every chunk that came back.

How images/s is counted. Images are processed in chunks; in this process a thread pool decodes
chunk k+1 while the runtimes, one after another, infer chunk k. A runtime's stage time is the sum over chunks of the
wall time the pipeline waited for that chunk's pixels (charged in full to every runtime that ran
on it: alone, it would have waited as long) plus its own wall time on the chunk: input layout,
inference, softmax, top-k, the |Δ prob| arithmetic and the cache write. images/s = images it
inferred ÷ that time, i.e. what it would sustain alone with a prefetching decoder (on Ray, per
worker: a worker decodes its chunk itself, and the decode time is charged). Loading the
runtime (TF import, graph import, IR compile, and one warm-up run on a blank image: TensorFlow
optimizes the graph on its first session run, ~4 s for Inception-ResNet-v2) is excluded, as
benchmark_app excludes compiling and its first inference; it is reported as `load_seconds`.
Cached images count in neither.

Which images each run is measured on. The original, FP32 and FP16 on every usable image; an INT8
IR only on those that did not calibrate it (`Artefact.calibration`, from its sidecar), and every
comparison of INT8 (with the original, and with FP32 when FP32 is verified too: INT8 is made from
it) on INT8's images, so both sides of a difference are measured on the same images.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omzconv.datasets import Record
from omzconv.quantize import record_key
from omzconv.registry import Model, Tolerances
from omzconv.verify.artefacts import Artefact, ModelArtefacts, RunnerFactory
from omzconv.verify.cache import PredictionCache, image_key
from omzconv.verify.checks import (SYNTHETIC_WAIVER, applicable_references, conversion_checks, reference_checks,
                                   reference_reasons)
from omzconv.verify.executors import Executor, InProcess
from omzconv.verify.metrics import TOP_K, agreement, set_agreement, topk_correct
from omzconv.verify.report import (ORIGINAL, Accuracy, Comparison, Execution, ModelReport, PerImage,
                                   ReferenceResult, RunResult, VerifyInterrupted, WorkerSpeed)
from omzconv.verify.selection import Selection, model_labels, skipped, strict_error
from omzconv.verify.work import Job, JobInterrupted, JobResult, RunOutput

log = logging.getLogger(__name__)
CHUNK = 64  # images decoded ahead and run through every runtime together


@dataclass
class _Run:
    """What one artefact has for each image of the model's list, filled from cache and inference."""

    artefact: Artefact
    cache: PredictionCache
    n: int
    refs: tuple[_Run, ...] = ()  # the runs it is compared with, image by image (|Δ prob| needs their vectors)
    eligible: np.ndarray = field(init=False)  # images it may be measured on
    top: np.ndarray = field(init=False)
    prob: np.ndarray = field(init=False)
    have: np.ndarray = field(init=False)
    dmax: dict[str, np.ndarray] = field(init=False)  # per reference run name
    dsum: dict[str, np.ndarray] = field(init=False)
    have_delta: dict[str, np.ndarray] = field(init=False)
    need: np.ndarray = field(init=False)  # images to run now
    inferred: int = 0
    cached: int = 0
    seconds: float = 0.0
    load_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.eligible = np.ones(self.n, bool)
        self.top = np.full((self.n, TOP_K), -1, np.int64)
        self.prob = np.zeros((self.n, TOP_K), np.float32)
        self.have = np.zeros(self.n, bool)
        self.dmax = {r.artefact.name: np.zeros(self.n, np.float64) for r in self.refs}
        self.dsum = {r.artefact.name: np.zeros(self.n, np.float64) for r in self.refs}
        self.have_delta = {r.artefact.name: np.zeros(self.n, bool) for r in self.refs}
        self.need = np.zeros(self.n, bool)

    @property
    def complete(self) -> np.ndarray:
        """Images with its prediction and its |Δ prob| against every reference."""
        done = self.have.copy()
        for have in self.have_delta.values():
            done &= have
        return done


def _make_runs(artefacts: ModelArtefacts, caches: Callable[[Artefact], PredictionCache], n: int) -> list[_Run]:
    """The original first, then each IR after the runs it is compared with (its `source`)."""
    original = _Run(artefacts.original, caches(artefacts.original), n)
    runs = {ORIGINAL: original}
    for artefact in artefacts.converted:
        refs = (original,) + ((runs[artefact.source],) if artefact.source in runs else ())
        runs[artefact.name] = _Run(artefact, caches(artefact), n, refs)
    return list(runs.values())


def _chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _record(run: _Run, out: RunOutput, keys: list[str], decode_seconds: float) -> None:
    """A run's results for a chunk into its arrays and its cache (committed: a later interruption
    keeps them); the chunk's decoding is charged to the run in full (see the module docstring)."""
    sel = out.ids
    run.top[sel], run.prob[sel], run.have[sel] = out.top, out.prob, True
    run.cache.put(keys, out.top, out.prob)
    for ref in run.refs:
        name = ref.artefact.name
        dmax, dsum = out.deltas[name]
        run.dmax[name][sel], run.dsum[name][sel], run.have_delta[name][sel] = dmax, dsum, True
        run.cache.put_deltas(keys, ref.artefact.sha256, dmax, dsum)
    run.cache.commit()
    run.inferred += len(sel)
    run.seconds += decode_seconds + out.seconds
    run.load_seconds += out.load_seconds


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
    executor: Executor | None = None,
    on_total: Callable[[int], None] = lambda total: None,
    on_progress: Callable[[float], None] = lambda images: None,
) -> ModelReport:
    """Run the original and every converted artefact of `model` on the selected images → report.

    Images come from the cache where every artefact has them; the rest are decoded once per chunk
    and run through each artefact that lacks them (an IR's |Δ prob| needs the vectors of the runs
    it is compared with, so those run wherever it does). An IR with calibration images is never
    run or measured on them. `executor` computes the chunks (default: this process, `InProcess`);
    `runner_factory` opens each artefact's runner (default: `open_runner`). `on_total(n)` announces the images to process,
    `on_progress(k)` reports progress in images. Ctrl-C raises VerifyInterrupted with the report
    for the images done; other errors propagate after the finished chunks are committed.
    """
    started = time.perf_counter()
    labels, problems = model_labels(model, selection.records)
    if strict and problems:
        raise strict_error(model.name, problems)
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

    runs = _make_runs(artefacts, lambda a: PredictionCache.for_artefact(cache_dir, a, artefacts.output, model),
                      len(records))
    original = runs[0]
    index = {k: i for i, k in enumerate(keys) if k is not None}
    live = [k for k in keys if k is not None]
    for run in runs:
        if run.artefact.calibration:
            run.eligible = np.array([record_key(r) not in run.artefact.calibration for r in records], bool)
        for k, (top, prob) in run.cache.predictions(live).items():
            i = index[k]
            run.top[i], run.prob[i], run.have[i] = top, prob, True
        for ref in run.refs:
            name = ref.artefact.name
            for k, (m, s) in run.cache.deltas(live, ref.artefact.sha256).items():
                i = index[k]
                run.dmax[name][i], run.dsum[name][i], run.have_delta[name][i] = m, s, True

    for run in reversed(runs):  # a run's references come before it
        run.need |= usable & run.eligible & ~run.complete
        for ref in run.refs:
            ref.need |= run.need  # the IR's |Δ prob| needs the reference's vector
    for run in runs:
        run.cached = int((usable & run.eligible & run.have & ~run.need).sum())
    pending = np.flatnonzero(original.need).tolist()
    if any(run.cached for run in runs):
        cached = ", ".join(f"{run.cached} for {run.artefact.name}" for run in runs)
        what = "all cached, nothing to run" if not pending else f"resuming with {len(pending)} to run"
        log.info("%s: %s of %d images: cached %s", model.name, what, int(usable.sum()), cached)
    on_total(len(pending))

    refs = {run.artefact.name: tuple(ref.artefact.name for ref in run.refs) for run in runs}
    jobs = [Job(k, tuple(ids), tuple(records[i].path for i in ids),
                {run.artefact.name: tuple(i for i in ids if run.need[i]) for run in runs}, refs)
            for k, ids in enumerate(_chunks(pending, chunk))]
    by_name = {run.artefact.name: run for run in runs}
    speeds: dict[str, list[float]] = {}  # worker → [images, busy seconds]
    interrupted, execution = False, None

    def commit(result: JobResult) -> None:
        for i, reason in result.failed.items():
            usable[i] = False
            problems.append((records[i].path, reason))
        if strict and result.failed:
            raise strict_error(model.name, problems[-len(result.failed):])
        for name, out in result.runs.items():
            _record(by_name[name], out, [keys[i] for i in out.ids], result.decode_seconds)
        speed = speeds.setdefault(result.worker, [0, 0.0])
        speed[0] += result.images
        speed[1] += result.busy_seconds

    executor = executor or InProcess()
    try:
        with executor.pool(model, artefacts, runner_factory) as pool:
            execution = pool.info
            for result in pool.map(jobs, on_progress):
                commit(result)
    except JobInterrupted as exc:
        commit(exc.result)
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for run in runs:
            run.cache.close()
    if execution is not None:
        execution = dataclasses.replace(execution, per_worker=tuple(
            WorkerSpeed(w, images, round(seconds, 3), round(images / seconds, 3) if seconds > 0 else None)
            for w, (images, seconds) in sorted(speeds.items())))

    report = _model_report(model, artefacts, runs, records, labels, usable, problems, tolerances,
                           selection.info.full_size, time.perf_counter() - started, interrupted, execution)
    if interrupted:
        raise VerifyInterrupted(report)
    return report


def _model_report(model: Model, artefacts: ModelArtefacts, runs: list[_Run], records: Sequence[Record],
                  labels: np.ndarray, usable: np.ndarray, problems: list[tuple[Path, str]],
                  tolerances: Tolerances, full_size: int, seconds: float, interrupted: bool,
                  execution: Execution | None) -> ModelReport:
    original, converted = runs[0], runs[1:]
    done = usable & original.have
    for run in converted:  # the images every run has done (an INT8 IR: except its calibration images)
        done &= run.complete | ~run.eligible
    n = int(done.sum())
    measured = {run.artefact.name: done & run.eligible for run in runs}

    def accuracy(run: _Run, mask: np.ndarray) -> tuple[Accuracy, Accuracy]:
        ids, count = np.flatnonzero(mask), int(mask.sum())
        return (Accuracy.of(topk_correct(run.top[ids], labels[ids], 1), count),
                Accuracy.of(topk_correct(run.top[ids], labels[ids], 5), count))

    results, own = [], {}
    for run in runs:
        mask = measured[run.artefact.name]
        own[run.artefact.name] = top1, top5 = accuracy(run, mask)
        results.append(RunResult(
            name=run.artefact.name, runtime=run.artefact.runtime, artefact=str(run.artefact.path),
            sha256=run.artefact.sha256, images=int(mask.sum()), top1=top1, top5=top5, inferred=run.inferred,
            cached=run.cached, seconds=round(run.seconds, 3), load_seconds=round(run.load_seconds, 3),
            images_per_second=round(run.inferred / run.seconds, 3) if run.inferred and run.seconds > 0 else None,
            excluded=int((usable & ~run.eligible).sum())))

    comparisons, checks = [], []
    for run in converted:
        mask = measured[run.artefact.name]
        ids, count = np.flatnonzero(mask), int(mask.sum())
        c1 = own[run.artefact.name][0].value
        for ref in run.refs:
            name = ref.artefact.name
            r1 = accuracy(ref, mask)[0].value  # the reference on the same images
            top1_agree = agreement(run.top[ids, 0], ref.top[ids, 0]) if count else None
            comparisons.append(Comparison(
                precision=run.artefact.name, images=count,
                top1_delta_pp=(c1 - r1) * 100 if count else None,
                top1_agreement=top1_agree,
                top5_agreement=set_agreement(run.top[ids], ref.top[ids]) if count else None,
                max_abs_prob_delta=float(run.dmax[name][ids].max()) if count else None,
                mean_abs_prob_delta=float(run.dsum[name][ids].sum() / (count * model.num_classes)) if count else None,
                reference=name))
            tolerance = tolerances.precisions.get(run.artefact.name)
            if ref is original and count and tolerance is not None:
                waived = "" if tolerance.enforced_on_synthetic or artefacts.weights != "synthetic" else SYNTHETIC_WAIVER
                checks.extend(conversion_checks(run.artefact.name, r1, c1, top1_agree, tolerance, waived=waived))

    references = []
    reasons = reference_reasons(n, full_size, artefacts.weights)
    for ref in applicable_references(model.references, artefacts.output):
        references.append(ReferenceResult(ref.source, ref.output, ref.top1, ref.top5, not reasons, tuple(reasons)))
        if n and not reasons:
            for run in runs:
                top1, top5 = own[run.artefact.name]
                if top1.images == n:  # not an INT8 IR measured without its calibration images
                    checks.extend(reference_checks(run.artefact.name, top1.value, top5.value, ref,
                                                   tolerances.reference_pp))

    per_image = PerImage(
        paths=tuple(str(r.path) for r in records), num_classes=model.num_classes,
        label_offset=model.label_offset, labels=labels,
        measured=measured, top={r.artefact.name: r.top for r in runs}, prob={r.artefact.name: r.prob for r in runs},
        dmax={(r.artefact.name, ref): d for r in converted for ref, d in r.dmax.items()})
    return ModelReport(
        model=model.name, alias=model.alias, output=artefacts.output,
        output_kind=model.output(artefacts.output).kind, weights=artefacts.weights, images=n,
        runs=results, comparisons=comparisons, references=references, checks=checks,
        skipped=skipped(problems), seconds=round(seconds, 3), interrupted=interrupted, execution=execution,
        per_image=per_image)
