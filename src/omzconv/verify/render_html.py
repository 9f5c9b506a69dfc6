"""The report as one self-contained HTML page, for a person reviewing a conversion.

Everything is inline (CSS, SVG figures from `plots`, JPEG thumbnails as data URIs): the file opens
from disk with no network and prints. What grows with the number of images is capped: at most
`MAX_DISAGREEMENTS` thumbnails per IR (worst first) and the `WORST_CLASSES` least-agreeing classes,
so 1,000 images or 50,000 give a page of a few hundred KB. Nothing is inferred here: the per-image
figures are the predictions `evaluate` kept (`ModelReport.per_image`), the thumbnails are the
dataset's files, shrunk. Template: templates/report.html.j2 (jinja2, autoescaped).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from omzconv.verify.checks import TOP1_METRIC
from omzconv.verify.report import ORIGINAL, SPEED_NOTE, ModelReport, PerImage, VerifyReport
from omzconv.verify.texts import (accuracy_text, check_text, compared_text, cpu_text, decided_text, run_notes,
                                  execution_text, explanation_text, percent, plural, reference_text, sci,
                                  selection_text, speed_text)

MAX_DISAGREEMENTS = 24  # thumbnails per IR, the largest |Δp| first
THUMB_PX = 112  # longest side of a thumbnail
THUMB_QUALITY = 70
CLASS_MIN_IMAGES = 10  # per-class agreement only for classes with at least this many images
WORST_CLASSES = 20
TOP_SHOWN = 3


@dataclass(frozen=True)
class Guess:
    name: str
    prob: float
    correct: bool


@dataclass(frozen=True)
class Disagreement:
    file: str
    label: str
    thumbnail: str | None  # data URI; None when hidden or unreadable
    original: tuple[Guess, ...]
    converted: tuple[Guess, ...]
    margin: float  # the original's top-1 minus top-2 probability: how decisive it was
    delta: float  # max |Δp| of the pair on this image


def render_html(report: VerifyReport, *, thumbnails: bool = True) -> str:
    """The page; `thumbnails=False` draws a placeholder instead of each image (e.g. for a
    screenshot that must not show dataset pixels)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("omzconv.verify", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(percent=percent, sci=sci, accuracy=accuracy_text, check=check_text, reference=reference_text,
                       execution=execution_text, speed=speed_text, short=lambda sha: sha.removeprefix("sha256:")[:12],
                       explanation=explanation_text)
    env.globals.update(plural=plural, selection_text=selection_text, compared_text=compared_text,
                       decided_text=decided_text)
    models = [_model_context(m, k, thumbnails) for k, m in enumerate(report.models)]
    return env.get_template("report.html.j2").render(
        report=report, d=report.dataset, models=models, versions=_versions(report), speed_note=SPEED_NOTE,
        verdict=report.verdict, cpu=cpu_text(report))


def _versions(report: VerifyReport) -> list[tuple[str, str]]:
    packages = ["openvino", "tensorflow"] + (["nncf"] if any(r.name.startswith("INT8") for m in report.models
                                                             for r in m.runs) else [])
    found = []
    for name in packages:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, "not installed"))
    return [("omzconv", report.tool.removeprefix("omzconv "))] + found


def _class_names(num_classes: int, label_offset: int) -> list[str]:
    from omzconv.convert import imagenet_labels
    from omzconv.errors import ConversionError

    try:
        return [n.split(",")[0] for n in imagenet_labels(num_classes, label_offset)]
    except ConversionError:  # a model with another label set: class ids
        return [f"class {i}" for i in range(num_classes)]


