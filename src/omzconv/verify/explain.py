"""Verify ↔ diff: where a run that failed, or disagreed with the original, departs from it.

For a run that failed a check, `explain_model` runs `omzconv diff` (`diff.compare.diff_run`, the
original in TensorFlow and the IR computed as the run was, every matched layer an output) on up to
`MAX_IMAGES` of that run's images — those whose top-1 differs from the original's first, then the
largest |Δp| — and writes the diff page beside the report (`write.diff_page_path`); the report links
it and names the first layer whose error exceeds `diff.THRESHOLD`. A run that passed but changed
some image's top-1 gets the `omzconv diff` command that would explain it. Nothing here prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np

from omzconv.errors import OmzconvError
from omzconv.execution import ir_precision
from omzconv.registry import Model
from omzconv.verify.artefacts import ModelArtefacts
from omzconv.verify.report import ORIGINAL, Explanation, ModelReport, PerImage, RunResult
from omzconv.verify.write import diff_page_path

MAX_IMAGES = 8  # images a failed run is diffed on (each runs every layer in both runtimes)


def to_explain(m: ModelReport) -> list[tuple[RunResult, str]]:
    """The IR runs to explain, in the report's order: each that failed a check against the original
    ("failed"; not one against a published accuracy, which diff cannot explain), else each whose
    top-1 differs from the original's on some image ("disagreed")."""
    against = f" vs {ORIGINAL}"
    failed = {c.subject.removesuffix(against) for c in m.checks if c.failed and c.subject.endswith(against)}
    agree = {c.precision: c.top1_agreement for c in m.comparisons if c.reference == ORIGINAL}
    out = []
    for r in m.runs:
        if r.runtime != "openvino":
            continue
        if r.name in failed:
            out.append((r, "failed"))
        elif agree.get(r.name) is not None and agree[r.name] < 1:
            out.append((r, "disagreed"))
    return out


def worst_images(data: PerImage, run: str, count: int = MAX_IMAGES) -> np.ndarray:
    """Up to `count` images `run` was measured on: those whose top-1 differs from the original's
    first, then by largest |Δp|, each group largest |Δp| first."""
    ids = np.flatnonzero(data.measured[run])
    changed = data.top[run][ids, 0] != data.top[ORIGINAL][ids, 0]
    delta = data.dmax[(run, ORIGINAL)][ids]
    return ids[np.lexsort((-delta, ~changed))][:count]


def diff_command(model: str, run: RunResult, *, synthetic: bool, data_dir: Path | None, images: int) -> str:
    """The `omzconv diff` command that compares this run layer by layer."""
    words = ["omzconv", "diff", model, "-p", ir_precision(run.name)]
    if run.inference_precision != "f32":
        words += ["--inference-precision", run.inference_precision]
    if synthetic:
        words.append("--synthetic-weights")
    if data_dir is not None:
        words += ["--data-dir", str(data_dir)]
    words += ["--images", str(images)]
    return shlex.join(words)


def explain_model(model: Model, m: ModelReport, artefacts: ModelArtefacts, report_path: Path, *,
                  synthetic: bool, data_dir: Path | None, diff: bool = True, count: int = MAX_IMAGES,
                  on_stage: Callable[..., None] = lambda *a: None) -> list[Explanation]:
    """An `Explanation` per run `to_explain` names; for a failed run (unless `diff` is False or the
    model was interrupted) the diff page, written beside `report_path`."""
    from omzconv import __version__

    todo = to_explain(m)
    data = m.per_image
    by_name = {a.name: a for a in artefacts.converted}
    explanations, tf_runner = [], None
    try:
        for run, why in todo:
            command = diff_command(m.model, run, synthetic=synthetic, data_dir=data_dir, images=count)
            if why != "failed" or not diff or m.interrupted or data is None:
                explanations.append(Explanation(run.name, why, command))
                continue
            from omzconv.diff import THRESHOLD, DiffReport, diff_run, first_divergence, output_error
            from omzconv.diff.compare import RunSpec
            from omzconv.diff.render import render_html
            from omzconv.fileutil import write_bytes_atomic
            from omzconv.preprocess import prepare
            from omzconv.runners import TFRunner

            ids = worst_images(data, run.name, count)
            if not len(ids):
                explanations.append(Explanation(run.name, why, command))
                continue
            on_stage(f"diff {m.model} {run.name} on {len(ids)} images")
            pixels = np.stack([prepare(Path(data.paths[i]), model.preprocessing) for i in ids]).astype(np.float32)
            a = by_name[run.name]
            try:
                if tf_runner is None:
                    tf_runner = TFRunner(model, [artefacts.output], pb_path=artefacts.original.path)
                result = diff_run(model, tf_runner, RunSpec(run.name, a.precision, a.path, a.inference_precision),
                                  pixels)
            except OmzconvError as exc:  # the verdict stands; say why there is no page
                explanations.append(Explanation(run.name, why, command, error=str(exc)))
                continue
            source = (f"the {len(ids)} images of the verify report where {run.name} departs most from the original "
                      "(changed top-1 first, then the largest |Δp|)")
            report = DiffReport(m.model, artefacts.weights, len(ids), source, THRESHOLD, (result,),
                                f"omzconv {__version__}")
            page = diff_page_path(report_path, m.model, run.name)
            write_bytes_atomic(page, render_html(report).encode("utf-8"))
            first, out = first_divergence(result, THRESHOLD), output_error(result)
            explanations.append(Explanation(
                run.name, why, command, page=page.name, images=len(ids),
                first_layer=first.layer.tf_node if first else None, first_index=first.layer.index if first else None,
                first_error=first.rel_error if first else None, threshold=THRESHOLD,
                output_error=out.rel_error if out else None))
    finally:
        if tf_runner is not None:
            tf_runner.close()
    return explanations
