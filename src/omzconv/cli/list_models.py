"""`omzconv list`: the models, their specs, and what is already done on this machine."""

from __future__ import annotations

import click

from omzconv.cli import App
from omzconv.cli.ui import FIXED, NAME, json_option, print_json, print_table, stdout, synthetic_option
from omzconv.text import plural
from omzconv.registry import Model


SOURCE_SHORT = {"checkpoint": "ckpt", "frozen_graph": "graph"}
IR_SHORT = {"FP32": "32", "FP16": "16", "INT8": "8"}
LEGEND = "done: dl downloaded, pb frozen, 32 16 8: IRs FP32 FP16 INT8"
LEGEND_MORE = "+: also IRs with another input interface (omzconv info NAME)"


def state_token(status: dict) -> str:
    """What is done for a model, in at most 8 characters: its IRs (`32 16 8`, `+` when some have
    another input interface), else `pb` (frozen), `dl` (downloaded) or `-`."""
    irs = status["converted"]
    precisions = dict.fromkeys(name.split("-")[0] for name in irs)
    if precisions:
        return " ".join(IR_SHORT.get(p, p) for p in precisions) + ("+" if any("-" in n for n in irs) else "")
    return "pb" if status["frozen"] else "dl" if status["downloaded"] else "-"


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


@click.command("list", short_help="The models, their input and what is done already.")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only models tagged TAG (repeatable: any of them).")
@synthetic_option(help="Show what is done with synthetic weights (see `--synthetic-weights` of the other commands).")
@json_option
@click.pass_obj
def command(app: App, tags: tuple[str, ...], synthetic: bool, as_json: bool) -> None:
    """List the models, one line each: aliases (Open Model Zoo names), what omzconv starts from (a
    checkpoint or the authors' frozen graph), input size, preprocessing recipe, and what is done
    (downloaded, frozen, which IRs) — with --synthetic-weights, for the synthetic weights.
    Tags, specs and accuracy references: --json, or `omzconv info NAME`."""
    models = app.registry.select((), all_models=True, tags=tags)
    summaries = [model_summary(m, app) for m in models]
    if as_json:
        print_json({"models": summaries, "cache_dir": str(app.cache_dir), "output_dir": str(app.output_dir)})
        return
    key = "synthetic_status" if synthetic else "status"
    rows = [[s["name"], s["alias"] or "-", SOURCE_SHORT[s["source"]], s["input_size"], s["preprocessing"],
             state_token(s[key])] for s in summaries]
    print_table("Synthetic weights" if synthetic else None, ["name", "alias", "from", "in", "prep", "done"], rows,
                kinds=[NAME, NAME, NAME, FIXED, NAME, FIXED])
    tokens = [row[-1] for row in rows]
    if any(t != "-" for t in tokens):
        stdout.print(LEGEND)
    if any(t.endswith("+") for t in tokens):
        stdout.print(LEGEND_MORE)
    if not synthetic and (made := sum(state_token(s["synthetic_status"]) != "-" for s in summaries)):
        stdout.print(f"{plural(made, 'model')} also with synthetic weights: omzconv list --synthetic-weights")
