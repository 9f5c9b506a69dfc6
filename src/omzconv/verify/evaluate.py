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
Images taken from the cache count with the stage time they took when they ran (kept per image in
the cache), so a repeated run still reports a measured speed.

Which images each run is measured on: see `assemble`. An INT8 IR never runs on the images that
calibrated it (`Artefact.calibration`, from its sidecar).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from omzconv.datasets import Record
from omzconv.errors import OmzconvError
from omzconv.quantize import record_key
from omzconv.registry import Model, Tolerances
from omzconv.verify.artefacts import Artefact, ModelArtefacts, RunnerFactory
from omzconv.verify.assemble import RunState, model_report
from omzconv.verify.cache import PredictionCache, image_key
from omzconv.verify.executors import Executor, InProcess
from omzconv.verify.report import ORIGINAL, ModelReport, VerifyInterrupted, WorkerSpeed
from omzconv.verify.selection import Selection, model_labels, strict_error
from omzconv.verify.work import Job, JobInterrupted, JobResult, RunOutput

log = logging.getLogger(__name__)
CHUNK = 64  # images decoded ahead and run through every runtime together


def _make_runs(artefacts: ModelArtefacts, caches: Callable[[Artefact], PredictionCache], n: int) -> list[RunState]:
    """The original first, then each IR after the runs it is compared with (its `source`)."""
    original = RunState(artefacts.original, caches(artefacts.original), n)
    runs = {ORIGINAL: original}
    for artefact in artefacts.converted:
        refs = (original,) + ((runs[artefact.source],) if artefact.source in runs else ())
        runs[artefact.name] = RunState(artefact, caches(artefact), n, refs)
    return list(runs.values())


def _chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def _record(run: RunState, out: RunOutput, keys: list[str], decode_seconds: float) -> None:
    """A run's results for a chunk into its arrays and its cache (committed: a later interruption
    keeps them); the chunk's decoding is charged to the run in full (see the module docstring)."""
    if out.executed is not None and out.executed != run.artefact.executed:  # the cache key would be wrong
        raise OmzconvError(f"{run.artefact.name}: OpenVINO computed it in {out.executed}, but this CPU was "
                           f"probed to compute {run.artefact.inference_precision} as {run.artefact.executed}")
    sel = out.ids
    run.top[sel], run.prob[sel], run.have[sel] = out.top, out.prob, True
    run.cache.put(keys, out.top, out.prob, (decode_seconds + out.seconds) / len(sel) if len(sel) else None)
    for ref in run.refs:
        name = ref.artefact.name
        dmax, dsum = out.deltas[name]
        run.dmax[name][sel], run.dsum[name][sel], run.have_delta[name][sel] = dmax, dsum, True
        run.cache.put_deltas(keys, ref.artefact.identity, dmax, dsum)
    run.cache.commit()
    run.inferred += len(sel)
    run.seconds += decode_seconds + out.seconds
    run.load_seconds += out.load_seconds


def _load_cached(runs: list[RunState], keys: list[str | None], records: Sequence[Record]) -> None:
    """What the caches hold for these images: predictions (with their stage times), |Δ prob|, and
    the vectors kept for dependants."""
    index = {k: i for i, k in enumerate(keys) if k is not None}
    live = list(index)
    for run in runs:
        if run.artefact.calibration:
            run.eligible = np.array([record_key(r) not in run.artefact.calibration for r in records], bool)
        for k, (top, prob, seconds) in run.cache.predictions(live).items():
            i = index[k]
            run.top[i], run.prob[i], run.have[i] = top, prob, True
            run.cache_seconds[i] = np.nan if seconds is None else seconds
        for ref in run.refs:
            name = ref.artefact.name
            for k, (m, s) in run.cache.deltas(live, ref.artefact.identity).items():
                i = index[k]
                run.dmax[name][i], run.dsum[name][i], run.have_delta[name][i] = m, s, True
        run.kept = {index[k]: v for k, v in run.cache.vectors(live).items()}


def _plan(runs: list[RunState], usable: np.ndarray) -> None:
    """Which run needs which image: what it lacks, and for an IR that lacks one, its references'
    vectors too, unless the cache kept them."""
    for run in reversed(runs):  # a run's references come before it
        run.need |= usable & run.eligible & ~run.complete
        for ref in run.refs:
            kept = np.zeros(run.n, bool)
            kept[list(ref.kept)] = True
            ref.need |= run.need & ~(ref.have & kept)
    for run in runs:
        run.cached = int((usable & run.eligible & run.have & ~run.need).sum())


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
    _load_cached(runs, keys, records)
    _plan(runs, usable)
    pending = np.flatnonzero(np.any([run.need for run in runs], axis=0)).tolist()
    if any(run.cached for run in runs):
        cached = ", ".join(f"{run.cached} for {run.artefact.name}" for run in runs)
        what = "all cached, nothing to run" if not pending else f"resuming with {len(pending)} to run"
        log.info("%s: %s of %d images: cached %s", model.name, what, int(usable.sum()), cached)
    on_total(len(pending))

    refs = {run.artefact.name: tuple(ref.artefact.name for ref in run.refs) for run in runs}
    jobs = [Job(k, tuple(ids), tuple(records[i].path for i in ids),
                {run.artefact.name: tuple(i for i in ids if run.need[i]) for run in runs}, refs,
                {run.artefact.name: {i: run.kept[i] for i in ids if i in run.kept and not run.need[i]}
                 for run in runs if run.kept})
            for k, ids in enumerate(_chunks(pending, chunk))]
    by_name = {run.artefact.name: run for run in runs}
    is_ref = {ref.artefact.name for run in runs for ref in run.refs}
    speeds: dict[str, list[float]] = {}  # worker → [images, busy seconds]
    interrupted, finished, execution = False, False, None

    def commit(result: JobResult) -> None:
        for i, reason in result.failed.items():
            usable[i] = False
            problems.append((records[i].path, reason))
        if strict and result.failed:
            raise strict_error(model.name, problems[-len(result.failed):])
        for name, out in result.runs.items():
            _record(by_name[name], out, [keys[i] for i in out.ids], result.decode_seconds)
        for name, vectors in result.vectors.items():  # Ctrl-C mid-chunk: keep what dependants still need
            if name in is_ref:
                by_name[name].cache.put_vectors({keys[i]: v for i, v in vectors.items()})
                by_name[name].cache.commit()
        speed = speeds.setdefault(result.worker, [0, 0.0])
        speed[0] += result.images
        speed[1] += result.busy_seconds

    executor = executor or InProcess()
    try:
        with executor.pool(model, artefacts, runner_factory) as pool:
            execution = pool.info
            for result in pool.map(jobs, on_progress):
                commit(result)
        finished = True
    except JobInterrupted as exc:
        commit(exc.result)
        interrupted = True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        for run in runs:
            if finished and run.kept:  # its dependants have finished with them
                run.cache.drop_vectors([keys[i] for i in run.kept])
            run.cache.close()
    if execution is not None:
        execution = dataclasses.replace(execution, per_worker=tuple(
            WorkerSpeed(w, images, round(seconds, 3), round(images / seconds, 3) if seconds > 0 else None)
            for w, (images, seconds) in sorted(speeds.items())))

    report = model_report(model, artefacts, runs, records, labels, usable, problems, tolerances,
                          selection.info.full_size, time.perf_counter() - started, interrupted, execution)
    if interrupted:
        raise VerifyInterrupted(report)
    return report
