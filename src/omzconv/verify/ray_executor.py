"""`verify --executor ray`: the chunks of `evaluate` on Ray actors (`pip install 'omzconv[ray]'`).

Each actor hosts a `work.Worker` for one model: it loads the frozen graph and the IRs once, decodes
its chunks next to inference (one chunk decoding while the previous one infers) and returns
`JobResult`s. The driver alone writes the cache and the report (`evaluate`), so the report is the
in-process executor's, and a chunk counts once whoever computed it.

Files. Workers read the frozen graph, the IRs and the images from their paths when every worker
sees them (`files="shared"`: one machine, or a shared filesystem); otherwise (`"ship"`) the driver
puts the model's files into Ray's object store once and each chunk's images go with it as encoded
bytes. `"auto"` asks each worker whether it sees the files (path and size).

Execution precision. Each run's `Artefact` (`FP32`, `FP32@bf16`, …) carries what OpenVINO is to
compute it in and what the driver probed this CPU to compute that as; a worker compiles the IR with
that hint and returns what the compiled model says it computes in (`RunOutput.executed`), which the
driver checks against the probe before it caches anything. A cluster's nodes must agree: a worker on
a CPU that computes otherwise is an error, not a silently different run.

Faults. A worker that dies (its process killed, its node lost) has its chunks retried on the
others and is replaced; a chunk that has killed `MAX_ATTEMPTS` workers is an error. Ctrl-C stops
the workers; every chunk that came back is already in the cache.

Privacy. A local instance (no `address`) is started by `ray_private.start_local`: usage statistics
off, no dashboard, node address 127.0.0.1 (every process listens on loopback and none looks for an
outside address or a cloud metadata service), its files in a private temporary folder removed by
`close()`. Joining a cluster (`address`) uses the cluster's own network settings; omzconv's workers
still run with reporting off.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from omzconv.errors import OmzconvError
from omzconv.registry import Model
from omzconv.verify.artefacts import Artefact, ModelArtefacts, RunnerFactory
from omzconv.verify.executors import OnProgress
from omzconv.verify.ray_private import LOCAL_ENV, start_local, stop_local
from omzconv.verify.report import Execution
from omzconv.verify.work import Job, JobResult, Worker, decode_job

#: What every Ray process omzconv starts or runs in gets: no usage statistics sent anywhere, and
#: TensorFlow's C++ logs as quiet as omzconv's own default.
WORKER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
WORKER_CPUS = 2  # one TensorFlow session + one OpenVINO compiled model keep two cores busy
IN_FLIGHT = 2  # chunks queued per worker: one decoding while the other infers
MAX_ATTEMPTS = 3  # workers a chunk may kill before it is an error
FILES = ("auto", "shared", "ship")
log = logging.getLogger(__name__)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OmzconvError("--executor ray needs Ray: pip install 'omzconv[ray]'") from None
    return ray


def artefact_files(artefact: Artefact) -> list[Path]:
    """The files a runner reads: the frozen graph, or an IR's .xml and .bin."""
    path = Path(artefact.path)
    return [path, path.with_suffix(".bin")] if artefact.runtime == "openvino" else [path]


def _reachable(address: str) -> None:
    """Fail in seconds, with the address, when nothing listens there (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise OmzconvError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


class RayExecutor:
    """Verify's chunks on `workers` Ray actors: a local Ray instance started here (`address=None`),
    or a running cluster (`"auto"`, `"ray://host:port"`). `close()` stops the instance it started."""

    def __init__(self, address: str | None = None, workers: int | None = None, files: str = "auto") -> None:
        if files not in FILES:
            raise OmzconvError(f"unknown files mode {files!r}; choose from {', '.join(FILES)}")
        os.environ.update(WORKER_ENV)  # read by ray.init, and inherited by the processes it starts
        if address is None:
            os.environ.update(LOCAL_ENV)  # read when `ray` is imported
        ray = import_ray()
        self.ray, self.address, self.started = ray, address or "local", False
        self.temp: Path | None = None  # the local instance's private folder
        if address:
            _reachable(address)
        if not ray.is_initialized():  # else joined already (by this process: e.g. tests)
            options = dict(logging_level=logging.ERROR, log_to_driver=False)
            try:
                if address:
                    ray.init(address=address, runtime_env={"env_vars": WORKER_ENV}, **options)
                else:  # "local": a new instance even where a cluster is running
                    self.temp = start_local(ray, **options)
            except (ConnectionError, TimeoutError, ValueError, RuntimeError) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise OmzconvError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: "
                                   f"{reason}") from None
            self.started = True
        cpus = float(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, int(cpus // WORKER_CPUS))
        self.cpus = min(float(WORKER_CPUS), cpus / self.workers)  # each worker's share, so all of them fit
        self.files = "shared" if files == "auto" and address is None else files

    def close(self) -> None:
        if self.started:
            if self.temp is not None:
                stop_local(self.ray, self.temp)
            else:
                self.ray.shutdown()
            self.started = False

    @contextmanager
    def pool(self, model: Model, artefacts: ModelArtefacts,
             runner_factory: RunnerFactory | None = None) -> Iterator[_RayPool]:
        pool = _RayPool(self, model, artefacts, runner_factory)
        try:
            yield pool
        finally:
            pool.close()


class _Actor:
    """What runs in a Ray worker process: a `Worker` and its runtimes, for one model."""

    def __init__(self, model: Model, artefacts: ModelArtefacts, runner_factory: RunnerFactory | None) -> None:
        os.environ.update(WORKER_ENV)  # before TensorFlow is imported in this process
        self.model, self.artefacts, self.factory = model, artefacts, runner_factory
        self.worker: Worker | None = None
        self.lock, self.free_since = threading.Lock(), 0.0
        self.tmp: tempfile.TemporaryDirectory | None = None

    def pid(self) -> int:
        return os.getpid()

    def sees(self, files: Sequence[tuple[str, int]]) -> bool:
        """Whether every (path, size) is here, as the driver sees it."""
        return all(os.path.isfile(p) and os.path.getsize(p) == size for p, size in files)

    def receive(self, files: dict[str, Any]) -> None:
        """The model's files from the object store (driver path → object ref), into a temp dir."""
        import ray

        self.tmp = tempfile.TemporaryDirectory(prefix="omzconv-ray-")
        local, folders = {}, {}  # an IR's .xml and .bin stay side by side
        for path, ref in files.items():
            folder = folders.setdefault(Path(path).parent, Path(self.tmp.name) / str(len(folders)))
            folder.mkdir(exist_ok=True)
            local[path] = folder / Path(path).name
            local[path].write_bytes(ray.get(ref))

        def moved(a: Artefact) -> Artefact:
            return replace(a, path=local[str(a.path)])

        self.artefacts = replace(self.artefacts, original=moved(self.artefacts.original),
                                 converted=tuple(moved(a) for a in self.artefacts.converted))

    def run(self, job: Job) -> JobResult:
        """Decode (concurrently with the previous chunk's inference), then infer; the runtimes'
        wait for these pixels is what is charged as decoding (as in the in-process executor)."""
        started = time.perf_counter()
        decoded = decode_job(job, self.model)
        ready = time.perf_counter()
        with self.lock:
            if self.worker is None:
                self.worker = Worker(self.model, self.artefacts, self.factory)
            waited = max(0.0, ready - max(started, self.free_since))
            try:
                return self.worker.run(job, decoded, waited)
            finally:
                self.free_since = time.perf_counter()

    def close(self) -> None:
        with self.lock:
            if self.worker is not None:
                self.worker.close()
        if self.tmp is not None:
            self.tmp.cleanup()


