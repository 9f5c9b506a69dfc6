"""`omzconv download`: fetch and verify the checkpoint archives, then extract them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import click

from omzconv.cli import App
from omzconv.cli.progress import transfer_bars
from omzconv.cli.ui import info, models_argument, print_json, stdout
from omzconv.download.security import REQUIRE_HASH_ENV, check_hash_policy


@click.command("download", short_help="Download, verify and extract the official checkpoints.")
@models_argument
@click.option("-j", "--jobs", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Download this many models at once.")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would be fetched; fetch nothing.")
@click.option("--require-hash", is_flag=True, envvar=REQUIRE_HASH_ENV,
              help=f"Refuse archives whose hash is not published (ResNet, VGG) [env {REQUIRE_HASH_ENV}=1].")
@click.option("--json", "as_json", is_flag=True, help="Print the resulting paths as JSON.")
@click.pass_obj
def command(app: App, names: tuple[str, ...], all_models: bool, jobs: int, dry_run: bool, require_hash: bool,
            as_json: bool) -> None:
    """Download the official checkpoint archives of NAME... (or --all), verify size and hash, and
    extract them into the cache directory.

    Each URL of a model is tried in order; an interrupted download resumes where it stopped; a file
    already downloaded and verified is not fetched again. An archive whose hash is not published has
    the sha256 of what arrived recorded (and said so once); --require-hash refuses it.
    """
    from omzconv.download import dry_run_plan
    from omzconv.pipeline import obtain_checkpoint

    models = app.registry.select(names, all_models)
    for model in models:  # before anything is fetched
        check_hash_policy(model.files[0].name, model.files[0].digest is not None, require_hash)
    workspace = app.workspace()
    if dry_run:
        for model in models:
            stdout.print(dry_run_plan(model.files[0], workspace.download_dir(model)), soft_wrap=True, markup=False)
        return
    cancel = threading.Event()
    with transfer_bars(app.quiet) as add_bar, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {m.name: pool.submit(obtain_checkpoint, m, workspace, _cancellable(add_bar(m.name), cancel))
                   for m in models}
        try:
            paths = {name: future.result() for name, future in futures.items()}
        except KeyboardInterrupt:  # the workers stop within a fraction of a second, keeping their .part
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    if as_json:
        print_json({name: str(path) for name, path in paths.items()})
    else:
        for model in models:
            info(f"{model.name}: ready at {paths[model.name]}", quiet=False)


def _cancellable(progress: Callable[[int, int | None], None],
                 cancel: threading.Event) -> Callable[[int, int | None], None]:
    """The progress callback (called at least every 0.2 s during a transfer), raising in the
    download thread once Ctrl-C has set `cancel`."""
    def call(done: int, total: int | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        progress(done, total)

    return call
