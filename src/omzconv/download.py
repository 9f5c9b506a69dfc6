"""Fetch, verify and extract model files.

``fetch``: stream into ``<name>.part`` (resuming what an earlier run left), check size then hash,
and only then ``os.replace`` it to ``<name>``: a file under its final name has always verified.
``extract_archive``: check every member first, extract into a hidden temporary sibling, then move
it into place, with a marker that makes a second call free.

The decisions (what to do with what is on disk, what an HTTP answer means) are small pure
functions, ``plan``, ``response_action`` and ``member_problem``, testable without a network.
Nothing here prints: progress goes through a callback, problems are raised as omzconv errors
with one-line messages.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import shutil
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Optional
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
import urllib3

from omzconv.errors import ArchiveError, DownloadError, IntegrityError
from omzconv.fileutil import file_digest, write_bytes_atomic
from omzconv.registry import FileSpec

#: ``progress(done_bytes, total_bytes)``; total is None when neither the server nor models.yaml
#: says how big the file is. An exception it raises (e.g. KeyboardInterrupt to cancel) stops the
#: transfer and propagates; the .part stays for a resume.
Progress = Callable[[int, Optional[int]], None]

CHUNK_SIZE = 1 << 20
PART_SUFFIX = ".part"
RECORDED_SUFFIX = ".sha256"  # beside a download whose hash is not published
MARKER = ".omzconv-extracted"
OFFLINE_HINT = "no network? run offline with --synthetic-weights"


# --- decisions (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """What ``fetch`` will do for one file.

    ``skip``: the final file is there and verifies. ``finish``: the .part already holds the
    declared size; verify it and move it into place without the network. ``resume``: ask for
    bytes ``offset``- and append. ``fetch``: download from byte 0 (any .part is discarded).
    """

    kind: Literal["skip", "finish", "resume", "fetch"]
    offset: int = 0
    reason: str = ""


def part_path(final_path: Path) -> Path:
    """The sibling a download streams into before it has verified."""
    return final_path.with_name(final_path.name + PART_SUFFIX)


def plan(final_path: Path, part_path: Path, spec: FileSpec) -> Action:
    """Decide from what is on disk alone (no network, no writes); hashes the final file if present."""
    reason = ""
    if final_path.is_file():
        mismatch = _mismatch(final_path, spec)
        if mismatch is None:
            return Action("skip", reason=f"{final_path} verified")
        reason = f"{final_path.name} on disk does not verify ({mismatch[0]} mismatch)"
    part_size = part_path.stat().st_size if part_path.is_file() else 0
    if part_size == 0:
        return Action("fetch", reason=reason)
    if spec.size is not None and part_size > spec.size:
        return Action("fetch", reason=f"{part_path.name} is longer than declared ({part_size} > {spec.size} bytes)")
    if spec.size is not None and part_size == spec.size:
        return Action("finish", offset=part_size, reason=f"{part_path.name} is complete")
    return Action("resume", offset=part_size, reason=f"{part_path.name} holds {part_size} bytes")


def parse_content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes 100-199/200`` → (100, 200); ``bytes 100-199/*`` → (100, None); anything else → None."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if match is None:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


def response_action(status: int, offset: int, content_range: str | None = None) -> str:
    """What to do with the answer to a request for bytes ``offset``- of a file.

    ``write``: the whole file, from byte 0 (also what a server that ignores Range sends);
    ``append``: the rest, from ``offset``; ``restart``: discard the .part and ask for everything;
    ``retry``: a transient failure, try this URL again; ``next``: give up on this URL.
    """
    if status == 200:
        return "write"
    if status == 206:
        parsed = parse_content_range(content_range)
        return "append" if parsed is not None and parsed[0] == offset else "restart"
    if status == 416:
        return "restart" if offset else "next"
    if status in (408, 429) or 500 <= status <= 599:
        return "retry"
    return "next"


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why extracting ``member`` would be unsafe, or None if it is a plain file or directory.

    Every link is refused, not only those whose target escapes, and so are devices and FIFOs:
    TF-Slim checkpoint archives hold regular files only, and the simple rule has no loopholes.
    """
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "has an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "has a '..' component"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r}); only regular files and directories are allowed"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r}); only regular files and directories are allowed"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isfile() or member.isdir()):
        return f"has unsupported type {member.type!r}"
    return None


# --- verification --------------------------------------------------------------------------------


def recorded_digest_path(final_path: Path) -> Path:
    """Where the sha256 of a download whose hash is not published is recorded (beside it)."""
    return final_path.with_name(final_path.name + RECORDED_SUFFIX)


