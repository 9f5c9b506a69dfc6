"""The diff as a terminal table's rows and as one self-contained HTML page.

The page uses the verify report's look: the same stylesheet (`verify/templates/report.css`), and
figures drawn by `verify.plots`' helpers (inline SVG, text as text, same bytes every time).
Template: templates/diff.html.j2 (jinja2, autoescaped).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import numpy as np

from omzconv.diff.compare import LayerError
from omzconv.diff.match import unmatched_by_reason
from omzconv.diff.report import DiffReport, first_divergence, output_error, worst

NAME_WIDTH = 28  # characters of a TF layer name in the 80-column table (the tail: the part that differs)
THRESHOLD_INK = "#b91c1c"  # not a run's colour


def short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def table_rows(errors: list[LayerError], width: int = NAME_WIDTH) -> list[list[str]]:
    """# | layer | kind | rel err | 1 − cosine | max |Δ| | gain — fits 80 columns with `width`."""
    return [[str(e.layer.index), short(e.layer.tf_node, width), e.layer.kind, f"{e.rel_error:.1e}",
             f"{max(1 - e.cosine, 0):.0e}", f"{e.max_abs:.1e}", f"×{e.gain:.1f}"] for e in errors]


TABLE_COLUMNS = ["#", "layer (TensorFlow)", "kind", "rel err", "1−cos", "max|Δ|", "gain"]


def depth_plot(report: DiffReport) -> str:
    """Relative error against depth (the matched layers in the original's topological order), log
    scale, one line per run; the threshold dashed; each run's first divergence ringed."""
    from omzconv.verify.plots import ACCENT, COLOURS, MUTED, figure_svg, styled_pyplot

    plt = styled_pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 3.0))
    palette = [ACCENT, "#059669", "#b45309", "#7c3aed", "#db2777", "#374151"]
    lowest = 1e-8
    for k, run in enumerate(report.runs):
        x = np.array([e.layer.index for e in run.layers])
        y = np.maximum([e.rel_error for e in run.layers], lowest)
        colour = COLOURS.get(run.spec.name, palette[k % len(palette)])
        ax.plot(x, y, color=colour, linewidth=1.3, label=f"{run.spec.name} (computed in {run.executed_in})")
        first = first_divergence(run, report.threshold)
        if first is not None:
            ax.plot([first.layer.index], [max(first.rel_error, lowest)], "o", markersize=8, markerfacecolor="none",
                    markeredgecolor=colour)
    ax.axhline(report.threshold, color=THRESHOLD_INK, linestyle="--", linewidth=1,
               label=f"threshold {report.threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("layer, in the original's topological order (input → output)")
    ax.set_ylabel("relative error ‖a−b‖/‖a‖ (log)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(color="#e5e7eb", linewidth=0.6)
    ax.tick_params(colors=MUTED)
    ax.set_axisbelow(True)
    return figure_svg(fig)


def verify_stylesheet() -> str:
    """The verify report's CSS (`verify/templates/report.css`), so both pages look alike."""
    return files("omzconv.verify").joinpath("templates", "report.css").read_text(encoding="utf-8")


def render_html(report: DiffReport) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(loader=PackageLoader("omzconv.diff", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(sci=lambda v: f"{v:.2e}", short=short)
    runs: list[dict[str, Any]] = []
    for run in report.runs:
        runs.append({"run": run, "first": first_divergence(run, report.threshold), "worst": worst(run),
                     "output": output_error(run), "matched": len([x for x in run.matching.layers if x.kind != "output"]),
                     "unmatched": unmatched_by_reason(run.matching)})
    return env.get_template("diff.html.j2").render(
        report=report, runs=runs, style=Markup(verify_stylesheet()), plot=Markup(depth_plot(report)))
