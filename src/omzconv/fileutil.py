"""Hashing, atomic writes, artefact locks and the cleaning of what a killed process left.

No half-written file ever sits under a final name: `atomic_path` and `atomic_dir` fill a temporary
sibling (``.<name>.<random>.tmp``) and rename it into place. Each temporary sibling is held under an
exclusive ``flock`` by the process filling it, so a later run can tell a live one from one a killed
process left (`remove_stale_temps`). `atomic_dir` replaces only a directory omzconv made: one holding
its marker file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omzconv.errors import PathError

try:
    import fcntl
except ImportError:  # not POSIX: filelock's lock (its file stays), and temporaries are not locked
    fcntl = None  # type: ignore[assignment]

CHUNK = 1 << 20
DIR_MARKER = ".omzconv-dir"  # in every directory atomic_dir makes: the proof that omzconv made it
#: What directories made by omzconv 0.1.0 hold (IR folders: their sidecar; extracted archives: the
#: extraction stamp), so they can be replaced too.
LEGACY_MARKERS = ("omzconv.json", ".omzconv-extracted")
TEMP_SUFFIX = ".tmp"
LEGACY_TEMPS = ("tmp-", "old-")  # omzconv 0.1.0's .<name>.tmp-<hex> and .<name>.old-<pid or hex>
STALE_AFTER = 60.0  # seconds: a temporary younger than this may still be being created: never removed

log = logging.getLogger(__name__)


def file_digest(paths: Path | Iterable[Path], algorithm: str = "sha256") -> str:
    """Hex digest of one file, or of several files' bytes in the order given."""
    digest = hashlib.new(algorithm)
    for path in [paths] if isinstance(paths, Path) else paths:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


# --- temporary siblings --------------------------------------------------------------------------


def _hold(path: Path) -> int:
    """Open `path` (a file or directory) and take an exclusive flock on it; return the descriptor."""
    fd = os.open(path, os.O_RDONLY)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _unheld(path: Path) -> bool:
    """True if no process holds `path`'s flock (this call takes it for an instant)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove the temporary siblings of `final` (``.<name>.*.tmp``) that a killed process left:
    those nobody holds and older than STALE_AFTER seconds. Return what was removed.

    Safe at any time, from any process: a live one's temporaries are held (flock) until renamed.
    """
    removed = []
    prefix = f".{final.name}."
    try:
        candidates = [p for p in final.parent.iterdir() if p.name.startswith(prefix) and (
            p.name.endswith(TEMP_SUFFIX) or p.name[len(prefix):].startswith(LEGACY_TEMPS))]
    except OSError:
        return removed
    for path in candidates:
        try:
            st = path.lstat()
        except OSError:
            continue
        if time.time() - st.st_mtime < STALE_AFTER or path.is_symlink() or not _unheld(path):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        log.info("%s: removed %s, left by an interrupted run", final, path.name)
        removed.append(path)
    return removed


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp sibling of `final` to write; on success it is renamed to `final`.

    On any exception the temp file is removed and `final` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent)
    tmp_path = Path(tmp)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        tmp_path.chmod(0o666 & ~_umask())  # mkstemp makes 0600; the final file gets the usual mode
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        tmp_path.unlink(missing_ok=True)
        os.close(fd)


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


def made_by_omzconv(directory: Path, marker: str = DIR_MARKER) -> bool:
    """True if `directory` is a real directory holding `marker` (or a 0.1.0 marker), or is empty."""
    if directory.is_symlink() or not directory.is_dir():
        return False
    names = (marker, *LEGACY_MARKERS)
    if any((directory / name).is_file() and not (directory / name).is_symlink() for name in names):
        return True
    return next(directory.iterdir(), None) is None


def _check_replaceable(final: Path, marker: str) -> None:
    if (final.exists() or final.is_symlink()) and not made_by_omzconv(final, marker):
        raise PathError(f"refusing to replace {final}: omzconv did not make it (it holds no {marker}); "
                        "move it away or delete it yourself")


@contextmanager
def held_temp_dir(final: Path) -> Iterator[Path]:
    """A new, held ``.<final>.<random>.tmp`` directory; removed on the way out unless renamed."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=TEMP_SUFFIX, dir=final.parent))
    fd = _hold(tmp)
    try:
        tmp.chmod(0o777 & ~_umask())
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(fd)


@contextmanager
def atomic_dir(final: Path, marker: str = DIR_MARKER) -> Iterator[Path]:
    """Yield a temp sibling directory to fill; on success it replaces `final` whole.

    The directory holds `marker` (an empty file, which the caller may overwrite). An existing `final`
    is replaced only if omzconv made it (`made_by_omzconv`); anything else raises PathError and is
    left as it was, as is `final` on any exception.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)
    _check_replaceable(final, marker)  # before the work, and again before the swap
    with held_temp_dir(final) as tmp:
        (tmp / marker).touch()
        yield tmp
        if not (final.exists() or final.is_symlink()):
            os.replace(tmp, final)
            return
        _check_replaceable(final, marker)
        with held_temp_dir(final) as aside:  # the old one goes inside a held temporary, then away
            os.replace(final, aside / "old")
            try:
                os.replace(tmp, final)
            except OSError:
                os.replace(aside / "old", final)
                raise


@contextmanager
def artefact_lock(final: Path) -> Iterator[None]:
    """Hold `<final>.lock` while `final` is checked and, if need be, made.

    A second process (or thread) asking for the same artefact waits, says once that it waits, and
    then finds the artefact up to date instead of making it again or racing the first. Holding the
    lock, it removes the temporaries an interrupted run left beside `final`; on release the lock file
    is deleted (while still locked: a waiter that then gets the lock of a deleted file notices and
    locks the new one), so no `.lock` files stay behind.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    lock_path = final.with_name(final.name + ".lock")
    if fcntl is None:
        yield from _filelock(lock_path)
        return
    fd = _lock(lock_path, blocking=False)
    if fd is None:
        log.info("%s: another omzconv process is making it; waiting for it", final)
        fd = _lock(lock_path, blocking=True)
    try:
        remove_stale_temps(final)
        yield
    finally:
        lock_path.unlink(missing_ok=True)
        os.close(fd)


def _lock(path: Path, *, blocking: bool) -> int | None:
    """flock `path` (created if need be); the descriptor, or None if held and not `blocking`."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder deleted it as we waited: lock the file now at `path`


def _filelock(lock_path: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(lock_path)):
        yield
