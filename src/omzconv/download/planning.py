"""What to fetch, decided from what is on disk and what a server answers: pure functions, no
network, no writes (pooch's ``download_action`` is the model)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from omzconv.download.integrity import mismatch
from omzconv.download.security import human, redact, size_limit
from omzconv.registry import FileSpec

PART_SUFFIX = ".part"


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
        found = mismatch(final_path, spec)
        if found is None:
            return Action("skip", reason=f"{final_path} verified")
        reason = f"{final_path.name} on disk does not verify ({found[0]} mismatch)"
    part_size = part_path.stat().st_size if part_path.is_file() else 0
    if part_size == 0:
        return Action("fetch", reason=reason)
    limit = size_limit(spec.size)
    if part_size > limit:
        return Action("fetch", reason=f"{part_path.name} is longer than {'declared' if spec.size is not None else 'the cap'} "
                                      f"({part_size} > {limit} bytes)")
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


def dry_run_plan(spec: FileSpec, dest_dir: Path) -> str:
    """One line saying what ``fetch`` would do (hashes an existing final file, touches nothing)."""
    final = Path(dest_dir) / spec.name
    part = part_path(final)
    action = plan(final, part, spec)
    size = human(spec.size) if spec.size is not None else f"at most {human(size_limit(None))} (size not published)"
    source = redact(spec.urls[0]) if spec.urls else "(no URL)"
    if action.kind == "skip":
        return f"{spec.name}: skip, already downloaded and verified at {final}"
    if action.kind == "finish":
        return f"{spec.name}: verify the complete {part} ({human(action.offset)}) and move it into place"
    if action.kind == "resume":
        return f"{spec.name}: resume {part} from {human(action.offset)} of {size} from {source}"
    note = f" ({action.reason})" if action.reason else ""
    unverified = "; no hash is published: its sha256 will be recorded" if spec.digest is None else ""
    return f"{spec.name}: fetch {size} from {source}{note}{unverified}"
