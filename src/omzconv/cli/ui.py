"""Terminal output shared by the commands: tables, JSON, progress bars, model selection.

Everything omzconv shows on a terminal goes through `stdout`/`stderr` here (or the error boundary in
`omzconv.cli`, which uses `clean`): control characters in file names, labels or messages never
reach the terminal, so a file named with escape sequences cannot retitle or recolour it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, SpinnerColumn, Task,
                           TaskProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.progress_bar import ProgressBar
from rich.table import Column
from rich.segment import Segment
from rich.text import Text

from omzconv.text import plural  # noqa: F401 - re-exported for the commands
from rich.table import Table

# C0 controls (ESC, BEL, CR, ...) but newline and tab, DEL, and the C1 controls (0x9b is a CSI)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """`text` safe for a terminal: every control character but newline and tab becomes `?`."""
    return CONTROL.sub("?", text)


class SafeConsole(Console):
    """A rich Console that never writes a control character it did not make itself: strings are
    cleaned before markup and layout (so widths stay right), and whatever else is rendered (Text
    objects, progress descriptions) loses its control characters; rich's own cursor and style codes
    are untouched."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(clean(text), **kwargs)

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterator[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not CONTROL.search(segment.text):
                yield segment
            else:
                yield Segment(CONTROL.sub("", segment.text), segment.style)

    def on_broken_pipe(self) -> None:
        """The reader went away (`omzconv list | head -1`): rich would exit 1 here; the CLI's error
        boundary ends the command quietly instead."""
        self.quiet = True
        raise BrokenPipeError


PIPED_WIDTH = 200  # piped output is not cut to 80 columns (use --json for machines)
stdout = SafeConsole(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
stderr = SafeConsole(stderr=True, highlight=False)


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


NAME, FIXED, TEXT = "name", "fixed", "text"  # how a column gives way when the terminal is narrow
GAP = 2  # between columns: one space of padding and HEAD_RULE's blank divider


def fit_widths(cells: list[list[str]], kinds: Sequence[str], total: int) -> list[int]:
    """Column widths (gaps not included) for a table whose rows (header first) are `cells` on a
    `total`-column terminal: FIXED columns (numbers, codes) keep their full width; TEXT columns give
    way first, down to their longest word (they wrap at spaces); then NAME columns, down to 6
    characters (they end in `…`); then TEXT columns fold words. The column with most to give first."""
    natural = [max((cell_len(row[i]) for row in cells), default=0) for i in range(len(kinds))]
    widths = list(natural)
    longest_word = [max((cell_len(w) for row in cells[1:] for w in row[i].split()), default=0)
                    for i in range(len(kinds))]
    excess = sum(widths) + GAP * (len(widths) - 1) - total
    for kind, floor in ((TEXT, lambda i: max(longest_word[i], cell_len(cells[0][i]))), (NAME, lambda i: 6),
                        (TEXT, lambda i: 6)):
        columns = [i for i, k in enumerate(kinds) if k == kind]
        while excess > 0:
            room = [(widths[i] - min(floor(i), natural[i]), i) for i in columns]
            spare, widest = max(room, default=(0, -1))
            if spare <= 0:
                break
            widths[widest] -= 1
            excess -= 1
    return widths


def print_table(title: str | None, columns: list[str], rows: list[list[Any]],
                kinds: Sequence[str] | None = None) -> None:
    """A compact table that fits the terminal ($COLUMNS when set, even piped; 80 is the design width):
    one line per row unless a TEXT column must wrap. `kinds` says per column how it gives way (see
    `fit_widths`; default: the first column a NAME, the others TEXT). Keep paths out of it and print
    them below."""
    kinds = list(kinds or [NAME] + [TEXT] * (len(columns) - 1))
    cells = [[clean(c) for c in columns]] + [[clean("" if v is None else str(v)) for v in row] for row in rows]
    widths = fit_widths(cells, kinds, stdout.width)
    table = Table(title=title, title_justify="left", header_style="bold", box=HEAD_RULE, show_edge=False,
                  pad_edge=False, padding=(0, 0, 0, GAP - 1))
    for header, kind, width in zip(cells[0], kinds, widths):
        table.add_column(header, width=width, no_wrap=kind != TEXT,
                         overflow="fold" if kind == TEXT else "ellipsis")
    for row in cells[1:]:
        table.add_row(*(Text(cell) for cell in row))  # cleaned text, never markup
    stdout.print(table)


def info(message: str, quiet: bool) -> None:
    """A progress note on stderr, so stdout stays clean for tables and JSON. Plain text: a path or
    label in brackets (`[synthetic weights]`) is shown, not taken for markup."""
    if not quiet:
        stderr.print(message, markup=False)


BAR_WIDTH = 24  # so a bar line fits 80 columns with its label, counts, rate and ETA


class _Label(ProgressColumn):
    """A bar's label: the column the line gives up first (ending in `…`) on a narrow terminal."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=False))

    def render(self, task: Task) -> Text:
        return Text(task.description, no_wrap=True, overflow="ellipsis")


@contextmanager
def transfer_bars(quiet: bool) -> Iterator[Callable[[str], Callable[[int, int | None], None]]]:
    """Download bars, one per file; yields `add(description)` → the `progress(done, total)` callback
    the library calls. A bar appears with the first bytes, so nothing shows when nothing is
    downloaded. Safe to use from several threads."""
    if quiet or not sys.stderr.isatty():
        yield lambda description: (lambda done, total: None)
        return
    columns = (_Label(), BarColumn(bar_width=BAR_WIDTH), DownloadColumn(), TransferSpeedColumn(),
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
    columns = (_Label(), BarColumn(bar_width=BAR_WIDTH), TaskProgressColumn(),
               TextColumn("{task.completed:.0f}/{task.total}"), *rate, TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task(description, total=total, rate="–")
        state = next(t for t in bar.tasks if t.id == task)

        def advance(n: float = 1) -> None:
            bar.advance(task, n)
            if state.speed:  # a moving average rich keeps
                bar.update(task, rate=f"{state.speed:.1f}")

        yield advance


def eta_text(since: float, last: float, now: float, done: float, total: float) -> str:
    """Time left, extrapolated from the steps completed between `since` and `last` (when the latest
    one completed) and counting down from there; nothing before the first step is done."""
    if done <= 0 or done >= total:
        return ""
    left = max(0, round((last - since) / done * (total - done) - (now - last)))
    hours, rest = divmod(left, 3600)
    return f"ETA {hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"ETA {rest // 60}:{rest % 60:02d}"


class _StageColumn(ProgressColumn):
    """One column for both rows of a stage display: the stage's name (ellipsized on a terminal too
    narrow for it, never wrapped), and under it, while the stage is counted, its bar, count and ETA."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=False))  # the column the grid narrows first

    def render(self, task: Task) -> Any:
        if not task.fields.get("counts"):
            return Text(task.description, no_wrap=True, overflow="ellipsis")
        eta = eta_text(task.fields["since"], task.fields["last"], time.monotonic(), task.completed, task.total or 0)
        row = Table.grid(padding=(0, 1))
        row.add_row(ProgressBar(total=task.total, completed=task.completed, width=BAR_WIDTH),
                    Text(f"{task.completed:.0f}/{task.total:.0f}", no_wrap=True), Text(eta, no_wrap=True))
        return row


class _Spinner(SpinnerColumn):
    def render(self, task: Task) -> Any:
        return Text(" ") if task.fields.get("counts") else super().render(task)


class StageDisplay:
    """`on_stage(text, done=None, total=None)`: what a long step is doing (`label · text`), and while
    the library counts (synthetic weights, NNCF calibration) a bar under it with count and ETA —
    gone as soon as an uncounted stage follows. A run of counted stages with the same total (the
    steps of generating synthetic weights) shares one bar; its ETA comes from the steps done."""

    def __init__(self, bar: Progress | None = None, label: str = "") -> None:
        self.bar, self.label = bar, label
        self.task = bar.add_task(f"{label} · starting", total=None) if bar is not None else None
        self.counter: Any = None  # the sub-bar's task id
        self.stage, self.done, self.total = "", 0.0, None

    def __call__(self, stage: str, done: float | None = None, total: float | None = None) -> None:
        if self.bar is None:
            return
        if stage != self.stage:
            self.stage = stage
            self.bar.update(self.task, description=f"{self.label} · {stage}")
        restart = total is None or total != self.total or (done or 0) < self.done
        if self.counter is not None and restart:
            self.bar.remove_task(self.counter)
            self.counter = None
        now = time.monotonic()
        if total is not None and self.counter is None:
            self.counter = self.bar.add_task("", total=total, counts=True, since=now, last=now)
        elif self.counter is not None and (done or 0) > self.done:
            self.bar.update(self.counter, last=now)
        if self.counter is not None:
            self.bar.update(self.counter, completed=done or 0)
        self.done, self.total = done or 0, total


@contextmanager
def stage_status(label: str, quiet: bool) -> Iterator[StageDisplay]:
    """A spinner naming the current stage of a long step (`label · stage`), with a bar, count and ETA
    under it while the stage is counted; yields the `on_stage(text, done=None, total=None)` the
    library calls. Fits the terminal; nothing stays on screen afterwards."""
    if quiet or not sys.stderr.isatty():
        yield StageDisplay()
        return
    with Progress(_Spinner(), _StageColumn(), console=stderr, transient=True) as bar:
        yield StageDisplay(bar, label)


SYNTHETIC_HELP = ("Use generated weights in the official checkpoint layout instead of downloading the real ones "
                  "(offline runs, tests). They recognize nothing; results are labelled synthetic and kept apart "
                  "from real ones.")


def synthetic_option(func: Callable | None = None, *, help: str = SYNTHETIC_HELP) -> Callable:
    """`--synthetic-weights` (as `synthetic`): every command that makes, uses or shows artefacts takes it."""
    option = click.option("--synthetic-weights", "synthetic", is_flag=True, help=help)
    return option(func) if func is not None else option


def human_size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
