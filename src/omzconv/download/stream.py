"""The network side of a transfer: reads in a daemon thread handed over through a small queue
(`Pipe`), the stall deadline (`Stall`) and the size limit (`Limits`)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests

from omzconv.download.failures import Failure, request_failure, root_cause
from omzconv.download.security import TICK, human

CHUNK_SIZE = 64 << 10  # the most one read returns; a read returns what has arrived


@dataclass(frozen=True)
class Limits:
    """What one transfer may do: at most `size` bytes (`declared` in models.yaml, or the cap), and at
    least `stall_bytes` in every `stall_window` seconds."""

    size: int
    declared: bool
    stall_window: float
    stall_bytes: int

    def too_big(self, what: str) -> Failure:
        bound = (f"the {self.size} bytes models.yaml declares" if self.declared else
                 f"{human(self.size)}, the cap for a file whose size is not published (OMZCONV_MAX_DOWNLOAD)")
        return Failure(f"{what} more than {bound}", transient=False, discard=True)


class Stall:
    """The stall deadline: `add(n)` for every n bytes (0 while waiting) fails the transfer once a
    window has passed with fewer than the minimum."""

    def __init__(self, limits: Limits) -> None:
        self.window, self.min_bytes = limits.stall_window, limits.stall_bytes
        self.start, self.count = time.monotonic(), 0

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.start < self.window:
            return
        if self.count < self.min_bytes:
            raise Failure(f"stalled: {self.count} bytes in {self.window:g} s (at least {self.min_bytes} needed)",
                          transient=True)
        self.start, self.count = now, 0


class Pipe:
    """`request()` and the reads of its body in a daemon thread, handed over through a small queue;
    the calling thread waits at most TICK at a time. A transfer given up (error, Ctrl-C, stall)
    leaves at most that thread, which writes nothing and ends by its socket timeout."""

    def __init__(self, request: Callable[[], requests.Response]) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=16)
        self._abandoned, self._reading = threading.Event(), threading.Event()
        self._response: requests.Response | None = None
        threading.Thread(target=self._run, args=(request,), name="omzconv-download", daemon=True).start()

    def __enter__(self) -> Pipe:
        return self

    def __exit__(self, *exc: object) -> None:
        self._abandoned.set()
        shutdown = getattr(getattr(self._response, "raw", None), "shutdown", None)  # urllib3 >= 2.3
        if shutdown is not None:
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - best effort: the thread also ends by its timeout
                pass

    def _run(self, request: Callable[[], requests.Response]) -> None:
        try:
            self._response = response = request()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self._put(("error", request_failure(exc)))
            return
        try:
            if not self._put(("response", response)):
                return
            while not self._reading.wait(TICK):
                if self._abandoned.is_set():
                    return
            read = getattr(response.raw, "read1", None)  # what has arrived, up to CHUNK_SIZE
            pieces = (iter(lambda: read(CHUNK_SIZE, decode_content=False), b"") if read is not None
                      else response.raw.stream(CHUNK_SIZE, decode_content=False))
            for piece in pieces:
                if not self._put(("data", piece)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # noqa: BLE001
            self._put(("error", Failure(f"connection lost: {root_cause(exc)}", transient=True)))
        finally:
            response.close()

    def _put(self, item: tuple) -> bool:
        while not self._abandoned.is_set():
            try:
                self._queue.put(item, timeout=TICK)
                return True
            except queue.Full:
                continue
        return False

    def _next(self) -> tuple | None:
        try:
            kind, value = self._queue.get(timeout=TICK)
        except queue.Empty:
            return None
        if kind == "error":
            raise value
        return kind, value

    def response(self, waiting: Callable[[], None]) -> requests.Response:
        while (item := self._next()) is None:
            waiting()
        return item[1]

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives; b"" when nothing came for TICK seconds."""
        self._reading.set()
        while True:
            item = self._next()
            if item is None:
                yield b""
            elif item[0] == "end":
                return
            else:
                yield item[1]


def file_pieces(f) -> Iterator[bytes]:
    try:
        while piece := f.read(CHUNK_SIZE):
            yield piece
    except OSError as exc:
        raise Failure(f"cannot read: {root_cause(exc)}", transient=False) from exc
