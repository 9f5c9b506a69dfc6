"""`omzconv info NAME`: everything the registry knows about one model, and where its files go."""

from __future__ import annotations

import dataclasses

import click

from omzconv.cli import App
from omzconv.cli.list_models import model_summary
from omzconv.cli.ui import json_option, print_json, stdout
from omzconv.download.security import redact


def model_info(app: App, name: str) -> dict:
    model = app.registry.model(name)
    data = dataclasses.asdict(model)
    data["network_params"] = dict(model.network_params)
    data["files"] = [{"name": f.name, "size": f.size if f.size is not None else "unpublished", "hash": str(f.digest) if f.digest else "unpublished", "urls": [redact(u) for u in f.urls]}
                     for f in model.files]
    workspace = app.workspace()
    data["paths"] = {
        "archive": str(workspace.archive_path(model)),
        "checkpoint": str(workspace.checkpoint_path(model)) if model.checkpoint else None,
        "source": str(workspace.source_path(model)),
        "frozen": str(workspace.frozen_path(model)),
        "ir": {p: str(workspace.ir_path(model, p)) for p in ("FP32", "FP16", "INT8")},
    }
    summary = model_summary(model, app)
    data["status"], data["synthetic_status"] = summary["status"], summary["synthetic_status"]
    return data


@click.command("info", short_help="Everything about one model.")
@click.argument("name")
@json_option
@click.pass_obj
def command(app: App, name: str, as_json: bool) -> None:
    """Everything about one model (NAME or its Open Model Zoo alias)."""
    data = model_info(app, name)
    if as_json:
        print_json(data)
        return
    _render(data)


def _render(data: dict, indent: int = 0) -> None:
    pad = "  " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            stdout.print(f"{pad}[bold]{key}[/]:")
            _render(value, indent + 1)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            stdout.print(f"{pad}[bold]{key}[/]:")
            for item in value:
                first, *rest = item.items()
                stdout.print(f"{pad}  - {first[0]}: {first[1]}")
                _render(dict(rest), indent + 2)
        elif isinstance(value, (list, tuple)):
            stdout.print(f"{pad}[bold]{key}[/]: {', '.join(map(str, value)) or '-'}")
        else:
            stdout.print(f"{pad}[bold]{key}[/]: {value}", soft_wrap=True)
