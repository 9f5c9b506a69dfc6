"""Is a file the one models.yaml declares? Size, then hash; without a published hash, the sha256
recorded beside it when it was downloaded (``<file>.sha256``)."""

from __future__ import annotations

from pathlib import Path

from omzconv.download.security import redact
from omzconv.errors import IntegrityError
from omzconv.fileutil import file_digest, write_bytes_atomic
from omzconv.registry import FileSpec

RECORDED_SUFFIX = ".sha256"  # beside a download whose hash is not published


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


def mismatch(path: Path, spec: FileSpec) -> tuple[str, str, str] | None:
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
        found = mismatch(path, spec)
    except OSError as exc:
        raise IntegrityError(f"{spec.name}: cannot read {path}: {exc.strerror or exc}") from exc
    if found is not None:
        what, expected, got = found
        origin = f" from {redact(source)}" if source else ""
        raise IntegrityError(f"{spec.name}: {what} mismatch{origin}: expected {expected}, got {got}")
