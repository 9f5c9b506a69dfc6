"""`omzconv convert`: frozen graph → OpenVINO IR (runs the earlier stages that are missing)."""

from __future__ import annotations

import time
from dataclasses import asdict

import click

from omzconv.cli import App
from omzconv.cli.progress import stage_status, transfer_bars
from omzconv.cli.ui import (FIXED, NAME, TEXT, human_size, info, ir_interface_options, models_argument, print_json,
                            print_table, say, stdout, synthetic_option)
from omzconv.text import plural
from omzconv.cli.quantize import calibration_options, quantize_models, render, result_json


@click.command("convert", short_help="Frozen graph → OpenVINO IR (FP32, FP16, INT8), self-checked against TensorFlow.")
@models_argument
@synthetic_option
@click.option("-p", "--precisions", default="FP32,FP16", show_default=True,
              help="Comma-separated precisions to write: FP32, FP16, INT8 (INT8 needs --data-dir).")
@ir_interface_options
@click.option("--no-check", is_flag=True, help="Skip the self-check against the frozen graph.")
@click.option("-f", "--force", is_flag=True, help="Convert again even if the IR is up to date.")
@click.option("-n", "--dry-run", is_flag=True, help="Print what would be done; do nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--keep-precision", "keep_precision", metavar="auto|LAYER,…|none",
              help="FP16: keep layers in f32 — `auto`: the fewest of `omzconv diff`'s top-ranked layers that bring "
                   "held-out images within the FP16 tolerance; or TensorFlow layer names as `diff` reports them; "
                   "`none`: a plain FP16 IR. Not given: an FP16 IR repaired earlier is kept so (or redone so).")
@click.option("--repair-images", type=click.IntRange(min=1), default=8, show_default=True,
              help="--keep-precision: images diff ranks the layers on (--data-dir's, else procedural).")
@click.option("--held-out-images", type=click.IntRange(min=1), default=16, show_default=True,
              help="--keep-precision: other images the result is judged on.")
@click.option("--speed-seconds", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="--keep-precision: seconds per timed loop comparing the IR's speed with the plain FP16 IR's (0: skip).")
@calibration_options
@click.pass_obj
def command(app: App, names, all_models, synthetic, precisions, input_type, layout, no_check, force,
            dry_run, as_json, keep_precision, repair_images, held_out_images, speed_seconds, **calibration) -> None:
    """Convert NAME... (or --all) to OpenVINO IR in <output-dir>/<name>/<PRECISION>/<name>.xml.

    \b
    The IR takes NCHW [1,3,S,S] BGR pixels in 0..255 (f32); it reverses the channels and applies
    the model's mean and scale itself. Missing earlier stages (download, freeze) run first. Each IR
    is checked against the frozen graph in TensorFlow before it is put in place:
      FP32: max |Δ| of softmax probabilities ≤ 1e-4;  FP16: same top-1 class
      (tolerances in models.yaml).
    INT8 is quantized from the FP32 IR on real calibration images (see `omzconv quantize --help`).
    With --keep-precision the FP16 IR keeps the chosen layers' weights (and ops) in f32; it stays
    in <output-dir>/<name>/FP16/, its omzconv.json says what was kept and why.
    """
    from omzconv.convert import parse_precisions
    from omzconv.errors import UsageError
    from omzconv.pipeline import ensure_converted
    from omzconv.repair import NONE, RepairSettings, parse_keep
    from omzconv.workspace import ir_variant

    models = app.registry.select(names, all_models)
    wanted = parse_precisions(precisions, ("FP32", "FP16", "INT8"))
    keep = parse_keep(keep_precision)
    if keep not in (None, NONE) and "FP16" not in wanted:
        raise UsageError("--keep-precision applies to the FP16 IR; add FP16 to -p")
    repair = RepairSettings(None, repair_images, held_out_images, speed_seconds=speed_seconds)
    if keep not in (None, NONE) and keep.mode == "auto" and calibration["data_dir"] is not None:
        from omzconv.quantize import load_calibration_source

        repair = RepairSettings(load_calibration_source(app.registry, calibration["dataset"], calibration["data_dir"]),
                                repair_images, held_out_images, speed_seconds=speed_seconds)
    calibration_source = None
    if "INT8" in wanted:  # made from FP32; a missing dataset fails here, before any work
        from omzconv.quantize import load_calibration_source

        calibration_source = load_calibration_source(app.registry, calibration["dataset"], calibration["data_dir"])
        wanted = tuple(dict.fromkeys(p for p in ("FP32", *wanted) if p != "INT8"))
    workspace = app.workspace(synthetic)
    if dry_run:
        for model in models:
            for precision in wanted + (("INT8",) if calibration_source else ()):
                ir = workspace.ir_path(model, precision, ir_variant(model, input_type, layout))
                state = "exists (will be checked for staleness)" if ir.is_file() else "to convert"
                frozen = workspace.frozen_path(model)
                source = frozen if frozen.is_file() else "freeze first"
                stdout.print(f"{model.name} {precision}: {ir} — {state}; source: {source}", soft_wrap=True)
        return
    results = []
    for number, model in enumerate(models, 1):
        started, done = time.perf_counter(), []
        with transfer_bars(app.quiet) as add_bar, stage_status(model.name, app.quiet) as on_stage:
            for precision in wanted:
                done.append(ensure_converted(
                    model, workspace, app.registry, precision, input_type=input_type, layout=layout,
                    check=not no_check, force=force, progress=add_bar(model.name), on_stage=on_stage,
                    keep=keep, repair=repair))
        results += done
        info(finished_line(model.name, done, time.perf_counter() - started, number, len(models)),
             app.quiet or as_json)
    quantized = (quantize_models(app, models, synthetic, force=force, source=calibration_source,
                                 input_type=input_type, layout=layout, **calibration)
                 if calibration_source else [])
    if as_json:
        print_json([{**asdict(r), "synthetic": synthetic} for r in results]
                   + [result_json(r, synthetic) for r in quantized])
        return
    render_converted(results, synthetic)
    if quantized:
        render(quantized, synthetic)


def finished_line(name: str, results: list, seconds: float, number: int, count: int) -> str:
    """`[3/17] inception_v1: FP32 converted, FP16 up to date (52 s)`: a model is done, as it happens."""
    irs = ", ".join(f"{r.path.parent.name} {'up to date' if r.skipped else 'converted'}" for r in results)
    return f"[{number}/{count}] {name}: {irs} ({seconds:.0f} s)"


def render_converted(results, synthetic: bool) -> None:
    rows = []
    for r in results:
        check = "skipped" if r.check is None else (
            f"max |Δp| {r.check.max_prob_delta:.1e}, top-1 {r.check.top1_agreement:.0%}"
            + (f" ({plural(r.check.ties, 'near-tie')})" if r.check.ties else ""))
        rows.append([r.model, r.path.parent.name, human_size(r.size),
                     "up to date" if r.skipped else f"{r.seconds:.1f} s", check])
    title = "Converted (synthetic weights)" if synthetic else "Converted"
    print_table(title, ["model", "IR", "size", "time", "self-check"], rows, kinds=[NAME, FIXED, FIXED, FIXED, TEXT])
    from omzconv.repair import kept_lines

    for r in results:
        stdout.print(f"{r.model} {r.path.parent.name}: {r.path}", soft_wrap=True)
        if r.kept:
            for line in kept_lines(r.kept, earlier=r.skipped):
                say(line)
