"""`omzconv list`: the models, their specs, and what is already done on this machine."""

from __future__ import annotations

import click

from omzconv.cli import App
from omzconv.cli.ui import json_option, print_json, print_table
from omzconv.registry import Model


def _status_text(status: dict) -> str:
    done = [step for step in ("downloaded", "frozen") if status[step]] + list(status["converted"])
    return ", ".join(done) or "-"


def model_summary(model: Model, app: App) -> dict:
    real, synthetic = app.workspace(), app.workspace(synthetic=True)
    return {
        "name": model.name,
        "alias": model.alias,
        "framework": model.framework,
        "gflops": model.gflops,
        "mparams": model.mparams,
        "references": [{"source": r.source, "top1": r.top1, "top5": r.top5, "output": r.output}
                       for r in model.references],
        "status": real.status(model),
        "synthetic_status": synthetic.status(model),
    }


@click.command("list", short_help="The models, their specs, and what is done already.")
@json_option
@click.pass_obj
def command(app: App, as_json: bool) -> None:
    """List the models: specs, accuracy references, and what is downloaded/frozen/converted."""
    summaries = [model_summary(m, app) for m in app.registry.models]
    if as_json:
        print_json({"models": summaries, "cache_dir": str(app.cache_dir), "output_dir": str(app.output_dir)})
        return
    rows = [[s["name"], s["alias"], s["framework"], f"{s['gflops']:.3f}", f"{s['mparams']:.3f}",
             " · ".join(f"{r['top1']:g}/{r['top5']:g}" for r in s["references"]),
             _status_text(s["status"]), _status_text(s["synthetic_status"])]
            for s in summaries]
    print_table(None, ["name", "alias", "framework", "GFLOPs", "MParams", "top-1/top-5 refs", "done",
                       "synthetic"], rows)
