"""The evaluation loop: every runtime on the same decoded pixels, image by image → `ModelReport`.

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

Which images each run is measured on. The original, FP32 and FP16 on every usable image; an INT8
IR only on those that did not calibrate it (`Artefact.calibration`, from its sidecar), and every
comparison of INT8 (with the original, and with FP32 when FP32 is verified too: INT8 is made from
it) on INT8's images, so both sides of a difference are measured on the same images.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omzconv.datasets import Record
from omzconv.errors import ImageDecodeError
from omzconv.quantize import record_key
from omzconv.registry import Model, Preprocessing, Tolerances
from omzconv.runners import probabilities
from omzconv.verify.artefacts import Artefact, ModelArtefacts, Runner, RunnerFactory, open_runner
from omzconv.verify.cache import PredictionCache, image_key
from omzconv.verify.checks import (SYNTHETIC_WAIVER, applicable_references, conversion_checks, reference_checks,
                                   reference_reasons)
from omzconv.verify.metrics import TOP_K, agreement, prob_deltas, set_agreement, topk_correct, topk_ids
from omzconv.verify.report import (ORIGINAL, Accuracy, Comparison, ModelReport, PerImage, ReferenceResult,
                                   RunResult, VerifyInterrupted)
from omzconv.verify.selection import Selection, model_labels, skipped, strict_error

log = logging.getLogger(__name__)
CHUNK = 64  # images decoded ahead and run through every runtime together


@dataclass
class _Run:
    """What one artefact has for each image of the model's list, filled from cache and inference."""

    artefact: Artefact
    cache: PredictionCache
    n: int
    refs: tuple[_Run, ...] = ()  # the runs it is compared with, image by image (|Δ prob| needs their vectors)
    runner: Runner | None = None
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
    and run through each artefact that lacks them (an IR's |Δ prob| needs the vectors of the runs
    it is compared with, so those run wherever it does). An IR with calibration images is never
    run or measured on them. `on_total(n)` announces the images to process,
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
            chunk_probs: dict[str, dict[int, np.ndarray]] = {}  # run name → image → probabilities
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
                chunk_probs[run.artefact.name] = {i: probs[p] for p, i in enumerate(todo_ids)}
                for ref in run.refs:
                    name, ref_probs = ref.artefact.name, chunk_probs[ref.artefact.name]
                    dmax, dsum = prob_deltas(probs, np.stack([ref_probs[i] for i in todo_ids]))
                    run.dmax[name][sel], run.dsum[name][sel], run.have_delta[name][sel] = dmax, dsum, True
                    run.cache.put_deltas(chunk_keys, ref.artefact.sha256, dmax, dsum)
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

    report = _model_report(model, artefacts, runs, records, labels, usable, problems, tolerances,
                           selection.info.full_size, time.perf_counter() - started, interrupted)
    if interrupted:
        raise VerifyInterrupted(report)
    return report


def _model_report(model: Model, artefacts: ModelArtefacts, runs: list[_Run], records: Sequence[Record],
                  labels: np.ndarray, usable: np.ndarray, problems: list[tuple[Path, str]],
                  tolerances: Tolerances, full_size: int, seconds: float, interrupted: bool) -> ModelReport:
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
        skipped=skipped(problems), seconds=round(seconds, 3), interrupted=interrupted, per_image=per_image)
