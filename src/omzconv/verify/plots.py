"""The report's figures as inline SVG (matplotlib, Agg backend, imported only when drawing).

Text stays text (`svg.fonttype: none`: the page's font draws it, and the SVG stays a few KB), no
timestamp or random ids (`svg.hashsalt`), so the same report gives the same bytes. Matplotlib's ids
repeat from figure to figure (the same marker, the same clip box): `scope_ids` makes them unique
on a page.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

INK, MUTED, ACCENT, WARN = "#1f2937", "#6b7280", "#2563eb", "#b45309"
COLOURS = {"original": "#374151", "FP32": "#2563eb", "FP16": "#059669", "INT8": "#b45309"}
FLOOR = 1e-9  # lowest bin edge; images with |Δp| = 0 (identical outputs) are drawn in the first bin


@dataclass(frozen=True)
class Interval:
    label: str  # "FP16 top-1"
    run: str
    value: float  # fraction
    low: float
    high: float


def styled_pyplot() -> Any:
    """matplotlib.pyplot (Agg) in the reports' house style: the verify report and the diff page share it."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "omzconv", "font.size": 9,
                         "font.family": "sans-serif", "axes.edgecolor": MUTED, "axes.labelcolor": INK,
                         "xtick.color": MUTED, "ytick.color": MUTED, "axes.spines.top": False,
                         "axes.spines.right": False})
    return plt


def figure_svg(fig: Any) -> str:
    """`fig` as deterministic inline SVG (no date, no creator), then closed."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    styled_pyplot().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # no XML prolog or doctype inside HTML


def scope_ids(svg: str, prefix: str) -> str:
    """`svg` with every element id, and every reference to one (`#id` in href and url()), prefixed."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    return re.sub(r'(\bid="|#)([^"\s)#]+)(?=[")])',
                  lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0), svg)


def accuracy_plot(intervals: Sequence[Interval], reference: tuple[str, float] | None = None) -> str:
    """Each run's accuracy as a dot with its 95 % Wilson interval; the published reference (label,
    fraction) as a dashed line where it applies."""
    plt = styled_pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(intervals) + 0.7))
    y = np.arange(len(intervals))[::-1]
    for yi, iv in zip(y, intervals):
        colour = COLOURS.get(iv.run, ACCENT)
        ax.plot([iv.low * 100, iv.high * 100], [yi, yi], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.plot([iv.value * 100], [yi], "o", color=colour, markersize=5)
        ax.annotate(f"{iv.value * 100:.1f} %  [{iv.low * 100:.1f}, {iv.high * 100:.1f}]",
                    (iv.high * 100, yi), xytext=(6, -3), textcoords="offset points", color=INK, fontsize=8)
    if reference is not None:
        ax.axvline(reference[1] * 100, color=WARN, linestyle="--", linewidth=1)
        ax.annotate(reference[0], (reference[1] * 100, len(intervals) - 0.45), xytext=(3, 0),
                    textcoords="offset points", color=WARN, fontsize=8)
    ax.set_yticks(y, [iv.label for iv in intervals])
    values = [v for iv in intervals for v in (iv.low, iv.high)] + ([reference[1]] if reference else [])
    lo, hi = min(values) * 100, max(values) * 100
    pad = max(2.0, (hi - lo) * 0.1)
    ax.set_xlim(max(0.0, lo - pad), min(100.0, hi + pad) + (hi - lo + pad) * 0.35)  # room for the labels
    ax.set_ylim(-0.6, len(intervals) - 0.4)
    ax.set_xlabel("accuracy, % (dot: measured; bar: 95 % Wilson interval)")
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    return figure_svg(fig)


def delta_histogram(series: dict[str, np.ndarray]) -> str:
    """Per-image max |Δp| (one series per comparison, named "RUN vs REFERENCE"; dashed when the
    reference is not the original) on log-spaced bins, log count axis."""
    plt = styled_pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 2.6))
    values = np.concatenate([np.asarray(v, np.float64) for v in series.values()] or [np.zeros(1)])
    positive = values[values > 0]
    low = max(FLOOR, float(positive.min()) / 1.5) if positive.size else FLOOR
    high = min(1.0, max(float(values.max()), low * 10) * 1.5)
    bins = np.logspace(np.log10(low), np.log10(high), 40)
    for name, v in series.items():
        run, reference = name.split(" vs ")
        ax.hist(np.clip(np.asarray(v, np.float64), low, None), bins=bins, histtype="step", linewidth=1.6,
                color=COLOURS.get(run, ACCENT), linestyle="-" if reference == "original" else (0, (3, 2)),
                label=f"{name} ({len(v):,} images)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("max |Δp| over the classes, per image (log)")
    ax.set_ylabel("images (log)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    return figure_svg(fig)
