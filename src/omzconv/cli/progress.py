"""Progress on stderr for long steps: download bars, item bars, and the stage display.

Everything goes through `cli.ui.stderr` (looked up at each use), so it is cleaned like any other
terminal output and fits the terminal; nothing stays on screen afterwards (transient bars).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (BarColumn, DownloadColumn, Progress, ProgressColumn, SpinnerColumn, Task,
                           TaskProgressColumn, TextColumn, TimeRemainingColumn, TransferSpeedColumn)
from rich.progress_bar import ProgressBar
from rich.table import Column, Table
from rich.text import Text

from omzconv.cli import ui

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
    with Progress(*columns, console=ui.stderr, transient=True) as bar:
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
    with Progress(*columns, console=ui.stderr, transient=True) as bar:
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
    with Progress(_Spinner(), _StageColumn(), console=ui.stderr, transient=True) as bar:
        yield StageDisplay(bar, label)
