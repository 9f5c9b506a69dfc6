"""The transfer: stream one file into ``<name>.part``, check it, move it into place.

``fetch`` resumes what an earlier run left, retries transient failures, moves on to the next URL,
and only ``os.replace``s a .part that verified: a file under its final name has always verified.
The network calls run in a daemon thread (`Pipe`) that hands pieces to the calling thread, which
alone writes the .part and checks, every ``TICK`` seconds whatever the network does, the size limit,
the stall deadline and the progress callback (which cancels by raising). Rules: ``security.py``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests

from omzconv.download.failures import Failure, Restart, all_failed, root_cause
from omzconv.download.integrity import mismatch, record_digest, verify_file
from omzconv.download.planning import parse_content_range, part_path, plan, response_action
from omzconv.download.security import (STALL_BYTES, STALL_WINDOW, check_hash_policy, redact, require_hash_default,
                                       size_limit)
from omzconv.download.stream import Limits, Pipe, Stall, file_pieces
from omzconv.errors import DownloadError, IntegrityError
from omzconv.registry import FileSpec

#: ``progress(done_bytes, total_bytes)``; total is None when neither the server nor models.yaml
#: says how big the file is. Called at least every TICK seconds while a transfer runs; an exception
#: it raises (e.g. KeyboardInterrupt to cancel) stops the transfer and propagates; the .part stays.
Progress = Callable[[int, Optional[int]], None]

log = logging.getLogger("omzconv.download")


def fetch(
    spec: FileSpec,
    dest_dir: Path,
    *,
    progress: Progress | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    session: requests.Session | None = None,
    require_hash: bool | None = None,
    stall_window: float = STALL_WINDOW,
    stall_bytes: int = STALL_BYTES,
) -> Path:
    """Download ``spec`` to ``dest_dir / spec.name``, verified; return that path.

    No network if the file is already there and verifies. URLs are tried in order; each gets
    ``retries`` more attempts after the first for transient failures (connection errors,
    timeouts, stalls, 408, 429, 5xx), sleeping ``backoff * 2**n`` seconds and resuming from the
    .part; other 4xx move on at once. A server sending more than the declared size (or the cap,
    for an unpublished size) is cut off at one byte more and its .part deleted. ``require_hash``
    (default: ``$OMZCONV_REQUIRE_HASH``) refuses a file without a published hash. Raises
    IntegrityError (the bad .part deleted) if what arrived does not verify, DownloadError if every
    URL failed.
    """
    check_hash_policy(spec.name, spec.digest is not None,
                      require_hash_default() if require_hash is None else require_hash)
    final = Path(dest_dir) / spec.name
    part = part_path(final)
    action = plan(final, part, spec)
    if action.kind == "skip":
        return final
    _mkdir(final.parent)
    if action.kind == "finish":
        if mismatch(part, spec) is None:
            return _publish(part, final, spec, "an earlier run")
        _unlink(part)  # complete but bad, left by an interrupted run: download again
    elif action.kind == "fetch":
        _unlink(part)

    owned = session is None
    session = session if session is not None else requests.Session()
    failures: list[tuple[str, Failure]] = []
    limits = Limits(size_limit(spec.size), spec.size is not None, stall_window, stall_bytes)
    try:
        for url in spec.urls:
            try:
                _download(url, part, spec, limits, session, progress, retries, backoff, timeout)
            except Failure as failure:
                failures.append((url, failure))
                if failure.discard:
                    _unlink(part)
                continue
            try:
                verify_file(part, spec, source=url)
            except IntegrityError as exc:
                _unlink(part)
                raise IntegrityError(f"{exc}; the bad file was deleted, run again to retry") from None
            return _publish(part, final, spec, redact(url))
    finally:
        if owned:
            session.close()
    raise DownloadError(all_failed(spec, failures))


def _download(url: str, part: Path, spec: FileSpec, limits: Limits, session: requests.Session,
              progress: Progress | None, retries: int, backoff: float, timeout: float) -> None:
    """Fill ``part`` from ``url``, continuing from what it holds; raise Failure on giving up."""
    attempt = restarts = 0
    while True:
        offset = part.stat().st_size if part.is_file() else 0
        try:
            if urlparse(url).scheme == "file":
                _copy_local(url, part, offset, limits, progress)
            else:
                _get(url, part, offset, spec, limits, session, progress, timeout)
            return
        except Restart:
            _unlink(part)
            restarts += 1
            if restarts > 2:  # cannot happen with a sane server: a restart asks without Range
                raise Failure("server keeps answering with the wrong byte range", transient=False) from None
        except Failure as failure:
            if not failure.transient or attempt >= retries:
                if attempt:
                    failure.reason += f" (gave up after {attempt + 1} attempts)"
                raise
            time.sleep(backoff * 2**attempt)
            attempt += 1


def _get(url: str, part: Path, offset: int, spec: FileSpec, limits: Limits, session: requests.Session,
         progress: Progress | None, timeout: float) -> None:
    # identity: byte ranges and the declared hash refer to the bytes as stored, never re-encoded
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    stall = Stall(limits)

    def waiting() -> None:
        stall.add(0)
        if progress is not None:
            progress(offset, spec.size)

    with Pipe(lambda: session.get(url, headers=headers, stream=True, timeout=timeout)) as pipe:
        response = pipe.response(waiting)
        status = response.status_code
        what = response_action(status, offset, response.headers.get("Content-Range"))
        if what == "restart":
            raise Restart()
        if what in ("retry", "next"):
            raise Failure(f"HTTP {status} {response.reason or ''}".strip(), transient=what == "retry")
        if what == "append":
            start, total = parse_content_range(response.headers.get("Content-Range"))  # type: ignore[misc]
            mode = "ab"
        else:
            start, total, mode = 0, _content_length(response), "wb"
        if total is not None and total > limits.size:
            raise limits.too_big(f"announces {total} bytes,")
        done = _write(part, mode, pipe.pieces(), start, total if total is not None else spec.size, limits, stall,
                      progress)
    if total is not None and done < total:
        raise Failure(f"connection closed after {done} of {total} bytes", transient=True)


def _copy_local(url: str, part: Path, offset: int, limits: Limits, progress: Progress | None) -> None:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise Failure(f"file URLs must name a local file, not host {parsed.netloc!r}", transient=False)
    source = Path(url2pathname(parsed.path))
    try:
        src = open(source, "rb")
    except OSError as exc:
        raise Failure(root_cause(exc), transient=False) from exc
    with src:
        total = os.fstat(src.fileno()).st_size
        if total > limits.size:
            raise limits.too_big(f"is {total} bytes,")
        if offset > total:
            offset = 0
        src.seek(offset)
        _write(part, "ab" if offset else "wb", file_pieces(src), offset, total, limits, Stall(limits), progress)


def _write(part: Path, mode: str, pieces: Iterator[bytes], done: int, total: int | None, limits: Limits,
           stall: Stall, progress: Progress | None) -> int:
    """Write ``pieces`` to ``part`` (appending or from scratch), at most the limit + 1 byte; return the
    bytes ``part`` then holds."""
    try:
        with open(part, mode) as f:
            if progress is not None:
                progress(done, total)
            for piece in pieces:
                if done + len(piece) > limits.size:
                    f.write(piece[:limits.size + 1 - done])
                    raise limits.too_big("sent")
                f.write(piece)
                done += len(piece)
                stall.add(len(piece))
                if progress is not None:
                    progress(done, total)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise DownloadError(f"cannot write {part}: {exc.strerror or exc}") from exc
    return done


def _content_length(response: requests.Response) -> int | None:
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _publish(part: Path, final: Path, spec: FileSpec, source: str) -> Path:
    """Move the verified `part` into place; without a published hash, record and announce the one it has."""
    if spec.digest is None:
        digest = record_digest(final, part)  # before the move: a file in place always has its record
        log.warning("%s: no hash is published for this archive: recorded %s of what came from %s and checks "
                    "the file against it from now on (--require-hash refuses such archives)", spec.name, digest,
                    source)
    try:
        os.replace(part, final)
    except OSError as exc:
        raise DownloadError(f"cannot move {part} to {final}: {exc.strerror or exc}") from exc
    return final


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create directory {path}: {exc.strerror or exc}") from exc


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot delete {path}: {exc.strerror or exc}") from exc
