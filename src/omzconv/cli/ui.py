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
from rich.box import Box
from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, SpinnerColumn, Task,
                           TaskProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.text import Text
from rich.table import Table

PIPED_WIDTH = 200  # piped output is not cut to 80 columns (use --json for machines)
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
stderr = Console(stderr=True, highlight=False)


def fit_terminal() -> None:
    """Tables as wide as $COLUMNS says (also when piped), else the terminal, else PIPED_WIDTH."""
    columns = os.environ.get("COLUMNS", "")
    stdout.width = int(columns) if columns.isdigit() else None if sys.stdout.isatty() else PIPED_WIDTH


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


def ir_interface_options(func: Callable) -> Callable:
    """`--input-type`/`--layout`: which IR input interface to make (convert) or to use (the others).
    IRs with a non-default interface live in their own folder, e.g. FP32-u8-nhwc/."""
    func = click.option("--layout", type=click.Choice(["NCHW", "NHWC"]),
                        help="Layout of the IR's input [default: from models.yaml, NCHW]; IRs of another "
                             "layout are kept apart (e.g. FP32-nhwc/).")(func)
    return click.option("--input-type", type=click.Choice(["f32", "u8"]),
                        help="Element type of the IR's input [default: from models.yaml, f32]; IRs of "
                             "another type are kept apart (e.g. FP32-u8/).")(func)


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")(func)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


# rich's SIMPLE_HEAD with an ASCII rule: one byte per column in any locale and to byte-counting tools
HEAD_RULE = Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def print_table(title: str | None, columns: list[str], rows: list[list[Any]], no_wrap: int = 1) -> None:
    """A compact table for an 80-column terminal (it fits $COLUMNS when that is set, even piped):
    cells wrap at spaces and fold long tokens, so keep paths out of it and print them below. The
    first `no_wrap` columns name the row (a model) and are never wrapped or cut."""
    table = Table(title=title, title_justify="left", header_style="bold", box=HEAD_RULE, show_edge=False,
                  pad_edge=False, padding=(0, 0, 0, 2))
    for index, column in enumerate(columns):
        table.add_column(column, no_wrap=index < no_wrap, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    stdout.print(table)


def info(message: str, quiet: bool) -> None:
    """A progress note on stderr, so stdout stays clean for tables and JSON."""
    if not quiet:
        stderr.print(message)


@contextmanager
def transfer_bars(quiet: bool) -> Iterator[Callable[[str], Callable[[int, int | None], None]]]:
    """Download bars, one per file; yields `add(description)` → the `progress(done, total)` callback
    the library calls. A bar appears with the first bytes, so nothing shows when nothing is
    downloaded. Safe to use from several threads."""
    if quiet or not sys.stderr.isatty():
        yield lambda description: (lambda done, total: None)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        def add(description: str) -> Callable[[int, int | None], None]:
            task: list[Any] = []

            def progress(done: int, total: int | None) -> None:
                if not task:
                    task.append(bar.add_task(description, total=total))
                bar.update(task[0], completed=done, total=total)

            return progress

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


class _WhenCounted(ProgressColumn):
    """Show `column` only while the stage reports a count (else the stage is just a spinner)."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__()
        self.column = column

    def render(self, task: Task) -> Any:
        return self.column.render(task) if task.total is not None else Text("")


class StageDisplay:
    """`on_stage(text, done=None, total=None)`: the stage of a long step, with a bar and ETA while the
    library reports how far the stage is (NNCF calibration, synthetic weights)."""

    def __init__(self, bar: Progress | None = None, label: str = "") -> None:
        self.bar, self.label = bar, label
        self.task = bar.add_task(f"{label}: starting", total=None) if bar is not None else None
        self.stage = ""

    def __call__(self, stage: str, done: float | None = None, total: float | None = None) -> None:
        if self.bar is None:
            return
        if stage != self.stage:
            self.stage = stage
            self.bar.reset(self.task, total=total, description=f"{self.label}: {stage}")
        self.bar.update(self.task, completed=done or 0, total=total)


@contextmanager
def stage_status(label: str, quiet: bool) -> Iterator[StageDisplay]:
    """A spinner naming the current stage of a long step, with a bar and ETA when the stage is
    counted; yields the `on_stage(text, done=None, total=None)` the library calls."""
    if quiet or not sys.stderr.isatty():
        yield StageDisplay()
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), _WhenCounted(BarColumn()),
               _WhenCounted(TextColumn("{task.completed:.0f}/{task.total:.0f}")), _WhenCounted(TimeRemainingColumn()))
    with Progress(*columns, console=stderr, transient=True) as bar:
        yield StageDisplay(bar, label)


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