def _model_context(m: ModelReport, k: int, thumbnails: bool) -> dict[str, Any]:
    """What the template draws of model `k` (its figures' element ids are prefixed `m<k>…`: unique on the page)."""
    from omzconv.verify.plots import Interval, accuracy_plot, delta_histogram, scope_ids

    intervals = [Interval(f"{r.name} top-{top}", r.name, acc.value, *acc.ci95)
                 for top in (1, 5) for r in m.runs for acc in [r.top1 if top == 1 else r.top5] if acc.value is not None]
    applied = next((ref for ref in m.references if ref.applied), None)
    context: dict[str, Any] = {
        "m": m, "verdict": m.verdict, "anchor": f"model-{k}",
        "decided": [c for c in m.checks if c.applies], "not_applicable": [c for c in m.checks if not c.applies],
        "accuracy_svg": scope_ids(accuracy_plot(intervals, (f"{applied.source} top-1", applied.top1 / 100)
                                                if applied else None), f"m{k}a-") if intervals else None,
        "vs_original": [c for c in m.comparisons if c.reference == ORIGINAL],
        "histogram_svg": None, "zero_deltas": [], "groups": [], "per_class": None, "top1": {},
        "computed": run_notes(m),
    }
    data = m.per_image
    if data is None or not m.comparisons:
        return context
    names = _class_names(data.num_classes, data.label_offset)
    series, zeros = {}, []
    for c in m.comparisons:
        mask = data.measured[c.precision]
        d = data.dmax[(c.precision, c.reference)][mask]
        if d.size:
            series[f"{c.precision} vs {c.reference}"] = d
            zeros.append((f"{c.precision} vs {c.reference}", int((d == 0).sum()), int(mask.sum())))
    context["histogram_svg"] = scope_ids(delta_histogram(series), f"m{k}h-") if series else None
    context["zero_deltas"] = [z for z in zeros if z[1]]
    top1 = {c.subject.split(" vs ")[0]: c for c in m.checks if c.metric == TOP1_METRIC and c.applies}
    context["top1"] = top1
    context["groups"] = [_disagreements(data, c.precision, names, thumbnails)
                         for c in m.comparisons if c.reference == ORIGINAL]
    context["per_class"] = _per_class(data, [c.precision for c in m.comparisons if c.reference == ORIGINAL], names)
    return context


def _guesses(top: np.ndarray, prob: np.ndarray, label: int, names: Sequence[str]) -> tuple[Guess, ...]:
    return tuple(Guess(names[c] if 0 <= c < len(names) else f"class {c}", float(p), int(c) == label)
                 for c, p in zip(top[:TOP_SHOWN], prob[:TOP_SHOWN]))


def _disagreements(data: PerImage, run: str, names: Sequence[str], thumbnails: bool) -> dict[str, Any]:
    """The images whose top-1 differs between the original and `run`, the largest |Δp| first."""
    mask = data.measured[run] & (data.top[run][:, 0] != data.top[ORIGINAL][:, 0])
    ids = np.flatnonzero(mask)
    delta = data.dmax[(run, ORIGINAL)]
    ids = ids[np.argsort(-delta[ids], kind="stable")]
    cards = []
    for i in ids[:MAX_DISAGREEMENTS]:
        p_orig = data.prob[ORIGINAL][i]
        label = int(data.labels[i])
        cards.append(Disagreement(
            file=Path(data.paths[i]).name,
            label=names[label] if 0 <= label < len(names) else f"class {label}",
            thumbnail=thumbnail(Path(data.paths[i])) if thumbnails else None,
            original=_guesses(data.top[ORIGINAL][i], p_orig, label, names),
            converted=_guesses(data.top[run][i], data.prob[run][i], label, names),
            margin=float(p_orig[0] - p_orig[1]), delta=float(delta[i])))
    return {"run": run, "total": len(ids), "measured": int(data.measured[run].sum()), "cards": cards}


def _per_class(data: PerImage, runs: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """Top-1 agreement with the original per class, the `WORST_CLASSES` lowest, for classes with
    at least `CLASS_MIN_IMAGES` images; otherwise why not."""
    labels = data.labels[data.measured[ORIGINAL]]
    counts = np.bincount(labels) if labels.size else np.zeros(0, int)
    largest = int(counts.max(initial=0))
    big = np.flatnonzero(counts >= CLASS_MIN_IMAGES)
    if big.size == 0:
        return {"rows": [], "runs": runs,
                "why_not": f"not shown: the largest class has {largest} image{'s' if largest != 1 else ''} here; "
                           f"per-class agreement needs at least {CLASS_MIN_IMAGES} images per class to mean "
                           f"something (e.g. {CLASS_MIN_IMAGES * 1000:,} class-balanced images of ImageNet)"}
    rows = []
    for c in big:
        cells = []
        for run in runs:
            mask = data.measured[run] & (data.labels == c)
            n = int(mask.sum())
            cells.append(float(np.mean(data.top[run][mask, 0] == data.top[ORIGINAL][mask, 0])) if n else None)
        rows.append((names[c] if c < len(names) else f"class {c}", int(counts[c]), cells))
    rows.sort(key=lambda r: min((v for v in r[2] if v is not None), default=1.0))
    return {"rows": rows[:WORST_CLASSES], "runs": runs, "classes": int(big.size), "why_not": None}


def thumbnail(path: Path) -> str | None:
    """A small JPEG of the image as a data URI; None if it cannot be read."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            small = ImageOps.exif_transpose(image).convert("RGB")
            small.thumbnail((THUMB_PX, THUMB_PX))
            buffer = io.BytesIO()
            small.save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
