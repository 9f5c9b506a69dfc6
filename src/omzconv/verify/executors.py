"""Who does the work of `evaluate`: this process (the default) or a Ray cluster (`omzconv[ray]`).

An executor opens a pool of workers for one model (`pool(model, artefacts)`, a context manager
that frees every worker's runtimes when it exits) and maps the driver's jobs onto it
(`Pool.map`), yielding each `JobResult` as it arrives, in any order. The driver alone writes:
results are data, so which executor made them never changes the report's figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from omzconv.registry import Model
from omzconv.verify.artefacts import ModelArtefacts, RunnerFactory
from omzconv.verify.report import Execution
from omzconv.verify.work import Job, JobResult, Worker, gather

OnProgress = Callable[[float], None]  # progress in images


class Pool(Protocol):
    info: Execution  # without per_worker: the driver counts that

    def map(self, jobs: Sequence[Job], on_progress: OnProgress) -> Iterator[JobResult]: ...


class Executor(Protocol):
    def pool(self, model: Model, artefacts: ModelArtefacts, runner_factory: RunnerFactory | None = None,
             ) -> AbstractContextManager[Pool]: ...


class InProcess:
    """One worker in this process; a thread pool decodes the next chunk while the runtimes infer
    this one, so a runtime waits for pixels only when decoding is the slower of the two."""

    def __init__(self, decoders: int | None = None) -> None:
        self.decoders = decoders or min(4, os.cpu_count() or 2)

    @contextmanager
    def pool(self, model: Model, artefacts: ModelArtefacts,
             runner_factory: RunnerFactory | None = None) -> Iterator[Pool]:
        worker = Worker(model, artefacts, runner_factory, name="in-process")
        try:
            yield _LocalPool(worker, self.decoders)
        finally:
            worker.close()
            release_memory()


def release_memory() -> None:
    """Give what closed runtimes freed back to the system, so the next model starts from the
    same footprint (`verify --all`): collect their Python objects, then ask glibc to return free
    heap pages (TensorFlow frees its tensors to malloc, which keeps them otherwise)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


class _LocalPool:
    info = Execution("in-process", "local", 1)

    def __init__(self, worker: Worker, decoders: int) -> None:
        self.worker, self.decoders = worker, decoders

    def map(self, jobs: Sequence[Job], on_progress: OnProgress) -> Iterator[JobResult]:
        from omzconv.preprocess import prepare

        pre = self.worker.model.preprocessing
        threads = ThreadPoolExecutor(max_workers=self.decoders, thread_name_prefix="decode")

        def decode(job: Job) -> list[Future]:
            return [threads.submit(prepare, source, pre) for source in job.sources]

        try:
            ahead = decode(jobs[0]) if jobs else []
            for k, job in enumerate(jobs):
                waited = time.perf_counter()
                decoded = gather(job.ids, (future.result for future in ahead))
                waited = time.perf_counter() - waited
                if k + 1 < len(jobs):
                    ahead = decode(jobs[k + 1])
                yield self.worker.run(job, decoded, waited, on_progress)
        finally:
            threads.shutdown(wait=True, cancel_futures=True)

