"""The evaluation loop: every runtime on the same decoded pixels, image by image → `ModelReport`.

Nothing here prints. Every image is decoded and preprocessed once (`preprocess.prepare_image`) and
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

from omzconv.errors import ImageDecodeError
from omzconv.registry import Model, Tolerances
from omzconv.runners import probabilities
from omzconv.verify.artefacts import Artefact, ModelArtefacts, Runner, RunnerFactory, open_runner
from omzconv.verify.cache import PredictionCache, image_key
from omzconv.verify.checks import applicable_references, conversion_checks, reference_checks, reference_reasons
from omzconv.verify.metrics import TOP_K, agreement, prob_deltas, set_agreement, topk_correct, topk_ids
from omzconv.verify.report import (ORIGINAL, Accuracy, Comparison, ModelReport, ReferenceResult, RunResult,
                                   VerifyInterrupted)
from omzconv.verify.selection import Selection, model_labels, skipped, strict_error

log = logging.getLogger(__name__)
CHUNK = 64  # images decoded ahead and run through every runtime together


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


def _decode_chunk(pool: ThreadPoolExecutor, paths: Sequence[Path], fraction: float, size: int) -> list[Future]:
    from omzconv.preprocess import prepare_image

    return [pool.submit(prepare_image, p, fraction, size) for p in paths]


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
        ahead = _decode_chunk(pool, [records[i].path for i in chunks[0]], pre.central_fraction, pre.size) if chunks else []
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
                ahead = _decode_chunk(pool, [records[i].path for i in chunks[c + 1]], pre.central_fraction, pre.size)
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
