"""`omzconv verify`: the original and the converted models on ImageNet validation data, compared."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click
from rich.markup import escape

from omzconv.cli import INTERRUPTED_EXIT, App
from omzconv.errors import UsageError
from omzconv.cli.ui import (HEAD_RULE, info, ir_interface_options, json_option, models_argument, print_json,
                            stage_status, stderr, stdout, step_progress, synthetic_option, transfer_bars)


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
@click.option("--calibration-size", type=click.IntRange(min=1),
              help="Calibration images when verify has to quantize INT8 [default: 300, or a quarter of a "
                   "dataset smaller than 1,200 images]. An up-to-date INT8 IR is verified as it is.")
@click.option("--limit", type=click.IntRange(min=1), help="Verify a class-balanced subset of N images.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --limit subset.")
@click.option("--strict", is_flag=True,
              help="A missing or undecodable image, or a label out of range, is an error (default: skip and count).")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report here [default: <output-dir>/reports/verify-<dataset>-<models>-<selection hash>.json].")
@click.option("--format", "report_format", type=click.Choice(["json", "md", "html"]),
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
def command(app: App, names, all_models, synthetic, dataset, data_dir, precisions, calibration_size, limit, seed,
            strict, report_path, report_format, no_cache, executor, ray_address, workers, ray_files, input_type,
            layout, as_json) -> None:
    """Run the original frozen graph (TensorFlow) and each IR (OpenVINO, CPU) of NAME... (or --all) on
    the same preprocessed ImageNet validation images and compare them. Without NAME or --all: the
    models already converted in the output directory (all models if none is).

    \b
    Reports top-1/top-5 with 95 % Wilson intervals, top-1 and top-5 agreement and |Δ| of softmax
    probabilities of each IR against the original, and images/s. Passes when, for every IR,
      FP32: |Δ top-1| ≤ 0.1 pp and top-1 agreement ≥ 99.9 %;  FP16: |Δ top-1| ≤ 0.3 pp;
      INT8: |Δ top-1| ≤ 1.0 pp (reported, not enforced, on synthetic weights)
    (models.yaml `tolerances`), and the published accuracy is met within 0.5 pp where it applies
    (all 50,000 images, official weights). Exit code 0 when every check passes, 1 otherwise.
    Predictions are cached per artefact and image: an interrupted run resumes, a repeated one is free.
    Missing earlier stages (download, freeze, convert) run first.
    With --executor ray the images are sharded over Ray workers (e.g. all 50,000 on a cluster:
      omzconv verify --all --data-dir /shared/val --executor ray --ray-address auto).
    """
    from omzconv.convert import parse_precisions
    from omzconv.datasets import resolve_data_dir
    from omzconv.verify import (VerifyInterrupted, cache_dir_for, default_report_path, ensure_artefacts,
                                evaluate_model, make_report, partial_path, select_images, write_report)

    if executor != "ray" and (ray_address or workers or ray_files != "auto"):
        raise UsageError("--ray-address, --workers and --ray-files apply to --executor ray")
    registry = app.registry
    workspace = app.workspace(synthetic)
    models = registry.select(names, all_models) if names or all_models else _converted_models(app, workspace)
    wanted = parse_precisions(precisions, ("FP32", "FP16", "INT8"))
    spec = registry.dataset(dataset)
    root = resolve_data_dir(spec, data_dir, f"{spec.name}: verify needs the images")
    selection = select_images(spec, root, limit=limit, seed=seed, strict=strict)
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
    except KeyboardInterrupt:
        interrupted = True
        stderr.print("[yellow]Interrupted[/]: the result below covers the images done; run again to resume.")
    finally:
        if running is not None:
            running.close()

    report = make_report(selection, reports, synthetic, interrupted)
    path = report_path or default_report_path(workspace, selection.info, models)
    written = write_report(report, partial_path(path) if report.interrupted else path, report_format)
    if as_json:
        print_json(report.to_dict())
    else:
        render(report)
        partial = " (partial: the last complete report, if any, is kept)" if report.interrupted else ""
        data = [str(p) for p in written if p.suffix != ".html"]
        if data:
            stdout.print("Report" + partial + ": " + ", ".join(data), soft_wrap=True)
    html = next((p for p in written if p.suffix == ".html"), None)
    if html is not None and written != [html] and not (as_json and app.quiet):
        (stderr if as_json else stdout).print(f"HTML report: {escape(str(html))}", soft_wrap=True)
    click.get_current_context().exit(INTERRUPTED_EXIT if interrupted else report.exit_code)


def _converted_models(app: App, workspace) -> tuple:
    """The models converted in this output directory, else all of them; said either way."""
    converted = tuple(m for m in app.registry.models if workspace.status(m)["converted"])
    if converted:
        info(f"verifying the models converted in {workspace.output_dir}: {', '.join(m.name for m in converted)} "
             "(name others, or pass --all)", app.quiet)
        return converted
    info(f"nothing converted in {workspace.output_dir} yet: verifying all {len(app.registry.models)} models "
         "(name some to verify fewer)", app.quiet)
    return app.registry.models


def render(report) -> None:
    """One small table per model, a row per run, sized for an 80-column terminal (the JSON and the
    report files hold the rest: top-5 agreement, mean |Δp|, top-5 intervals, timings)."""
    from rich.table import Table

    from omzconv.verify import (ORIGINAL, accuracy_text, check_text, comparison_text, excluded_text, execution_text,
                                percent, reference_text)

    d = report.dataset
    subset = f" (subset, seed {d.seed})" if d.limit else ""
    stdout.print(f"[bold]Verify on {d.name}[/]: {d.selected:,} images{subset}", soft_wrap=True)
    if report.synthetic:
        stdout.print("[bold white on red] SYNTHETIC WEIGHTS [/] accuracy figures are meaningless; "
                     "only the agreement between original and converted means something.")
    for m in report.models:
        comparisons = {c.precision: c for c in m.comparisons if c.reference == ORIGINAL}
        verdict = "[green]PASSED[/]" if m.passed else "[yellow]INTERRUPTED[/]" if m.interrupted else "[red]FAILED[/]"
        table = Table(title=f"{m.model}: {verdict}, {m.images:,} images compared, {m.weights} weights",
                      title_justify="left", header_style="bold", box=HEAD_RULE, show_edge=False,
                      pad_edge=False, padding=(0, 0, 0, 2))
        for column in ("run", "run\nnow", "cached", "top-1 %\n(95 % CI)", "top-5\n%", "same\ntop-1 %",
                       "max\n|Δp|", "img/s"):
            table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
        for r in m.runs:
            c = comparisons.get(r.name)
            speed = "cached" if r.images_per_second is None and r.cached else (
                "–" if r.images_per_second is None else f"{r.images_per_second:.1f}")
            table.add_row(r.name, f"{r.inferred:,}", f"{r.cached:,}", accuracy_text(r.top1, 1, unit=""),
                          "–" if r.top5.value is None else f"{r.top5.value * 100:.1f}",
                          percent(c.top1_agreement, 1, unit="") if c else "",
                          f"{c.max_abs_prob_delta:.1e}" if c and c.max_abs_prob_delta is not None else "", speed)
        stdout.print(table)
        stdout.print(f"  output {escape(m.output)} ({m.output_kind})")
        if m.execution is not None and m.execution.executor != "in-process":
            stdout.print(f"  {escape(execution_text(m.execution))}", soft_wrap=True)
        if m.skipped.count:
            first = m.skipped.first[0]
            stdout.print(f"  {m.skipped.count} images skipped (first: {escape(first.path)}: {escape(first.reason)})",
                         soft_wrap=True)
        for check in m.checks:
            style = "green" if check.status == "passed" else "yellow" if check.waived else "bold red"
            stdout.print(f"  [{style}]{escape(check_text(check))}[/]")
        for r in m.runs:
            if r.excluded:
                stdout.print(f"  {escape(excluded_text(r))}")
        for c in m.comparisons:
            if c.reference != ORIGINAL:
                stdout.print(f"  {escape(comparison_text(c))}")
        for ref in m.references:
            stdout.print(f"  {'' if ref.applied else '[dim]'}reference: {escape(reference_text(ref))}"
                         f"{'' if ref.applied else '[/]'}")
    if d.skipped.count:
        stdout.print(f"{d.skipped.count} listed images skipped (missing or label out of range), first: "
                     + "; ".join(f"{p.path} ({p.reason})" for p in d.skipped.first), soft_wrap=True)
    verdict = ("[yellow]INTERRUPTED[/]" if report.interrupted else
               "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]")
    stdout.print(f"Result: {verdict}")
