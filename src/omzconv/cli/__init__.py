"""The `omzconv` command: global options, the shared context, and the one error boundary.

Commands live one per module and stay thin: they parse options, call the library, and render.
TensorFlow and OpenVINO are imported only inside the library calls that need them.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import click

from omzconv import __version__
from omzconv.download.security import redact
from omzconv.errors import OmzconvError, UsageError
from omzconv.registry import MODELS_ENV, Registry, load_registry
from omzconv.workspace import CACHE_ENV, OUTPUT_ENV, Workspace, default_cache_dir, default_output_dir


@dataclass
class App:
    """What every command receives (`@click.pass_obj`)."""

    models_path: Path | None
    cache_dir: Path
    output_dir: Path
    verbose: int = 0
    quiet: bool = False

    @cached_property
    def registry(self) -> Registry:
        return load_registry(self.models_path)

    def workspace(self, synthetic: bool = False) -> Workspace:
        return Workspace(self.cache_dir, self.output_dir, synthetic=synthetic)


INTERRUPTED_EXIT = 130  # the shell's code for a Ctrl-C


class _Group(click.Group):
    """The one error boundary: omzconv's own exceptions become `Error: <message>` with exit code 1
    (2 for usage errors, as click's own), and Ctrl-C exits 130 with one line, not `Aborted!`.
    Messages lose their control characters (a file name cannot drive the terminal). A reader that
    stops early (`omzconv list | head -1`) ends the command quietly with exit code 0.

    Anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise click.UsageError(_shown(str(exc))) from None
        except OmzconvError as exc:
            raise click.ClickException(_shown(str(exc))) from None
        except click.ClickException as exc:  # click's own, e.g. a bad option value quoted back
            exc.message = _shown(exc.message)
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing half-written was kept; run the command again to resume.", err=True)
            ctx.exit(INTERRUPTED_EXIT)
        except BrokenPipeError:
            _stdout_to_devnull()
            ctx.exit(0)


def _shown(text: str) -> str:
    """`text` fit for the terminal: no URL's user:password@, no control characters."""
    from omzconv.cli.ui import clean

    return clean(redact(text))


def _stdout_to_devnull() -> None:
    """The reader of stdout has gone: what is still buffered (and Python's flush at exit) goes nowhere."""
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (e.g. captured): nothing to redirect
        pass
    finally:
        os.close(devnull)


class _CleanFormatter(logging.Formatter):
    """Log lines (warnings from the library, TensorFlow's under -v) as `_shown` as any message."""

    def format(self, record: logging.LogRecord) -> str:
        return _shown(super().format(record))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="omzconv")
@click.option("--models", "models_path", type=click.Path(path_type=Path, dir_okay=False), envvar=MODELS_ENV,
              help=f"Model registry to read [env {MODELS_ENV}; default: the models.yaml shipped with omzconv].")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False), envvar=CACHE_ENV,
              help=f"Where downloaded checkpoints go [env {CACHE_ENV}; default: the user cache dir].")
@click.option("-o", "--output-dir", type=click.Path(path_type=Path, file_okay=False), envvar=OUTPUT_ENV,
              help=f"Where frozen graphs, IRs and reports go [env {OUTPUT_ENV}; default: ./omzconv-out].")
@click.option("-v", "--verbose", count=True, help="More detail (repeat for debug logs).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final result; no progress bars.")
@click.pass_context
def main(ctx: click.Context, models_path, cache_dir, output_dir, verbose, quiet) -> None:
    """Convert TF-Slim ImageNet classifiers (Inception, MobileNet, ResNet, VGG) to OpenVINO IR,
    and prove the result computes what the original does.

    \b
    Typical use:
      omzconv list                          the models and what is already done
      omzconv convert --all                 download → freeze → convert (FP32, FP16)
      omzconv convert --tag omz             the Open Model Zoo's nine only
      omzconv verify --all --data-dir DIR   accuracy of original vs converted on ImageNet val
    Add --synthetic-weights to run everything offline on generated weights;
    verify --executor ray to shard the images over a Ray cluster.
    """
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler and not isinstance(handler.formatter, _CleanFormatter):
            handler.setFormatter(_CleanFormatter("%(levelname)s %(name)s: %(message)s"))
    if not verbose:
        _show_notices(quiet)
    from omzconv.cli.ui import fit_terminal

    fit_terminal()
    if verbose:  # TensorFlow's native log lines (oneDNN, cuInit, ...) only when asked for
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    ctx.obj = App(models_path=models_path, cache_dir=cache_dir or default_cache_dir(),
                  output_dir=output_dir or default_output_dir(), verbose=verbose, quiet=quiet)


class _NoticeHandler(logging.Handler):
    """omzconv's own INFO notices (e.g. "waited 12 s for another omzconv process") as plain lines."""

    def emit(self, record: logging.LogRecord) -> None:
        from omzconv.cli.ui import stderr

        stderr.print(self.format(record), soft_wrap=True, markup=False)


def _show_notices(quiet: bool) -> None:
    """Without -v the root logger shows warnings; omzconv's INFO notices are shown here, plainly."""
    log = logging.getLogger("omzconv")
    for handler in log.handlers[:]:
        if isinstance(handler, _NoticeHandler):
            log.removeHandler(handler)
    if quiet:
        return
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:  # basicConfig's: it would repeat the notice
            handler.setLevel(logging.WARNING)
    handler = _NoticeHandler(logging.INFO)
    handler.addFilter(lambda record: record.levelno == logging.INFO)
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def _register() -> None:
    from omzconv.cli import benchmark, convert, download, freeze, info, list_models, quantize, verify

    for module in (list_models, info, download, freeze, convert, verify, quantize, benchmark):
        main.add_command(module.command)
    from omzconv.cli import diff; main.add_command(diff.command)  # noqa: E702


_register()
