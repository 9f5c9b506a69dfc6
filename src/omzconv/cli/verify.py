"""`omzconv verify`: the original and the converted models on ImageNet validation data, compared."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
from rich.markup import escape
from rich.text import Text

from omzconv.cli import INTERRUPTED_EXIT, App
from omzconv.errors import UsageError
from omzconv.cli.progress import stage_status, step_progress, transfer_bars
from omzconv.cli.ui import (inference_precision_option, info, ir_interface_options, json_option, models_argument,
                            print_json, stderr, stdout, synthetic_option)
from omzconv.cli.verify_output import render


@click.command("verify", short_help="Original vs converted on ImageNet val: accuracy, agreement, pass/fail.")
@models_argument
@synthetic_option
@click.option("--dataset", default="imagenet-val", show_default=True, help="Dataset named in models.yaml.")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Your copy of the dataset (Caffe val.txt, Kaggle or class-folder layout) "
                   "[env: the dataset's, OMZCONV_IMAGENET_VAL for imagenet-val].")
@click.option("-p", "--precisions", default="FP32,FP16", show_default=True,
              help="Comma-separated IR precisions to verify: FP32, FP16, INT8 (INT8: measured only on images "
                   "that did not calibrate it; quantized first from the --data-dir images if missing).")
@inference_precision_option("[default: f32, the IR as written; on a CPU whose default is not f32, FP32@default "
                            "too]")
@click.option("--no-diff", is_flag=True,
              help="Do not run `omzconv diff` on the worst images of a run that failed (default: its page is "
                   "written beside the report and linked from it).")
@click.option("--calibration-size", type=click.IntRange(min=1),
              help="Calibration images when verify has to quantize INT8 [default: 300, or a quarter of a "
                   "dataset smaller than 1,200 images]. An up-to-date INT8 IR is verified as it is.")
@click.option("--limit", type=click.IntRange(min=1), help="Verify a class-balanced subset of N images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --limit subset.")
@click.option("--strict", is_flag=True,
              help="A missing or undecodable image, or a label out of range, is an error (default: skip and count).")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report here [default: <output-dir>/reports/verify-<dataset>-<models>-<selection hash>.json].")
@click.option("--format", "report_format_", type=click.Choice(["json", "md", "html"]),
              help="json: the report as JSON with Markdown (.md) and a self-contained HTML page (.html) "
                   "beside it; md or html: only that [default: from the --report suffix, else json].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the prediction cache.")
@click.option("--executor", type=click.Choice(["in-process", "ray"]), default="in-process", show_default=True,
              help="Who runs the images: this process, or Ray workers (pip install 'omzconv[ray]'); "
                   "the report is the same either way.")
@click.option("--ray-address", metavar="ADDR",
              help="Join a running Ray cluster (auto, or ray://HOST:PORT) [default: start a local Ray instance].")
@click.option("--workers", type=click.IntRange(min=1),
              help="Ray workers, each loading the model's graph and IRs once [default: the cluster's CPUs ÷ 2, "
                   "at least 1: one TensorFlow + OpenVINO worker keeps two cores busy].")
@click.option("--ray-files", type=click.Choice(["auto", "shared", "ship"]), default="auto", show_default=True,
              help="How Ray workers get the graph, IRs and images: shared (the same paths on every node), ship "
                   "(through Ray's object store), auto (shared on a local instance; else ask each worker).")
@ir_interface_options
@json_option
@click.pass_obj
def command(app: App, names, all_models, synthetic, dataset, data_dir, precisions, inference_precisions, no_diff,
            calibration_size, limit, seed, strict, report_path, report_format_, no_cache, executor, ray_address,
            workers, ray_files, input_type, layout, as_json) -> None:
    """Run the original frozen graph (TensorFlow) and each IR (OpenVINO, CPU) of NAME... (or --all) on
    the same preprocessed ImageNet validation images and compare them. Without NAME or --all: the
    models already converted in the output directory (all models if none is).

    \b
    Reports top-1/top-5 with 95 % Wilson intervals, top-1 and top-5
    agreement and |Δ| of softmax probabilities of each IR against the
    original, and images/s. Passes when every IR keeps the original's top-1
    class on every image where the original's two best classes are more than
    a tie margin apart, and moves no probability by more than a bound
    (models.yaml `tolerances`: FP32 0.001 / 0.001, FP16 0.05 / 0.1,
    INT8 0.75 / 0.9); where accuracy means something (real weights, enough
    images) also |Δ top-1| ≤ 0.1 / 0.3 / 1.0 pp, and the published accuracy
    within 0.5 pp (all 50,000 images, official weights). Checks that do not
    apply are shown as such, with the reason. Exit code 0 when every check
    that applies passes, 1 otherwise.
    Each IR precision × --inference-precision is its own run (FP32,
    FP32@bf16, ...) with its own tolerance; the report says what this CPU
    computes f32 IRs in by default (OpenVINO), and where a failed run
    departs from the original (an `omzconv diff` page beside the report).
    Predictions are cached per artefact and image: an interrupted run
    resumes, a repeated one is free. Missing earlier stages (download,
    freeze, convert) run first. With --executor ray the images are sharded
    over Ray workers (e.g. all 50,000 on a cluster:
      omzconv verify --all --data-dir /shared/val --executor ray
        --ray-address auto).
    """
    from omzconv.convert import parse_precisions
    from omzconv.datasets import resolve_data_dir
    from omzconv.execution import cpu_default_precision, executed_precision, plan_runs
    from omzconv.verify import (VerifyInterrupted, cache_dir_for, default_report_path, ensure_artefacts,
                                evaluate_model, explain_model, make_report, partial_path, report_format,
                                select_images, with_runs, write_report)

    if executor != "ray" and (ray_address or workers or ray_files != "auto"):
        raise UsageError("--ray-address, --workers and --ray-files apply to --executor ray")
    if report_path is not None:
        report_format(report_path, report_format_)  # a mismatch is a usage error before any work
    registry = app.registry
    workspace = app.workspace(synthetic)
    models = registry.select(names, all_models) if names or all_models else _converted_models(app, workspace)
    wanted = parse_precisions(precisions, ("FP32", "FP16", "INT8"))
    spec = registry.dataset(dataset)
    root = resolve_data_dir(spec, data_dir, f"{spec.name}: verify needs the images")
    selection = select_images(spec, root, limit=limit, seed=seed, strict=strict)
    cpu_default = cpu_default_precision()
    plan = plan_runs(wanted, inference_precisions, cpu_default)  # IR precision × execution precision
    found = selection.info
    if not app.quiet:
        stderr.print(f"{spec.name}: {escape(found.found)}", soft_wrap=True)
        if found.skipped.count:
            first = found.skipped.first[0]
            stderr.print(f"[yellow]{found.skipped.count} listed images skipped[/] (first: {escape(first.path)}: "
                         f"{escape(first.reason)})", soft_wrap=True)
    if synthetic and as_json:
        stderr.print("[bold red]SYNTHETIC WEIGHTS[/]: accuracies are meaningless; only original-vs-converted "
                     "agreement means something.")
    sources = []

    def calibration():  # INT8 calibration images, read once, only if an INT8 IR has to be made
        if not sources:
            from omzconv.quantize import load_calibration_source

            sources.append(load_calibration_source(registry, spec.name, root))
        return sources[0]

    path = report_path or default_report_path(workspace, selection.info, models)
    if report_path is None and report_format_ not in (None, "json"):
        path = path.with_suffix(f".{report_format_}")
    reports, interrupted, running = [], False, None
    try:
        if executor == "ray":
            from omzconv.verify.ray_executor import RayExecutor

            with stage_status("starting Ray", app.quiet):
                running = RayExecutor(ray_address, workers, ray_files)
            info(f"Ray at {running.address}: {running.workers} worker{'s' * (running.workers > 1)}", app.quiet)
        for model in models:
            with transfer_bars(app.quiet) as add_bar, stage_status(f"verify {model.name}", app.quiet) as on_stage:
                artefacts = ensure_artefacts(model, workspace, registry, wanted, input_type=input_type,
                                             layout=layout, calibration=calibration,
                                             calibration_size=calibration_size, progress=add_bar(model.name),
                                             on_stage=on_stage)
            artefacts = with_runs(artefacts, plan, executed_precision)
            with ExitStack() as bars:
                advance = [lambda n: None]

                def on_total(total: int, name: str = model.name) -> None:
                    advance[0] = bars.enter_context(step_progress(f"verify {name}", total, app.quiet, unit="images"))

                try:
                    reports.append(evaluate_model(
                        model, artefacts, selection, registry.tolerances,
                        cache_dir=None if no_cache else cache_dir_for(workspace, model), strict=strict,
                        executor=running, on_total=on_total, on_progress=lambda n: advance[0](n)))
                except VerifyInterrupted as exc:
                    reports.append(exc.report)
                    raise
            with stage_status(f"diff {model.name}", app.quiet) as on_stage:
                reports[-1].explanations = explain_model(model, reports[-1], artefacts, path, synthetic=synthetic,
                                                         data_dir=root, diff=not no_diff, on_stage=on_stage)
    except KeyboardInterrupt:
        interrupted = True
        stderr.print("[yellow]Interrupted[/]: the result below covers the images done; run again to resume.")
    finally:
        if running is not None:
            running.close()

    report = make_report(selection, reports, synthetic, interrupted, cpu_default)
    written = write_report(report, partial_path(path) if report.interrupted else path, report_format_)
    if as_json:
        print_json(report.to_dict())
    else:
        render(report, path.parent)
    partial = " (partial: the last complete report, if any, is kept)" if report.interrupted else ""
    out = stderr if as_json else stdout
    if not (as_json and app.quiet):
        data = [str(p) for p in written if p.suffix != ".html"]
        if data:
            out.print(Text("Report" + partial + ": " + ", ".join(data)), soft_wrap=True)
        for html in (p for p in written if p.suffix == ".html"):
            out.print(Text(f"HTML report{partial if not data else ''}: {html}"), soft_wrap=True)
    click.get_current_context().exit(INTERRUPTED_EXIT if interrupted else report.exit_code)


def _converted_models(app: App, workspace) -> tuple:
    """The models converted in this output directory, else all of them; said either way. With
    real weights asked for, none converted and synthetic ones converted, a usage error: the user
    most likely forgot --synthetic-weights (verifying all would start seventeen downloads)."""
    converted = tuple(m for m in app.registry.models if workspace.status(m)["converted"])
    kind = "synthetic-weight " if workspace.synthetic else ""
    if converted:
        info(f"verifying the {kind}models converted in {workspace.output_dir}: "
             f"{', '.join(m.name for m in converted)} (name others, or pass --all)", app.quiet)
        return converted
    if not workspace.synthetic:
        synthetic = app.workspace(synthetic=True)
        others = [m.name for m in app.registry.models if synthetic.status(m)["converted"]]
        if others:
            raise UsageError(f"nothing is converted with real weights in {workspace.output_dir}, but "
                             f"synthetic-weight models are ({', '.join(others)}): add --synthetic-weights to verify "
                             "those, or name the models (or --all) to download and verify the real ones")
    info(f"nothing converted in {workspace.output_dir} yet: verifying all {len(app.registry.models)} {kind}models "
         "(name some to verify fewer)", app.quiet)
    return app.registry.models
