"""`omzconv info NAME`: everything the registry knows about one model, and where its files go."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from omzconv.cli import App
from omzconv.cli.list_models import model_summary
from omzconv.cli.ui import json_option, print_json, stdout, synthetic_option
from omzconv.download.security import redact


def model_info(app: App, name: str, synthetic: bool = False) -> dict:
    model = app.registry.model(name)
    data = dataclasses.asdict(model)
    data["network_params"] = dict(model.network_params)
    data["files"] = [{"name": f.name, "size": f.size if f.size is not None else "unpublished", "hash": str(f.digest) if f.digest else "unpublished", "urls": [redact(u) for u in f.urls]}
                     for f in model.files]
    workspace = app.workspace(synthetic)
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
@synthetic_option(help="Show the synthetic-weight artefacts' paths (see `--synthetic-weights` of the other commands).")
@json_option
@click.pass_obj
def command(app: App, name: str, synthetic: bool, as_json: bool) -> None:
    """Everything about one model (NAME or its Open Model Zoo alias): specs, input and outputs,
    preprocessing, published accuracy, archive, and where its files go (with --synthetic-weights:
    the synthetic-weight ones)."""
    data = model_info(app, name, synthetic)
    if as_json:
        print_json(data)
        return
    stdout.print(Text(f"{data['name']}" + (f" (Open Model Zoo: {data['alias']})" if data["alias"] else ""),
                      style="bold"))
    stdout.print(Text(data["description"]))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in info_rows(data):
        grid.add_row(key, Text(value))
    stdout.print(grid)


def _plain(value: Any) -> str:
    """A value as a person reads it: no Python syntax, nothing for None or empty."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items() if v not in (None, "", [], {}, ()))
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _shape(values: list) -> str:
    return "[" + ",".join(map(str, values)) + "]"


def info_rows(data: dict) -> list[tuple[str, str]]:
    """`omzconv info`'s lines, (key, value), from `model_info`'s dict; the value wraps on screen."""
    pre, given, converted = data["preprocessing"], data["input"], data["converted_input"]
    rows = [("tags", _plain(data["tags"]) or "-"),
            ("task", f"{data['task']} ({data['framework']}), {data['num_classes']} classes"
             + (f" (label + {data['label_offset']}: index 0 is background)" if data["label_offset"] else "")),
            ("cost", f"{data['gflops']:g} GFLOPs, {data['mparams']:g} M parameters per image"),
            ("license", f"{data['license']} {data['license_url']}".strip()),
            ("network", data["network"] + (f" ({_plain(data['network_params'])})" if data["network_params"] else "")),
            ("converts", f"the authors' frozen graph {data['frozen_graph']}" if data["source"] == "frozen_graph"
             else f"checkpoint {data['checkpoint']}")]
    for file in data["files"]:
        size = f"{file['size']:,} B" if isinstance(file["size"], int) else f"size {file['size']}"
        digest = file["hash"] if file["hash"] != "unpublished" else "hash unpublished"
        rows.append(("archive", f"{file['name']}, {size}, {digest}"))
        rows += [("", url) for url in file["urls"]]
    rows.append(("input", f"{given['name']} {_shape(given['shape'])} {given['layout']}"))
    crop = (f"central crop {pre['central_fraction']:g}, resize to {pre['size']}" if pre["recipe"] != "vgg" else
            f"resize shorter side to {pre['resize_side']}, central crop {pre['size']}")
    mean = _plain(pre["mean"]) if len(pre["mean"]) == 1 else f"({_plain(pre['mean'])})"
    scale = "" if all(v == 1 for v in pre["scale"]) else f" / {_plain(pre['scale'])}"
    normalize = f"(x − {mean}){scale}" if scale else f"x − {mean}"
    rows.append(("preprocessing", f"{pre['recipe']}: {pre['color']}, {crop}, {normalize}"))
    for index, output in enumerate(data["outputs"]):
        kind = output["kind"] + (", default" if output["default"] else "")
        rows.append(("outputs" if index == 0 else "", f"{output['name']} ({kind}): {output['description']}"))
    aliases = f" (also {_plain(converted['aliases'])})" if converted["aliases"] else ""
    rows.append(("IR input", f"{converted['name']}{aliases} {_shape([1, 3, pre['size'], pre['size']]) if converted['layout'] == 'NCHW' else _shape([1, pre['size'], pre['size'], 3])} "
                             f"{converted['layout']} {converted['color']} {converted['element_type']}"))
    for index, ref in enumerate(data["references"]):
        rows.append(("accuracy" if index == 0 else "",
                     f"top-1 {ref['top1']:g} %, top-5 {ref['top5']:g} % ({ref['source']}; output {ref['output']})"))
    known = {"name", "alias", "description", "task", "framework", "num_classes", "label_offset", "gflops", "mparams", "license",
             "license_url", "network", "network_params", "source", "frozen_graph", "checkpoint", "files", "input",
             "preprocessing", "outputs", "converted_input", "references", "tags", "paths", "status",
             "synthetic_status"}
    rows += [(key.replace("_", " "), _plain(value)) for key, value in data.items()
             if key not in known and _plain(value)]  # whatever models.yaml gains, shown plainly
    paths = data["paths"]
    rows += [(f"{key} path", _plain(value)) for key, value in paths.items()
             if key != "ir" and value and not (key == "source" and value == paths.get("checkpoint"))]
    rows += [(f"{precision} IR path", path) for precision, path in paths["ir"].items()]
    rows.append(("done", f"{_done(data['status'])}; with synthetic weights: {_done(data['synthetic_status'])}"))
    return rows


def _done(status: dict) -> str:
    if status["converted"]:
        return "IRs " + ", ".join(status["converted"])
    return "frozen" if status["frozen"] else "downloaded" if status["downloaded"] else "nothing"
