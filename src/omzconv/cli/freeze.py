"""`omzconv freeze`: checkpoint → TensorFlow frozen graph."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from omzconv.cli import App
from omzconv.cli.progress import stage_status, transfer_bars
from omzconv.cli.ui import human_size, info, models_argument, print_json, synthetic_option
from omzconv.errors import UsageError


@click.command("freeze", short_help="Checkpoint → TensorFlow frozen graph.")
@models_argument
@synthetic_option
@click.option("--checkpoint", type=click.Path(path_type=Path, dir_okay=False),
              help="Freeze this checkpoint (V1 file or V2 prefix/.index) instead of the downloaded one; "
                   "needs exactly one model.")
@click.option("--output", "outputs", multiple=True, metavar="NODE",
              help="Freeze to this output node instead of the model's default (repeatable), e.g. "
                   "InceptionResnetV2/AuxLogits/Logits/BiasAdd for the Open Model Zoo's cut.")
@click.option("--slim-dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Build the network from an upstream tensorflow/models research/slim checkout "
                   "instead of omzconv's own definitions (see README).")
@click.option("-f", "--force", is_flag=True, help="Freeze again even if the frozen graph is up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def command(app: App, names, all_models, synthetic, checkpoint, outputs, slim_dir, force, as_json) -> None:
    """Freeze NAME... (or --all) into <output-dir>/<name>/<name>.frozen.pb.

    Downloads the checkpoint first if needed. Restores exactly the network's variables (extra ones
    in the checkpoint are ignored; missing or mis-shaped ones are named). A graph that is up to date
    (same checkpoint, outputs and omzconv version) is not frozen again.
    """
    from omzconv.pipeline import ensure_frozen

    models = app.registry.select(names, all_models)
    if checkpoint and len(models) != 1:
        raise UsageError("--checkpoint needs exactly one model")
    if checkpoint and synthetic:
        raise UsageError("--checkpoint and --synthetic-weights exclude each other")
    workspace = app.workspace(synthetic)
    results = []
    for model in models:
        with transfer_bars(app.quiet) as add_bar, stage_status(model.name, app.quiet) as on_stage:
            result = ensure_frozen(model, workspace, outputs=outputs or None, checkpoint=checkpoint,
                                   slim_dir=slim_dir, force=force, progress=add_bar(model.name),
                                   on_stage=on_stage)
        results.append(result)
        if not as_json:
            label = " [synthetic weights]" if result.weights == "synthetic" else ""
            if result.skipped:
                info(f"{model.name}: up to date, {result.path}{label}", quiet=app.quiet)
            else:
                info(f"{model.name}: frozen in {result.seconds:.1f} s, {human_size(result.size)}, "
                     f"{result.nodes} nodes → {result.path}{label}", quiet=False)
    if as_json:
        print_json([asdict(r) for r in results])