def recorded_digest(final_path: Path) -> str | None:
    """``sha256:<hex>`` recorded when `final_path` was downloaded, if its hash is not published."""
    try:
        return recorded_digest_path(final_path).read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError):
        return None


def record_digest(final_path: Path, content: Path | None = None) -> str:
    """Hash `content` (default `final_path`) with sha256 and record it beside `final_path`;
    return ``sha256:<hex>``."""
    digest = "sha256:" + file_digest(content or final_path, "sha256")
    note = f"{digest}  computed by omzconv at download: no hash was published for this file\n"
    write_bytes_atomic(recorded_digest_path(final_path), note.encode())
    return digest


def _mismatch(path: Path, spec: FileSpec) -> tuple[str, str, str] | None:
    """(what, expected, got) for the first check ``path`` fails, size before hash; None if it verifies.

    Without a published hash, a file is checked against the sha256 recorded when it was
    downloaded (if any): the size, when published, is all a fresh download can be checked against.
    """
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        return "size", f"{spec.size} bytes", f"{size} bytes"
    expected = str(spec.digest) if spec.digest is not None else recorded_digest(path)
    if expected is None:
        return None
    algorithm = expected.partition(":")[0]
    got = f"{algorithm}:{file_digest(path, algorithm)}"
    if got != expected.lower():
        return "hash", expected, got
    return None


def verify_file(path: Path, spec: FileSpec, *, source: str | None = None) -> None:
    """Raise IntegrityError unless ``path`` has the declared size (if any) and hash.

    ``source`` (the URL it came from) goes into the message. Deletes nothing.
    """
    try:
        mismatch = _mismatch(path, spec)
    except OSError as exc:
        raise IntegrityError(f"{spec.name}: cannot read {path}: {exc.strerror or exc}") from exc
    if mismatch is not None:
        what, expected, got = mismatch
        origin = f" from {source}" if source else ""
        raise IntegrityError(f"{spec.name}: {what} mismatch{origin}: expected {expected}, got {got}")


# --- fetching ------------------------------------------------------------------------------------


