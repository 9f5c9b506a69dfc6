"""Where a report goes and in which form: the one place that picks a renderer for a file."""

from __future__ import annotations

from pathlib import Path

from omzconv.errors import UsageError
from omzconv.fileutil import write_bytes_atomic, write_json_atomic
from omzconv.verify.report import VerifyReport, partial_path

FORMATS = {".json": "json", ".md": "md", ".html": "html", ".htm": "html"}


def report_format(path: Path, fmt: str | None) -> str:
    """The format for `path`: `fmt`, else its suffix's, else JSON. A suffix that names another
    format than `fmt` is a usage error (a `.json` file holding Markdown helps nobody)."""
    implied = FORMATS.get(Path(path).suffix.lower())
    if fmt is not None and implied is not None and fmt != implied:
        raise UsageError(f"--format {fmt} does not match --report {path} (a .{implied} name): "
                         f"name the file .{fmt} or leave --format out")
    return fmt or implied or "json"


def write_report(report: VerifyReport, path: Path, fmt: str | None = None, *, thumbnails: bool = True) -> list[Path]:
    """JSON at `path`, with Markdown (`.md`) and HTML (`.html`) beside it; with `fmt="md"` or
    `"html"` (the default for a `.md` or `.html` path) only that, at `path`. Each file is written
    whole or not at all. A complete report removes the partial ones an interrupted run left
    beside it (`partial_path`). Returns the files written."""
    from omzconv.verify.render_html import render_html
    from omzconv.verify.render_md import render_markdown

    path = Path(path)
    fmt = report_format(path, fmt)
    if fmt == "json":
        written = [path, path.with_suffix(".md"), path.with_suffix(".html")]
        write_json_atomic(path, report.to_dict())
    else:
        written = [path]
    for target in written:
        if target.suffix == ".md" or fmt == "md":
            write_bytes_atomic(target, render_markdown(report).encode())
        elif target.suffix == ".html" or fmt == "html":
            write_bytes_atomic(target, render_html(report, thumbnails=thumbnails).encode())
    if not report.interrupted:
        for target in written:
            partial_path(target).unlink(missing_ok=True)
    return written
