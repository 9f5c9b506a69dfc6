"""Terminal output shared by the commands: tables, JSON, progress bars, model selection."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeRemainingColumn, TransferSpeedColumn)
from rich.table import Table

# Piped output is not cut to 80 columns (use --json for machines).
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False)


def models_argument(func: Callable) -> Callable:
    """`NAME...`, `--all` and `--tag TAG`, the way every command that acts on models takes them.

    The command receives `names` and `all_models`; a `--tag` selection reaches it already resolved
    (by Registry.select) into the names of the models carrying the tag.
    """
    @functools.wraps(func)
    def command(*args: Any, names: tuple[str, ...], all_models: bool, tags: tuple[str, ...], **kwargs: Any) -> Any:
        if tags:
            registry = click.get_current_context().find_root().obj.registry
            names, all_models = tuple(m.name for m in registry.select(names, all_models, tags)), False
        return func(*args, names=names, all_models=all_models, **kwargs)

    command = click.option("--tag", "tags", multiple=True, metavar="TAG",
                           help="Every model tagged TAG (repeatable: any of them; see `omzconv list`), "
                                "e.g. omz for the Open Model Zoo's.")(command)
    command = click.option("--all", "all_models", is_flag=True, help="Every model in the registry.")(command)
    return click.argument("names", nargs=-1, metavar="[NAME]...")(command)


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(func)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(title: str | None, columns: list[str], rows: list[list[Any]], compact: bool = False,
                no_wrap: int = 0) -> None:
    """A table on stdout; `compact` drops the borders; the first `no_wrap` columns are never wrapped
    or cut. It fits $COLUMNS when that is set, even piped."""
    options = {"box": None, "pad_edge": False} if compact else {}
    table = Table(title=title, title_justify="left", header_style="bold", **options)
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index < no_wrap, min_width=None)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    columns_env = os.environ.get("COLUMNS", "")
    stdout.print(table, width=int(columns_env) if columns_env.isdigit() and int(columns_env) > 0 else None)


def info(message: str, quiet: bool) -> None:
    """A progress note on stderr, so stdout stays clean for tables and JSON."""
    if not quiet:
        stderr.print(message)


@contextmanager
def transfer_bars(quiet: bool) -> Iterator[Callable[[str], Callable[[int, int | None], None]]]:
    """Download bars, one per file; yields `add(description)` → the `progress(done, total)` callback
    the library calls. Safe to use from several threads."""
    if quiet or not sys.stderr.isatty():
        yield lambda description: (lambda done, total: None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        def add(description: str) -> Callable[[int, int | None], None]:
            task = bar.add_task(description, total=None)
            return lambda done, total: bar.update(task, completed=done, total=total)

        yield add


@contextmanager
def step_progress(description: str, total: int | None, quiet: bool,
                  unit: str | None = None) -> Iterator[Callable[[float], None]]:
    """A bar over items (images, models); yields `advance(n)`. With `unit` (e.g. "images") it also
    shows the rate, `12.3 images/s`."""
    if quiet or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    rate = (TextColumn(f"{{task.fields[rate]}} {unit}/s"),) if unit else ()
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:.0f}/{task.total}"), *rate, TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total, rate="–")
        state = next(t for t in bar.tasks if t.id == task)

        def advance(n: float = 1) -> None:
            bar.advance(task, n)
            if state.speed:  # a moving average rich keeps
                bar.update(task, rate=f"{state.speed:.1f}")

        yield advance


@contextmanager
def stage_status(label: str, quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner showing the current stage of a long step; yields `on_stage(text)`."""
    if quiet or not sys.stderr.isatty():
        yield lambda stage: None
        return
    with stderr.status(f"{label}: starting") as status:
        yield lambda stage: status.update(f"{label}: {stage}")


def synthetic_option(func: Callable) -> Callable:
    return click.option(
        "--synthetic-weights", "synthetic", is_flag=True,
        help="Use generated weights in the official checkpoint layout instead of downloading the real "
             "ones (offline runs, tests). They recognize nothing; results are labelled synthetic and "
             "kept apart from real ones.")(func)


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