class _RayPool:
    def __init__(self, executor: RayExecutor, model: Model, artefacts: ModelArtefacts,
                 runner_factory: RunnerFactory | None) -> None:
        self.ray, self.executor = executor.ray, executor
        self.args = (model, artefacts, runner_factory)
        self.info = Execution("ray", executor.address, executor.workers)
        self.remote = self.ray.remote(num_cpus=executor.cpus, max_concurrency=IN_FLIGHT)(_Actor)
        self.files = {str(p): p.stat().st_size for a in artefacts.all for p in artefact_files(a)}
        self.shipped: dict[str, Any] | None = None  # driver path → object ref, once put
        self.ship_images = executor.files == "ship"
        self.actors: list[Any] = []
        self.retried = 0  # chunks sent again after their worker died

    def _start(self) -> Any:
        actor = self.remote.remote(*self.args)
        mode = self.executor.files
        if mode == "ship" or (mode == "auto" and not self.ray.get(actor.sees.remote(list(self.files.items())))):
            if self.shipped is None:
                self.shipped = {path: self.ray.put(Path(path).read_bytes()) for path in self.files}
            self.ray.get(actor.receive.remote(self.shipped))
        self.actors.append(actor)
        return actor

    def pids(self) -> list[int]:
        """The worker processes' ids (tests kill one)."""
        return self.ray.get([a.pid.remote() for a in self.actors])

    def _sources(self, job: Job) -> Job:
        if not self.ship_images:
            return job
        return replace(job, sources=tuple(Path(s).read_bytes() if isinstance(s, Path) else s for s in job.sources))

    def map(self, jobs: Sequence[Job], on_progress: OnProgress) -> Iterator[JobResult]:
        ray = self.ray
        while jobs and len(self.actors) < self.executor.workers:  # started once there is work (not when all is cached)
            self._start()
        if jobs and self.executor.files == "auto" and not self.ship_images:
            first = [(str(p), p.stat().st_size) for p in jobs[0].sources[:1] if isinstance(p, Path)]
            self.ship_images = not all(ray.get([a.sees.remote(first) for a in self.actors]))
        # Ctrl-C leaves `inflight` behind: those results are dropped, and `close` stops the workers
        queue, inflight = deque(jobs), {}  # object ref → (job, actor)
        load = {id(a): 0 for a in self.actors}
        attempts: dict[int, int] = {}  # job index → workers it has lost
        while queue or inflight:
            for actor in self.actors:
                while queue and load[id(actor)] < IN_FLIGHT:
                    job = queue.popleft()
                    inflight[actor.run.remote(self._sources(job))] = (job, actor)
                    load[id(actor)] += 1
            ready, _ = ray.wait(list(inflight), num_returns=1)
            job, actor = inflight.pop(ready[0])
            load[id(actor)] -= 1
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                attempts[job.index] = attempts.get(job.index, 0) + 1
                if attempts[job.index] >= MAX_ATTEMPTS:
                    raise OmzconvError(f"images {job.ids[0]}..{job.ids[-1]} lost {MAX_ATTEMPTS} Ray workers; "
                                       f"the last: {str(exc).splitlines()[0]}") from None
                queue.appendleft(job)
                self.retried += 1
                if actor in self.actors:  # lost: replace it (its other chunks fail and come back too)
                    self.actors.remove(actor)
                    load[id(self._start())] = 0
                continue
            except ray.exceptions.RayTaskError as exc:
                raise exc.cause from None
            yield result  # committed by the driver before anything else can interrupt it
            on_progress(result.images)

    def close(self) -> None:
        for actor in self.actors:
            try:
                self.ray.get(actor.close.remote(), timeout=30)
            except (self.ray.exceptions.RayError, TimeoutError) as exc:  # killed below either way
                log.debug("Ray worker did not close cleanly: %s", exc)
            self.ray.kill(actor)
        self.actors = []
