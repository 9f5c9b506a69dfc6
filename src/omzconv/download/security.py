"""Every rule that bounds what a download may do, in one place.

- Sizes: a transfer stops at the declared size + 1 byte (and fails); an archive whose size is not
  published is capped at ``OMZCONV_MAX_DOWNLOAD`` (default 2 GiB; the largest such archive, VGG-19's,
  is about 0.5 GiB).
- Hashes: an archive without a published hash has the sha256 of what arrived recorded and announced
  once (a warning); ``--require-hash`` / ``OMZCONV_REQUIRE_HASH=1`` refuses it.
- Time: a transfer fails when fewer than ``STALL_BYTES`` arrive in any ``STALL_WINDOW`` seconds
  (waiting for the answer included); Ctrl-C is noticed within ``TICK`` seconds.
- Extraction: regular files and directories only (`member_problem`), at most ``MAX_MEMBERS``
  members and ``extraction_budget`` bytes, counted while writing.
- Printing: a URL's credentials (``user:password@``) never reach a message (`redact`).
"""

from __future__ import annotations

import os
import re
import tarfile
from pathlib import PurePosixPath

from omzconv.errors import ConfigError, IntegrityError

MAX_DOWNLOAD_ENV = "OMZCONV_MAX_DOWNLOAD"
DEFAULT_MAX_DOWNLOAD = 2 << 30
REQUIRE_HASH_ENV = "OMZCONV_REQUIRE_HASH"
MAX_EXTRACT_ENV = "OMZCONV_MAX_EXTRACT"
DEFAULT_MAX_EXTRACT = 16 << 30  # absolute cap on what one archive may extract to
EXTRACT_RATIO = 10  # ... and at most this many times the archive's size (checkpoints compress ~1.1x)
MAX_MEMBERS = 10_000
STALL_WINDOW = 30.0  # seconds
STALL_BYTES = 64 << 10  # at least this many bytes in every window: about 2 KiB/s
TICK = 0.2  # seconds between checks for Ctrl-C and the stall deadline while waiting on the network

_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_SIZE = re.compile(r"(?i)\s*(\d+)\s*([kmgt]?)i?b?\s*")


def redact(text: str) -> str:
    """`text` (a URL, or a message holding URLs) with every ``user:password@`` replaced by ``***@``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def parse_size(text: str, what: str) -> int:
    """``123``, ``500M``, ``2G``, ``2GiB`` → bytes (powers of 1024); ConfigError naming `what` otherwise."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ConfigError(f"{what}: expected a size such as 2G, 500M or 123456 (bytes), got {text!r}")
    return int(match[1]) << (10 * " kmgt".index(match[2].lower() or " "))


def max_download() -> int:
    """The cap on an archive whose size is not published (``OMZCONV_MAX_DOWNLOAD``)."""
    value = os.environ.get(MAX_DOWNLOAD_ENV)
    return parse_size(value, MAX_DOWNLOAD_ENV) if value else DEFAULT_MAX_DOWNLOAD


def size_limit(size: int | None) -> int:
    """The most bytes a transfer may bring: the declared size, else the cap."""
    return size if size is not None else max_download()


def require_hash_default() -> bool:
    return os.environ.get(REQUIRE_HASH_ENV, "").strip().lower() in ("1", "true", "yes")


def check_hash_policy(name: str, published: bool, require_hash: bool) -> None:
    """Refuse an archive without a published hash when `require_hash` (or OMZCONV_REQUIRE_HASH) asks."""
    if not published and require_hash:
        raise IntegrityError(f"{name}: no hash is published for this archive, and --require-hash "
                             f"(or {REQUIRE_HASH_ENV}=1) refuses such archives")


def extraction_budget(archive_size: int) -> int:
    """The most bytes an archive of `archive_size` bytes may extract to."""
    value = os.environ.get(MAX_EXTRACT_ENV)
    cap = parse_size(value, MAX_EXTRACT_ENV) if value else DEFAULT_MAX_EXTRACT
    return min(cap, EXTRACT_RATIO * max(archive_size, 1 << 20))


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


def human(size: int) -> str:
    if size >= 1 << 30:
        return f"{size} bytes ({size / (1 << 30):.1f} GiB)"
    return f"{size} bytes ({size / (1 << 20):.1f} MiB)" if size >= 1 << 20 else f"{size} bytes"
