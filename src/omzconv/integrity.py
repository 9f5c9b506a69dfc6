"""Is an artefact still what its sidecar says it is?

Every sidecar omzconv writes records the sha256 of the files it describes and, next to it, their
`stamp`: size and modification time (ns) per file. A file whose size and mtime are as stamped is
taken as unchanged without reading it (an edit that keeps both the size and the mtime goes
unnoticed: the documented trade-off for not re-hashing hundreds of MB on every command); any
other file is hashed again. No TensorFlow, no OpenVINO.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from omzconv.fileutil import file_digest

log = logging.getLogger(__name__)
SHORT = 12  # hex digits of a sha256 shown in a message


def stamp(paths: Sequence[Path]) -> list[list[int]]:
    """[size, mtime_ns] of each file, in order: what `changed` compares first."""
    return [[(st := Path(p).stat()).st_size, st.st_mtime_ns] for p in paths]


def changed(paths: Sequence[Path], meta: dict) -> str | None:
    """None when `paths` hold what the sidecar `meta` records (its "sha256" of their bytes in order,
    "stamp" if it has one, else "size" for a single file); else why not, in a few words."""
    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            return f"{path.name} is missing"
    now = stamp(paths)
    if meta.get("stamp") == now:
        return None
    recorded = meta.get("stamp")
    sizes = ([size for size, _ in recorded] if isinstance(recorded, list) and len(recorded) == len(paths)
             else [meta.get("size")] if len(paths) == 1 and isinstance(meta.get("size"), int) else None)
    if sizes is not None:
        for path, (size, _), was in zip(paths, now, sizes):
            if size != was:
                return f"{path.name} is {size} bytes, was {was}"
    digest = "sha256:" + file_digest(paths)
    if digest == meta.get("sha256"):
        return None
    return f"sha256 {_short(digest)}…, was {_short(meta.get('sha256'))}…"


def unchanged(paths: Sequence[Path], meta: dict, what: str, action: str) -> bool:
    """`changed(paths, meta) is None`; when not, say on stderr (a warning) that `what` changed since
    it was made, why, and what omzconv does about it (`action`, e.g. "converting it again")."""
    reason = changed(paths, meta)
    if reason is not None:
        log.warning("%s changed since it was made (%s): %s", what, reason, action)
    return reason is None


def _short(sha: object) -> str:
    text = str(sha or "none")
    return text.removeprefix("sha256:")[:SHORT]
