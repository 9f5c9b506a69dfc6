"""Terminal output shared by the commands: tables, JSON, model selection (progress: `cli.progress`).

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
import textwrap
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from rich.box import Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

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


def inference_precision_option(default_help: str) -> Callable[[Callable], Callable]:
    """`--inference-precision f32|bf16|f16|default`, repeatable or comma-separated (diff, verify,
    benchmark): each IR precision × execution precision is its own run (`omzconv.execution`)."""
    def parse(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
        from omzconv.errors import UsageError
        from omzconv.execution import parse_inference_precisions

        try:
            return parse_inference_precisions(value)
        except UsageError as exc:
            raise click.BadParameter(str(exc).removeprefix("--inference-precision: ")) from None

    return click.option("--inference-precision", "inference_precisions", multiple=True, callback=parse,
                        metavar="f32|bf16|f16|default",
                        help="What OpenVINO computes in (repeatable or comma-separated; each is its own run, "
                             "e.g. FP32@bf16): f32 (the IR as written), bf16, f16, or default (no hint: the CPU "
                             f"plugin's choice, bf16 on CPUs with AMX or AVX512-BF16) {default_help}.")


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


def say(text: str, style: str = "", indent: int = 2) -> None:
    """A line of plain text (no markup), wrapped to the terminal with a hanging indent."""
    width = max(40, stdout.width or 80)
    lines = textwrap.wrap(text, width, initial_indent=" " * indent, subsequent_indent=" " * (indent + 2),
                          break_on_hyphens=False)
    stdout.print(Text("\n".join(lines), style=style), soft_wrap=True)


def info(message: str, quiet: bool) -> None:
    """A progress note on stderr, so stdout stays clean for tables and JSON. Plain text: a path or
    label in brackets (`[synthetic weights]`) is shown, not taken for markup."""
    if not quiet:
        stderr.print(message, markup=False)


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
