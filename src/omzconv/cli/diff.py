"""`omzconv diff`: where the converted model departs from the original, layer by layer."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from omzconv.cli import App
from omzconv.cli.progress import stage_status, step_progress
from omzconv.cli.ui import (inference_precision_option, ir_interface_options, json_option, print_json, print_table,
                            stdout, synthetic_option)


@click.command("diff", short_help="Original vs IR layer by layer: where the conversion diverges.")
@click.argument("name")
@synthetic_option
@click.option("-p", "--precisions", default="FP32", show_default=True,
              help="IR precisions to compare (comma-separated: FP32, FP16, INT8).")
@inference_precision_option("[default: f32]")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Compare on images of this ImageNet validation copy [default: procedural images].")
@click.option("--images", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many images (a class-balanced subset with --data-dir).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --data-dir subset.")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True), default=0.01, show_default=True,
              help="Relative error ‖a−b‖/‖a‖ above which a layer has diverged.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the HTML page here [default: <output-dir>/reports/diff-<name>.html].")
@ir_interface_options
@json_option
@click.pass_obj
def command(app: App, name, synthetic, precisions, inference_precisions, data_dir, images, seed, threshold,
            report_path, input_type, layout, as_json) -> None:
    """Run the original frozen graph (TensorFlow) and the IR of NAME (OpenVINO) on the same images with
    every layer as an output, and compare them layer by layer: relative error, cosine similarity and
    max |Δ| per layer, the first layer whose error exceeds --threshold, and the layers that add the
    most error (their error ÷ their inputs' error).

    Layers are matched by graph structure (the IR keeps TensorFlow's names only on its input and
    outputs); the page says how many matched and why the others did not.

    \b
    Example:
      omzconv diff inception_v4 -p FP16 --inference-precision default
    """
    from omzconv.convert import parse_precisions
    from omzconv.diff import diff_model, to_dict
    from omzconv.fileutil import write_bytes_atomic

    model = app.registry.model(name)
    wanted = parse_precisions(precisions, ("FP32", "FP16", "INT8"))
    chosen = inference_precisions or ("f32",)
    workspace = app.workspace(synthetic)
    runs = len(wanted) * len(chosen)
    with stage_status(f"diff {model.name}", app.quiet) as on_stage, \
            step_progress(f"diff {model.name}", runs * images, app.quiet, unit="images") as advance:
        report = diff_model(model, workspace, app.registry, wanted, chosen, data_dir=data_dir, images=images,
                            seed=seed, threshold=threshold, input_type=input_type, layout=layout,
                            on_stage=on_stage, on_image=advance)
    from omzconv.diff.render import render_html

    path = report_path or workspace.model_dir(model).parent / "reports" / f"diff-{model.name}.html"
    write_bytes_atomic(path, render_html(report).encode("utf-8"))
    if as_json:
        print_json({**to_dict(report), "html": str(path)})
        return
    render(report)
    stdout.print(f"HTML report: {escape(str(path))}", soft_wrap=True)


def render(report) -> None:
    from omzconv.diff import first_divergence, output_error, worst
    from omzconv.diff.render import TABLE_COLUMNS, short, table_rows

    weights = " (synthetic weights)" if report.weights == "synthetic" else ""
    stdout.print(f"[bold]Diff {report.model}[/]{weights}: {escape(report.image_source)}")
    for run in report.runs:
        m = run.matching
        matched = len([x for x in m.layers if x.kind != "output"])
        out = output_error(run)
        print_table(f"{run.spec.name}: the layers adding the most error (computed in {run.executed_in})",
                    TABLE_COLUMNS, table_rows(worst(run)))
        first = first_divergence(run, report.threshold)
        if first is None:
            stdout.print(f"  no layer above relative error {report.threshold:g}")
        else:
            stdout.print(f"  first divergence (> {report.threshold:g}): layer {first.layer.index} "
                         f"({first.layer.kind}), relative error {first.rel_error:.2e}")
            stdout.print(f"    {escape(short(first.layer.tf_node, 74))}")  # on its own line: fits 80 columns
        stdout.print(f"  output relative error {out.rel_error:.2e}; matched {matched} of {m.tf_layers} layers "
                     f"({m.fraction:.0%})" if out else f"  matched {matched} of {m.tf_layers} layers")
        for line in nncf_lines(run):
            stdout.print(f"  {escape(line)}", soft_wrap=True)
        if run.spec.inference_precision != run.executed_in and run.spec.inference_precision != "default":
            stdout.print(f"  [yellow]asked for {run.spec.inference_precision}, OpenVINO computed in "
                         f"{run.executed_in} on this CPU[/]")


def nncf_lines(run) -> list[str]:
    """An INT8 IR quantized with accuracy control: what NNCF reverted to float, beside diff's ranking."""
    from omzconv.diff.nncf import nncf_reverted
    from omzconv.diff.render import short

    found = nncf_reverted(run)
    if found is None:
        return []
    top = ", ".join(short(e["tf_node"], 30) for e in found["diff_top"])
    if found["reverted"] is None:
        return [f"NNCF accuracy control: which ops it reverted is unknown (its log did not say); diff's top: {top}"]
    if not found["reverted"]:
        return [f"NNCF accuracy control reverted no op (drop within {found['max_drop_pp']:g} pp); diff's top: {top}"]
    ops = ", ".join(f"{r['ir_op']} = {short(r['tf_node'] or '?', 30)} (diff rank {r['diff_rank'] or '–'} of "
                    f"{found['ranked_layers']})" for r in found["reverted"])
    return [f"NNCF accuracy control reverted {len(found['reverted'])} of {found['quantized_ops'] or '?'} "
            f"quantized ops to float: {ops}", f"diff's top: {top}"]
