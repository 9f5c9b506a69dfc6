"""One unit of verification work — a chunk of images through some runs — and the worker that does it.

`evaluate` (the driver) plans `Job`s and an executor (`omzconv.verify.executors`) hands them to
`Worker`s: one in this process, or one per Ray actor. A worker decodes each image of a job once,
runs every runtime the job names on the same pixels and returns a `JobResult`: per run, the top-k
classes and probabilities of each image and its |Δ prob| against the runs it is compared with.
Workers never write anything: the driver alone fills the prediction cache and the report, so a
job's result counts once, whoever computed it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omzconv.errors import ImageDecodeError
from omzconv.registry import Model
from omzconv.runners import probabilities
from omzconv.verify.artefacts import Artefact, ModelArtefacts, Runner, RunnerFactory, open_runner
from omzconv.verify.metrics import prob_deltas, topk_ids

ImageSource = Path | bytes  # a file every worker can read, or the file's bytes


@dataclass(frozen=True)
class Job:
    index: int  # its place in the plan (results may come back in any order)
    ids: tuple[int, ...]  # images, as indices into the model's records
    sources: tuple[ImageSource, ...]  # each image's file (or its bytes)
    needs: dict[str, tuple[int, ...]]  # run name → the images it runs on, a subset of `ids`; in order:
    refs: dict[str, tuple[str, ...]]  # run name → the runs it is compared with (which come before it)


@dataclass
class RunOutput:
    ids: np.ndarray  # the images this run inferred
    top: np.ndarray  # (n, TOP_K) class ids, most probable first
    prob: np.ndarray  # (n, TOP_K) their probabilities
    deltas: dict[str, tuple[np.ndarray, np.ndarray]]  # reference run → (max, sum) of |Δ prob| per image
    seconds: float  # layout, inference and bookkeeping
    load_seconds: float = 0.0  # opening the runner, when this job opened it


@dataclass
class JobResult:
    job: int
    worker: str
    runs: dict[str, RunOutput]
    failed: dict[int, str]  # image → why it could not be decoded
    decode_seconds: float  # waiting for the chunk's pixels
    images: int = 0  # in the job

    @property
    def busy_seconds(self) -> float:
        """The worker's time on the job: its pixels, then every run."""
        return self.decode_seconds + sum(out.seconds for out in self.runs.values())


def decode_job(job: Job, model: Model) -> tuple[dict[int, np.ndarray], dict[int, str], float]:
    """The prepared pixels of the job's images (`preprocess.prepare`), the ones that failed, seconds."""
    from omzconv.preprocess import prepare

    started, pixels, failed = time.perf_counter(), {}, {}
    for i, source in zip(job.ids, job.sources):
        try:
            pixels[i] = prepare(source, model.preprocessing)
        except ImageDecodeError as exc:
            failed[i] = exc.reason
    return pixels, failed, time.perf_counter() - started


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C in the middle of a job: `.result` holds the runs that finished it (the driver keeps them)."""

    def __init__(self, result: JobResult) -> None:
        super().__init__("interrupted")
        self.result = result


class Worker:
    """Runs jobs of one model, opening each runner on first use and keeping it open until `close`."""

    def __init__(self, model: Model, artefacts: ModelArtefacts, runner_factory: RunnerFactory | None = None,
                 name: str | None = None) -> None:
        self.model, self.artefacts = model, artefacts
        self.runner_factory = runner_factory or open_runner
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.by_name: dict[str, Artefact] = {a.name: a for a in artefacts.all}
        self.runners: dict[str, Runner] = {}

    def run(self, job: Job, pixels: dict[int, np.ndarray] | None = None, failed: dict[int, str] | None = None,
            decode_seconds: float | None = None, on_progress: Callable[[float], None] = lambda images: None,
            ) -> JobResult:
        """The job's result; `pixels` (with `failed`, `decode_seconds`) if already decoded, else
        decoded here. `on_progress(k)` reports progress in images of the chunk as runs finish them."""
        if pixels is None:
            pixels, failed, decode_seconds = decode_job(job, self.model)
        failed = failed or {}
        ok = [i for i in job.ids if i in pixels]
        on_progress(len(job.ids) - len(ok))
        result = JobResult(job.index, self.name, {}, failed, decode_seconds or 0.0, len(job.ids))
        if not ok:
            return result
        position = {i: p for p, i in enumerate(ok)}
        batch = np.stack([pixels[i] for i in ok])
        todo = {name: [i for i in ids if i in position] for name, ids in job.needs.items()}
        work = sum(len(ids) for ids in todo.values())
        probs_of: dict[str, dict[int, np.ndarray]] = {}
        try:
            for name, ids in todo.items():
                if ids:
                    self._run(job, name, ids, batch[[position[i] for i in ids]], probs_of, result,
                              lambda n: on_progress(n * len(ok) / work))
        except KeyboardInterrupt:
            raise JobInterrupted(result) from None
        return result

    def _run(self, job: Job, name: str, ids: list[int], batch: np.ndarray, probs_of: dict[str, dict[int, np.ndarray]],
             result: JobResult, on_progress: Callable[[float], None]) -> None:
        load = 0.0
        if name not in self.runners:
            t0 = time.perf_counter()
            self.runners[name] = self.runner_factory(self.model, self.by_name[name], [self.artefacts.output])
            load = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = self.runners[name].infer(batch, on_progress)
        probs = probabilities(self.model, self.artefacts.output, out[self.artefacts.output])
        top = topk_ids(probs)
        probs_of[name] = dict(zip(ids, probs))
        deltas = {ref: prob_deltas(probs, np.stack([probs_of[ref][i] for i in ids])) for ref in job.refs[name]}
        result.runs[name] = RunOutput(np.array(ids), top, np.take_along_axis(probs, top, axis=-1), deltas,
                                      time.perf_counter() - t0, load)

    def close(self) -> None:
        while self.runners:
            self.runners.popitem()[1].close()


def chunks(items: Sequence[int], size: int) -> list[Sequence[int]]:
    return [items[start:start + size] for start in range(0, len(items), size)]
