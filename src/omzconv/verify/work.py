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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
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
    given: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # run → image → its probability
    # vector, kept from an interrupted run: a reference that need not run again for its dependants


@dataclass
class RunOutput:
    ids: np.ndarray  # the images this run inferred
    top: np.ndarray  # (n, TOP_K) class ids, most probable first
    prob: np.ndarray  # (n, TOP_K) their probabilities
    deltas: dict[str, tuple[np.ndarray, np.ndarray]]  # reference run → (max, sum) of |Δ prob| per image
    seconds: float  # layout, inference and bookkeeping
    load_seconds: float = 0.0  # opening the runner, when this job opened it
    executed: str | None = None  # what OpenVINO computed in, as the compiled model says (None: TensorFlow)


@dataclass
class JobResult:
    worker: str
    runs: dict[str, RunOutput]
    failed: dict[int, str]  # image → why it could not be decoded
    decode_seconds: float  # waiting for the chunk's pixels
    images: int  # in the job
    vectors: dict[str, dict[int, np.ndarray]] = field(default_factory=dict)  # after Ctrl-C: the finished
    # runs' probability vectors, which the runs that did not finish will need

    @property
    def busy_seconds(self) -> float:
        """The worker's time on the job: its pixels, then every run."""
        return self.decode_seconds + sum(out.seconds for out in self.runs.values())


Decoded = tuple[dict[int, np.ndarray], dict[int, str]]  # pixels per image, and why the others failed


def gather(ids: Sequence[int], decoders: Iterable[Callable[[], np.ndarray]]) -> Decoded:
    """Each image's pixels from its decoder (a call of `preprocess.prepare`, or a future's
    `result`), or why it could not be decoded."""
    pixels, failed = {}, {}
    for i, decode in zip(ids, decoders):
        try:
            pixels[i] = decode()
        except ImageDecodeError as exc:
            failed[i] = exc.reason
    return pixels, failed


def decode_job(job: Job, model: Model) -> Decoded:
    """The job's images decoded and prepared here, one after another."""
    from omzconv.preprocess import prepare

    return gather(job.ids, (partial(prepare, source, model.preprocessing) for source in job.sources))


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

    def run(self, job: Job, decoded: Decoded, decode_seconds: float,
            on_progress: Callable[[float], None] = lambda images: None) -> JobResult:
        """The job's result from its `decoded` images (`decode_seconds`: the runtimes' wait for
        them). `on_progress(k)` reports progress in images of the chunk as runs finish them."""
        pixels, failed = decoded
        ok = [i for i in job.ids if i in pixels]
        on_progress(len(job.ids) - len(ok))
        result = JobResult(self.name, {}, failed, decode_seconds, len(job.ids))
        if not ok:
            return result
        position = {i: p for p, i in enumerate(ok)}
        batch = np.stack([pixels[i] for i in ok])
        todo = {name: [i for i in ids if i in position] for name, ids in job.needs.items()}
        work = sum(len(ids) for ids in todo.values())
        probs_of: dict[str, dict[int, np.ndarray]] = {name: dict(given) for name, given in job.given.items()}
        try:
            for name, ids in todo.items():
                if ids:
                    self._run(job, name, ids, batch[[position[i] for i in ids]], probs_of, result,
                              lambda n: on_progress(n * len(ok) / work))
        except KeyboardInterrupt:
            result.vectors = {name: {i: probs_of[name][i] for i in ids if i in position}
                              for name, ids in todo.items() if name in result.runs}
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
        probs_of.setdefault(name, {}).update(zip(ids, probs))
        deltas = {ref: prob_deltas(probs, np.stack([probs_of[ref][i] for i in ids])) for ref in job.refs[name]}
        result.runs[name] = RunOutput(np.array(ids), top, np.take_along_axis(probs, top, axis=-1), deltas,
                                      time.perf_counter() - t0, load, getattr(self.runners[name], "executed", None))

    def close(self) -> None:
        while self.runners:
            self.runners.popitem()[1].close()
