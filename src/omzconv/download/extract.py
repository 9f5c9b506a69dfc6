"""Safe extraction: every member checked before anything is written, bytes counted while writing.

The archive is extracted into a temporary sibling (``atomic_dir``) and moved into place only when
complete, with a marker recording the archive's name, size and mtime: a later call finding a
matching marker returns at once. The rules (`member_problem`, the budget) are in ``security.py``.
"""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import zlib
from pathlib import Path

from omzconv.download.security import MAX_EXTRACT_ENV, MAX_MEMBERS, extraction_budget, human, member_problem
from omzconv.errors import ArchiveError
from omzconv.fileutil import atomic_dir, remove_stale_temps

MARKER = ".omzconv-extracted"
PIECE = 1 << 20


def extract_archive(archive: Path, target_dir: Path, *, expect: str | None = None) -> Path:
    """Extract a .tar, .tar.gz or .tgz into ``target_dir`` safely and atomically; return ``target_dir``.

    Refused, with nothing extracted: any member ``member_problem`` objects to (absolute paths, '..',
    links, devices, FIFOs), more than MAX_MEMBERS members, or contents beyond the budget
    (``extraction_budget``: a multiple of the archive's size, at most an absolute cap) — checked on
    the headers first, then counted while writing. ``expect`` (a path relative to ``target_dir``,
    e.g. ``inception_v4.ckpt``) must exist afterwards, as a file or as a TensorFlow checkpoint
    prefix (``<expect>.index``). A stale ``target_dir`` made by omzconv is replaced; one it did not
    make is left alone (PathError).
    """
    archive, target_dir = Path(archive), Path(target_dir)
    try:
        st = archive.stat()
    except OSError as exc:
        raise ArchiveError(f"cannot read archive {archive}: {exc.strerror or exc}") from exc
    stamp = {"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    remove_stale_temps(target_dir)  # what a killed extraction left, even if a later one completed
    if _extracted(target_dir, stamp, expect):
        return target_dir
    budget = extraction_budget(st.st_size)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = _checked_members(tar, archive.name, budget)
            with atomic_dir(target_dir, marker=MARKER) as tmp:
                _write_members(tar, members, tmp, archive.name, budget)
                if expect is not None and not _present(tmp, expect):
                    names = ", ".join(m.name for m in members[:5]) + (", ..." if len(members) > 5 else "")
                    raise ArchiveError(f"{archive.name}: expected {expect!r} in the archive, found: {names or 'nothing'}")
                (tmp / MARKER).write_text(json.dumps(stamp) + "\n", encoding="utf-8")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{archive.name}: corrupt or not a tar archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot extract {archive.name} into {target_dir}: {exc.strerror or exc}") from exc
    return target_dir


def _refuse(archive_name: str, why: str) -> ArchiveError:
    return ArchiveError(f"{archive_name}: refusing to extract: {why}; nothing was extracted")


def _over_budget(archive_name: str, budget: int) -> ArchiveError:
    return _refuse(archive_name, f"its contents exceed {human(budget)}, the budget for this archive "
                                 f"(set {MAX_EXTRACT_ENV} to change the absolute cap)")


def _checked_members(tar: tarfile.TarFile, archive_name: str, budget: int) -> list[tarfile.TarInfo]:
    """Every member's header, checked as it is read: stops at the first problem."""
    members, declared = [], 0
    for member in tar:
        problem = member_problem(member)
        if problem is not None:
            raise _refuse(archive_name, f"member {member.name!r} {problem}")
        members.append(member)
        declared += member.size if member.isfile() else 0
        if len(members) > MAX_MEMBERS:
            raise _refuse(archive_name, f"more than {MAX_MEMBERS} members")
        if declared > budget:
            raise _over_budget(archive_name, budget)
    return members


def _write_members(tar: tarfile.TarFile, members: list[tarfile.TarInfo], root: Path, archive_name: str,
                   budget: int) -> None:
    """Create the directories and write the files of `members` under `root`, counting every byte."""
    written = 0
    for member in members:
        path = root.joinpath(*Path(member.name.replace("\\", "/")).parts)
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None  # a regular file: member_problem allowed nothing else
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        with source, open(os.open(path, flags, 0o666), "wb") as out:
            while piece := source.read(PIECE):
                written += len(piece)
                if written > budget:
                    raise _over_budget(archive_name, budget)
                out.write(piece)
        os.utime(path, (member.mtime, member.mtime))


def _extracted(target_dir: Path, stamp: dict, expect: str | None) -> bool:
    try:
        recorded = json.loads((target_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == stamp and (expect is None or _present(target_dir, expect))


def _present(root: Path, expect: str) -> bool:
    return (root / expect).is_file() or (root / f"{expect}.index").is_file()
