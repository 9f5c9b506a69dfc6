"""Why an attempt at a URL failed, in the operating system's words, as one line per URL."""

from __future__ import annotations

import requests
import urllib3

from omzconv.download.security import redact
from omzconv.registry import FileSpec

OFFLINE_HINT = "no network? run offline with --synthetic-weights"


class Failure(Exception):
    """One failed attempt at one URL (becomes part of a DownloadError message). ``discard``: what the
    .part holds is not worth resuming."""

    def __init__(self, reason: str, *, transient: bool, offline: bool = False, discard: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.transient, self.offline, self.discard = reason, transient, offline, discard


class Restart(Exception):
    """The .part cannot be continued from this server's answer: discard it and ask for everything."""


def request_failure(exc: BaseException) -> BaseException:
    """What a failed request means; anything but a network error (e.g. KeyboardInterrupt) as it is."""
    if isinstance(exc, requests.exceptions.SSLError):
        return Failure(f"TLS error: {root_cause(exc)}", transient=False)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return Failure("connection timed out", transient=True, offline=True)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Failure("no answer before the timeout", transient=True)
    if isinstance(exc, requests.ConnectionError):
        return Failure(root_cause(exc), transient=True, offline=True)
    if isinstance(exc, (requests.RequestException, OSError)):
        return Failure(root_cause(exc), transient=False)
    return exc


def root_cause(exc: BaseException) -> str:
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
    return redact(" ".join(str(exc).split())[:200]) or type(exc).__name__


def all_failed(spec: FileSpec, failures: list[tuple[str, Failure]]) -> str:
    if not failures:
        return f"{spec.name}: no URL to download from"
    tried = "; ".join(f"{redact(url)}: {failure.reason}" for url, failure in failures)
    hint = f"; {OFFLINE_HINT}" if all(failure.offline for _, failure in failures) else ""
    return f"{spec.name}: download failed: {tried}{hint}"
