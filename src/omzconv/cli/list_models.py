"""`omzconv list`: the models, their specs, and what is already done on this machine."""

from __future__ import annotations

import click

from omzconv.cli import App
from omzconv.cli.ui import json_option, print_json, print_table, stdout
from omzconv.registry import Model


SOURCE_SHORT = {"checkpoint": "ckpt", "frozen_graph": "graph"}


STEP_SHORT = {"downloaded": "dl", "frozen": "pb"}  # the table's legend says what they mean


def _status_text(status: dict) -> str:
    done = [short for step, short in STEP_SHORT.items() if status[step]] + list(status["converted"])
    return " ".join(done) or "-"


def _done_text(real: dict, synthetic: dict) -> str:
    text = _status_text(real)
    if (synthetic_text := _status_text(synthetic)) != "-":
        text = f"{text}; syn: {synthetic_text}" if text != "-" else f"syn: {synthetic_text}"
    return text


def model_summary(model: Model, app: App) -> dict:
    real, synthetic = app.workspace(), app.workspace(synthetic=True)
    return {
        "name": model.name,
        "alias": model.alias,
        "framework": model.framework,
        "tags": list(model.tags),
        "source": model.source,
        "input_size": model.size,
        "preprocessing": model.preprocessing.recipe,
        "num_classes": model.num_classes,
        "gflops": model.gflops,
        "mparams": model.mparams,
        "references": [{"source": r.source, "top1": r.top1, "top5": r.top5, "output": r.output}
                       for r in model.references],
        "status": real.status(model),
        "synthetic_status": synthetic.status(model),
    }


@click.command("list", short_help="The models, their specs, and what is done already.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only models tagged TAG (repeatable: any of them).")
@json_option
@click.pass_obj
def command(app: App, tags: tuple[str, ...], as_json: bool) -> None:
    """List the models: aliases (Open Model Zoo names), what omzconv starts from (a checkpoint or the
    authors' frozen graph), input size, preprocessing recipe, and what is downloaded/frozen/converted
    (real and synthetic weights). Tags (for --tag), specs and accuracy references: --json, or `omzconv info NAME`."""
    models = app.registry.select((), all_models=True, tags=tags)
    summaries = [model_summary(m, app) for m in models]
    if as_json:
        print_json({"models": summaries, "cache_dir": str(app.cache_dir), "output_dir": str(app.output_dir)})
        return
    rows = [[s["name"], s["alias"] or "-", SOURCE_SHORT[s["source"]], s["input_size"], s["preprocessing"],
             _done_text(s["status"], s["synthetic_status"])]
            for s in summaries]
    print_table(None, ["name", "alias", "from", "in", "prep", "done"], rows, no_wrap=5)  # only "done" wraps
    if any(s["status"]["downloaded"] or s["synthetic_status"]["downloaded"] for s in summaries):
        stdout.print("done: dl downloaded, pb frozen, then the IRs; syn: with synthetic weights")
