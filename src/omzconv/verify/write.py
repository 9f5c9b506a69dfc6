"""Where a report goes (`default_report_path`, `partial_path`, `diff_page_path`) and in which form:
the one place that picks a renderer for a file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omzconv.errors import UsageError
from omzconv.fileutil import write_bytes_atomic, write_json_atomic
from omzconv.verify.report import DatasetInfo, VerifyReport

if TYPE_CHECKING:
    from omzconv.registry import Model
    from omzconv.workspace import Workspace

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


MAX_NAMED_MODELS = 3  # more models than this are counted in a report's file name, not listed


def default_report_path(workspace: Workspace, dataset: DatasetInfo, models: Sequence[Model]) -> Path:
    """`<out>/reports/verify-<dataset>-<models>-<hash>.json`, the hash over the data directory, the
    image selection and the models, so verifying another dataset or subset writes another report."""
    names = [m.name for m in models]
    selection = json.dumps([dataset.data_dir, dataset.limit, dataset.seed, dataset.selected, names])
    digest = hashlib.sha256(selection.encode()).hexdigest()[:8]
    label = "+".join(names) if len(names) <= MAX_NAMED_MODELS else f"{len(names)}-models"
    return workspace.model_dir(models[0]).parent / "reports" / f"verify-{dataset.name}-{label}-{digest}.json"


def partial_path(path: Path) -> Path:
    """Where an interrupted run's report goes, beside (never over) the last complete one."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def diff_page_path(report_path: Path, model: str, run: str) -> Path:
    """The `omzconv diff` page explaining a failed run, beside the report:
    `<report-stem>-diff-<model>-<run>.html` (run e.g. `FP32@bf16`)."""
    report_path = Path(report_path)
    return report_path.with_name(f"{report_path.stem}-diff-{model}-{run}.html")
