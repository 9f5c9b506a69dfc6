"""Fetch, verify and extract model files, in four small modules by concern:

- ``planning``: what to fetch, decided from what is on disk and what a server answers (pure);
- ``transfer``: the transfer (resume, retries, size limit, stall deadline, Ctrl-C), ``fetch``;
- ``extract``: safe extraction with a budget, ``extract_archive``;
- ``security``: every rule those follow, in one place; ``integrity``: size and hash checks.

Nothing here prints: progress goes through a callback, problems are raised as omzconv errors with
one-line messages. Names are imported on first use, so importing ``omzconv.download.security``
(e.g. to redact a URL in ``omzconv info``) does not load ``requests``.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "Action": "planning", "plan": "planning", "part_path": "planning", "parse_content_range": "planning",
    "response_action": "planning", "dry_run_plan": "planning",
    "fetch": "transfer", "Progress": "transfer",
    "extract_archive": "extract", "MARKER": "extract",
    "member_problem": "security", "redact": "security",
    "verify_file": "integrity", "recorded_digest": "integrity", "recorded_digest_path": "integrity",
    "record_digest": "integrity",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"omzconv.download.{_HOMES[name]}"), name)