class _Failure(Exception):
    """One failed attempt at one URL (internal; becomes part of a DownloadError message)."""

    def __init__(self, reason: str, *, transient: bool, offline: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.transient, self.offline = reason, transient, offline


class _Restart(Exception):
    """The .part cannot be continued from this server's answer: discard it and ask for everything."""


def fetch(
    spec: FileSpec,
    dest_dir: Path,
    *,
    progress: Progress | None = None,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> Path:
    """Download ``spec`` to ``dest_dir / spec.name``, verified; return that path.

    No network if the file is already there and verifies. URLs are tried in order; each gets
    ``retries`` more attempts after the first for transient failures (connection errors,
    timeouts, 408, 429, 5xx), sleeping ``backoff * 2**n`` seconds and resuming from the .part;
    other 4xx move on at once. Raises IntegrityError (the bad .part deleted) if what arrived does
    not verify, DownloadError if every URL failed.
    """
    final = Path(dest_dir) / spec.name
    part = part_path(final)
    action = plan(final, part, spec)
    if action.kind == "skip":
        return final
    _mkdir(final.parent)
    if action.kind == "finish":
        if _mismatch(part, spec) is None:
            return _publish(part, final, spec)
        _unlink(part)  # complete but bad, left by an interrupted run: download again
    elif action.kind == "fetch":
        _unlink(part)

    owned = session is None
    session = session if session is not None else requests.Session()
    failures: list[tuple[str, _Failure]] = []
    try:
        for url in spec.urls:
            try:
                _download(url, part, spec, session, progress, retries, backoff, timeout)
            except _Failure as failure:
                failures.append((url, failure))
                continue
            try:
                verify_file(part, spec, source=url)
            except IntegrityError as exc:
                _unlink(part)
                raise IntegrityError(f"{exc}; the bad file was deleted, run again to retry") from None
            return _publish(part, final, spec)
    finally:
        if owned:
            session.close()
    raise DownloadError(_all_failed(spec, failures))


def dry_run_plan(spec: FileSpec, dest_dir: Path) -> str:
    """One line saying what ``fetch`` would do (hashes an existing final file, touches nothing)."""
    final = Path(dest_dir) / spec.name
    part = part_path(final)
    action = plan(final, part, spec)
    size = _human(spec.size) if spec.size is not None else "an unknown number of bytes"
    source = spec.urls[0] if spec.urls else "(no URL)"
    if action.kind == "skip":
        return f"{spec.name}: skip, already downloaded and verified at {final}"
    if action.kind == "finish":
        return f"{spec.name}: verify the complete {part} ({_human(action.offset)}) and move it into place"
    if action.kind == "resume":
        return f"{spec.name}: resume {part} from {_human(action.offset)} of {size} from {source}"
    note = f" ({action.reason})" if action.reason else ""
    unverified = "; no hash is published: its sha256 will be recorded" if spec.digest is None else ""
    return f"{spec.name}: fetch {size} from {source}{note}{unverified}"


def _download(
    url: str,
    part: Path,
    spec: FileSpec,
    session: requests.Session,
    progress: Progress | None,
    retries: int,
    backoff: float,
    timeout: float,
) -> None:
    """Fill ``part`` from ``url``, continuing from what it holds; raise _Failure on giving up."""
    attempt = restarts = 0
    while True:
        offset = part.stat().st_size if part.is_file() else 0
        try:
            if urlparse(url).scheme == "file":
                _copy_local(url, part, offset, progress)
            else:
                _get(url, part, offset, spec, session, progress, timeout)
            return
        except _Restart:
            _unlink(part)
            restarts += 1
            if restarts > 2:  # cannot happen with a sane server: a restart asks without Range
                raise _Failure("server keeps answering with the wrong byte range", transient=False) from None
        except _Failure as failure:
            if not failure.transient or attempt >= retries:
                if attempt:
                    failure.reason += f" (gave up after {attempt + 1} attempts)"
                raise
            time.sleep(backoff * 2**attempt)
            attempt += 1


def _get(
    url: str,
    part: Path,
    offset: int,
    spec: FileSpec,
    session: requests.Session,
    progress: Progress | None,
    timeout: float,
) -> None:
    # identity: byte ranges and the declared hash refer to the bytes as stored, never re-encoded
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = session.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise _request_failure(exc) from exc
    with response:
        status = response.status_code
        what = response_action(status, offset, response.headers.get("Content-Range"))
        if what == "restart":
            raise _Restart()
        if what in ("retry", "next"):
            raise _Failure(f"HTTP {status} {response.reason or ''}".strip(), transient=what == "retry")
        if what == "append":
            start, total = parse_content_range(response.headers.get("Content-Range"))  # type: ignore[misc]
            mode = "ab"
        else:
            start, total, mode = 0, _content_length(response), "wb"
        if total is None:
            total = spec.size
        done = _write(part, mode, _http_chunks(response), start, total, progress)
    if total is not None and done < total:
        raise _Failure(f"connection closed after {done} of {total} bytes", transient=True)


def _copy_local(url: str, part: Path, offset: int, progress: Progress | None) -> None:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise _Failure(f"file URLs must name a local file, not host {parsed.netloc!r}", transient=False)
    source = Path(url2pathname(parsed.path))
    try:
        src = open(source, "rb")
    except OSError as exc:
        raise _Failure(_root_cause(exc), transient=False) from exc
    with src:
        total = os.fstat(src.fileno()).st_size
        if offset > total:
            offset = 0
        src.seek(offset)
        _write(part, "ab" if offset else "wb", _file_chunks(src), offset, total, progress)


def _http_chunks(response: requests.Response) -> Iterator[bytes]:
    try:
        yield from response.raw.stream(CHUNK_SIZE, decode_content=False)
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
        raise _Failure(f"connection lost: {_root_cause(exc)}", transient=True) from exc


def _file_chunks(f) -> Iterator[bytes]:
    try:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk
    except OSError as exc:
        raise _Failure(f"cannot read: {_root_cause(exc)}", transient=False) from exc


def _write(part: Path, mode: str, chunks: Iterator[bytes], done: int, total: int | None,
           progress: Progress | None) -> int:
    """Write ``chunks`` to ``part`` (appending or from scratch); return the bytes ``part`` then holds."""
    try:
        with open(part, mode) as f:
            if progress is not None:
                progress(done, total)
            for chunk in chunks:
                f.write(chunk)
                done += len(chunk)
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


def _request_failure(exc: requests.RequestException) -> _Failure:
    if isinstance(exc, requests.exceptions.SSLError):
        return _Failure(f"TLS error: {_root_cause(exc)}", transient=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _Failure("connection timed out", transient=True, offline=True)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _Failure("no answer before the timeout", transient=True)
    if isinstance(exc, requests.ConnectionError):
        return _Failure(_root_cause(exc), transient=True, offline=True)
    return _Failure(_root_cause(exc), transient=False)


def _root_cause(exc: BaseException) -> str:
    """The operating system's words for a network failure ("connection refused"), else a short str."""
    stack, seen = [exc], set()
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        library = (requests.RequestException, urllib3.exceptions.HTTPError)
        if isinstance(e, OSError) and not isinstance(e, library) and isinstance(e.strerror, str):
            return e.strerror[:1].lower() + e.strerror[1:]
        linked = (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
        stack.extend(x for x in linked if isinstance(x, BaseException))
    return " ".join(str(exc).split())[:200] or type(exc).__name__


def _all_failed(spec: FileSpec, failures: list[tuple[str, _Failure]]) -> str:
    if not failures:
        return f"{spec.name}: no URL to download from"
    tried = "; ".join(f"{url}: {failure.reason}" for url, failure in failures)
    hint = f"; {OFFLINE_HINT}" if all(failure.offline for _, failure in failures) else ""
    return f"{spec.name}: download failed: {tried}{hint}"


def _publish(part: Path, final: Path, spec: FileSpec) -> Path:
    """Move the verified `part` into place; without a published hash, record the one it has."""
    if spec.digest is None:
        record_digest(final, part)  # before the move: a file in place always has its record
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


def _human(size: int) -> str:
    return f"{size} bytes ({size / (1 << 20):.1f} MiB)" if size >= 1 << 20 else f"{size} bytes"


# --- extraction ----------------------------------------------------------------------------------


def extract_archive(archive: Path, target_dir: Path, *, expect: str | None = None) -> Path:
    """Extract a .tar, .tar.gz or .tgz into ``target_dir`` safely and atomically; return ``target_dir``.

    Every member is checked before anything is written (see ``member_problem``: absolute paths,
    '..', links of any kind, devices and FIFOs are refused, and the whole archive with them).
    Extraction goes into ``.<target>.tmp-<random>`` next to ``target_dir`` and is moved into place
    only when complete, together with a marker recording the archive's name, size and mtime; a
    later call finding a matching marker returns at once, one finding a stale directory replaces
    it. ``expect`` (a path relative to ``target_dir``, e.g. ``inception_v4.ckpt``) must exist
    afterwards, as a file or as a TensorFlow checkpoint prefix (``<expect>.index``).
    """
    archive, target_dir = Path(archive), Path(target_dir)
    try:
        st = archive.stat()
    except OSError as exc:
        raise ArchiveError(f"cannot read archive {archive}: {exc.strerror or exc}") from exc
    stamp = {"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if _extracted(target_dir, stamp, expect):
        return target_dir

    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                problem = member_problem(member)
                if problem is not None:
                    raise ArchiveError(
                        f"{archive.name}: refusing to extract: member {member.name!r} {problem}; nothing was extracted")
            target_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp = _new_sibling(target_dir, "tmp", create=True)
            try:
                if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: a second line of defence
                    tar.extractall(tmp, members=members, filter="data")
                else:
                    tar.extractall(tmp, members=members)
                if expect is not None and not _present(tmp, expect):
                    names = ", ".join(m.name for m in members[:5]) + (", ..." if len(members) > 5 else "")
                    raise ArchiveError(f"{archive.name}: expected {expect!r} in the archive, found: {names or 'nothing'}")
                (tmp / MARKER).write_text(json.dumps(stamp) + "\n", encoding="utf-8")
                _swap_into_place(tmp, target_dir)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"{archive.name}: corrupt or not a tar archive: {exc}") from exc
    except OSError as exc:
        raise ArchiveError(f"cannot extract {archive.name} into {target_dir}: {exc.strerror or exc}") from exc
    return target_dir


def _extracted(target_dir: Path, stamp: dict, expect: str | None) -> bool:
    try:
        recorded = json.loads((target_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == stamp and (expect is None or _present(target_dir, expect))


def _present(root: Path, expect: str) -> bool:
    return (root / expect).is_file() or (root / f"{expect}.index").is_file()


def _new_sibling(target: Path, kind: str, *, create: bool) -> Path:
    """``.<target>.<kind>-<random>`` next to ``target``; created (honouring the umask) if asked."""
    while True:
        path = target.parent / f".{target.name}.{kind}-{secrets.token_hex(4)}"
        if not create:
            if not (path.exists() or path.is_symlink()):
                return path
            continue
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def _swap_into_place(tmp: Path, target: Path) -> None:
    """os.replace ``tmp`` to ``target``; a previous ``target`` is moved aside first and then removed
    (POSIX cannot rename over a non-empty directory), so ``target`` is never half-written."""
    if not (target.exists() or target.is_symlink()):
        os.replace(tmp, target)
        return
    old = _new_sibling(target, "old", create=False)
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        os.replace(old, target)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
