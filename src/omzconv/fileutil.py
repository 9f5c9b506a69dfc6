"""Hashing and atomic writes: no half-written file ever sits under a final name."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


def file_digest(paths: Path | Iterable[Path], algorithm: str = "sha256") -> str:
    """Hex digest of one file, or of several files' bytes in the order given."""
    digest = hashlib.new(algorithm)
    for path in [paths] if isinstance(paths, Path) else paths:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp sibling of `final` to write; on success it is renamed to `final`.

    On any exception the temp file is removed and `final` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(final: Path, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(final: Path, data: Any) -> None:
    write_bytes_atomic(final, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, or None if it is missing or unreadable (a stale sidecar is redone)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temp sibling directory to fill; on success it replaces `final` whole."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def artefact_lock(final: Path) -> Iterator[None]:
    """Hold `<final>.lock` while `final` is checked and, if need be, made.

    A second process (or thread) asking for the same artefact waits, says once that it waits, and
    then finds the artefact up to date instead of making it again or racing the first.
    """
    from filelock import FileLock, Timeout

    final.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(final) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logging.getLogger(__name__).info("%s: another omzconv process is making it; waiting for it", final)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
