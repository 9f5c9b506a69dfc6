"""`omzconv download`: fetch and verify the checkpoint archives, then extract them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import click

from omzconv.cli import App
from omzconv.cli.ui import info, models_argument, print_json, stdout, transfer_bars


@click.command("download", short_help="Download, verify and extract the official checkpoints.")
@models_argument
@click.option("-j", "--jobs", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Download this many models at once.")
@click.option("-n", "--dry-run", is_flag=True, help="Say what would be fetched; fetch nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the resulting paths as JSON.")
@click.pass_obj
def command(app: App, names: tuple[str, ...], all_models: bool, jobs: int, dry_run: bool, as_json: bool) -> None:
    """Download the official checkpoint archives of NAME... (or --all), verify size and hash, and
    extract them into the cache directory.

    Each URL of a model is tried in order; an interrupted download resumes where it stopped; a file
    already downloaded and verified is not fetched again.
    """
    from omzconv.download import dry_run_plan
    from omzconv.pipeline import obtain_checkpoint

    models = app.registry.select(names, all_models)
    workspace = app.workspace()
    if dry_run:
        for model in models:
            stdout.print(dry_run_plan(model.files[0], workspace.download_dir(model)), soft_wrap=True)
        return
    cancel = threading.Event()
    with transfer_bars(app.quiet) as add_bar, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {m.name: pool.submit(obtain_checkpoint, m, workspace, _cancellable(add_bar(m.name), cancel))
                   for m in models}
        try:
            paths = {name: future.result() for name, future in futures.items()}
        except KeyboardInterrupt:  # the workers stop at their next chunk, keeping their .part to resume
            cancel.set()
            raise
    if as_json:
        print_json({name: str(path) for name, path in paths.items()})
    else:
        for model in models:
            info(f"{model.name}: ready at {paths[model.name]}", quiet=False)
    from omzconv.download import recorded_digest

    for model in models:
        if model.files[0].digest is None:
            archive = workspace.archive_path(model)
            info(f"{model.name}: no hash is published for {archive.name}; checked its size only if published, "
                 f"recorded {recorded_digest(archive)} at download and checks it from now on", quiet=app.quiet or as_json)


def _cancellable(progress: Callable[[int, int | None], None],
                 cancel: threading.Event) -> Callable[[int, int | None], None]:
    """The progress callback, raising in the download thread once Ctrl-C has set `cancel`."""
    def call(done: int, total: int | None) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        progress(done, total)

    return call
