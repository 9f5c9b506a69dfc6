"""`omzconv quantize`: FP32 IR → INT8 IR (NNCF post-training quantization on real images)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import click

from omzconv.cli import App
from omzconv.cli.progress import stage_status, transfer_bars
from omzconv.cli.ui import (FIXED, NAME, TEXT, human_size, info, ir_interface_options, models_argument, print_json,
                            print_table, stdout, synthetic_option)
from omzconv.quantize import (CALIBRATION_SEED, CALIBRATION_SIZE, CHECK_IMAGES, DEFAULT_DATASET,
                              VALIDATION_SIZE)


def calibration_options(func: Callable) -> Callable:
    """The options that say where INT8 calibration images come from (shared with `convert`)."""
    options = [
        click.option("--dataset", default=DEFAULT_DATASET, show_default=True,
                     help="Dataset (from models.yaml) the calibration images are drawn from."),
        click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
                     help="Where that dataset is (any of the layouts `omzconv verify` reads) "
                          "[env: the dataset's variable, OMZCONV_IMAGENET_VAL for imagenet-val]."),
        click.option("--calibration-size", type=click.IntRange(min=1),
                     help=f"Calibration images: class-balanced, seeded, never evaluated on [default: "
                          f"{CALIBRATION_SIZE}, or a quarter of a dataset smaller than {4 * CALIBRATION_SIZE:,} "
                          "images]."),
        click.option("--seed", type=int, default=CALIBRATION_SEED, show_default=True,
                     help="Seed of the calibration subset."),
        click.option("--max-drop", type=click.FloatRange(min=0), default=None,
                     help="Keep the top-1 drop on held-out images within this many percentage points "
                          "(NNCF accuracy control; reverts the most harmful layers to float)."),
        click.option("--validation-size", type=click.IntRange(min=1), default=VALIDATION_SIZE,
                     show_default=True, help="Held-out images for --max-drop."),
        click.option("--check-images", type=click.IntRange(min=0), default=CHECK_IMAGES, show_default=True,
                     help="Held-out images on which INT8 top-1 agreement with FP32 is reported (0: none)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def quantize_models(app: App, models, synthetic: bool, *, dataset: str, data_dir: Path | None,
                    calibration_size: int | None, seed: int, max_drop: float | None, validation_size: int,
                    check_images: int, force: bool, source=None, input_type: str | None = None,
                    layout: str | None = None) -> list:
    """Quantize each model (its FP32 IR first if missing); shared by `quantize` and `convert -p INT8`."""
    from omzconv.quantize import ensure_quantized, load_calibration_source

    source = source or load_calibration_source(app.registry, dataset, data_dir)
    info(f"calibration images from {source.description}", app.quiet)
    workspace = app.workspace(synthetic)
    results = []
    for model in models:
        with transfer_bars(app.quiet) as add_bar, stage_status(model.name, app.quiet) as on_stage:
            results.append(ensure_quantized(
                model, workspace, app.registry, source, input_type=input_type, layout=layout,
                progress=add_bar(model.name), on_stage=on_stage, calibration_size=calibration_size,
                seed=seed, max_drop=max_drop, validation_size=validation_size, check_images=check_images,
                force=force, show_progress=app.verbose > 0))
    return results


def result_json(result, synthetic: bool) -> dict:
    return {**asdict(result), "synthetic": synthetic}


def render(results, synthetic: bool) -> None:
    rows = []
    for r in results:
        agreement = "" if r.check is None else (
            f"{round(r.check.agreement * r.check.images)}/{r.check.images} ({r.check.agreement:.0%})")
        rows.append([r.model, r.path.parent.name, human_size(r.size), "up to date" if r.skipped else f"{r.seconds:.1f} s",
                     f"{r.calibration.size}, seed {r.calibration.seed}", agreement])
    title = "Quantized (synthetic weights: agreement says nothing about real INT8)" if synthetic else "Quantized"
    print_table(title, ["model", "IR", "size", "time", "calibration", "top-1 = FP32"], rows,
                kinds=[NAME, FIXED, FIXED, FIXED, TEXT, TEXT])
    for r in results:
        if a := r.accuracy_control:
            stdout.print(f"{r.model}: accuracy control: top-1 {a.top1_fp32:.1f} → {a.top1_int8:.1f} %, drop "
                         f"{a.drop_pp:.2f} pp on {a.images} held-out images ({'within' if a.met else 'NOT within'} "
                         f"{a.max_drop_pp:g} pp)")
            if a.reverted is not None:
                stdout.print(f"{r.model}: NNCF reverted {len(a.reverted)} of {a.quantized_ops or '?'} quantized ops to "
                             f"float{': ' + ', '.join(a.reverted) if a.reverted else ''} (`omzconv diff {r.model} -p "
                             "INT8` ranks them among the layers)", soft_wrap=True)
        stdout.print(f"{r.model} {r.path.parent.name}: {r.path}", soft_wrap=True)


@click.command("quantize", short_help="FP32 IR → INT8 IR (NNCF post-training quantization on real images).")
@models_argument
@synthetic_option
@calibration_options
@ir_interface_options
@click.option("-f", "--force", is_flag=True, help="Quantize again even if the INT8 IR is up to date.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_obj
def command(app: App, names, all_models, synthetic, dataset, data_dir, calibration_size, seed, max_drop,
            validation_size, check_images, input_type, layout, force, as_json) -> None:
    """Quantize NAME... (or --all) to <output-dir>/<name>/INT8/<name>.xml with NNCF.

    \b
    Calibration uses --calibration-size real images drawn class-balanced and seeded from the dataset;
    every other image is held out (the list is recorded in the IR's omzconv.json: evaluate INT8 only
    on the other images). Images are prepared exactly as for verify.
    The FP32 IR is converted first if missing. Re-runs skip when the INT8 IR is up to date.
    With --synthetic-weights the calibration images are still real; the results are labelled synthetic.
    """
    models = app.registry.select(names, all_models)
    results = quantize_models(app, models, synthetic, dataset=dataset, data_dir=data_dir,
                              calibration_size=calibration_size, seed=seed, max_drop=max_drop,
                              validation_size=validation_size, check_images=check_images, force=force,
                              input_type=input_type, layout=layout)
    if as_json:
        print_json([result_json(r, synthetic) for r in results])
        return
    render(results, synthetic)
