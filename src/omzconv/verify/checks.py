"""Decisions: pure functions from predictions and facts to `Check`s — a converted model against
the original (`conversion_checks`) and a run against a published accuracy (`reference_reasons`,
`applicable_references`, `reference_checks`).

What a conversion must satisfy, per precision (`tolerances` in models.yaml), on any weights:
- the same top-1 class as the original on every *decisive* image — one whose top-1 and top-2
  probabilities differ by more than `tie_margin` (closer ones are near-ties that the precision's
  own rounding may reorder: they are excluded and counted);
- no class probability of any image moved by more than `max_prob_delta`.
Where accuracy means something (real weights, and enough images that one image is within the
tolerance) also |Δ top-1| ≤ `top1_pp`; elsewhere that check is "not applicable", with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omzconv.registry import PrecisionTolerance, Reference
from omzconv.verify.report import NOT_APPLICABLE, ORIGINAL, Check
from omzconv.verify.texts import plural

TOP1_METRIC = "top-1 changes on decisive images"
EPS = 1e-9  # float slack in threshold comparisons (a 0.1 pp limit must accept 0.1 pp)


def _status(ok: bool) -> str:
    return "passed" if ok else "failed"


def conversion_checks(precision: str, tolerance: PrecisionTolerance, weights: str, *, original: np.ndarray,
                      converted: np.ndarray, margin: np.ndarray, dmax: np.ndarray,
                      labels: np.ndarray) -> list[Check]:
    """A converted model against the original on the same images: `original` and `converted` are
    top-1 class ids per image, `margin` the original's top-1 minus top-2 probability, `dmax` the
    largest |Δ probability| per image, `labels` the true classes."""
    subject = f"{precision} vs {ORIGINAL}"
    original, converted, margin, dmax, labels = map(np.asarray, (original, converted, margin, dmax, labels))
    n = len(original)
    if n == 0:
        return [Check(subject, "images compared", 0, ">=", 1, "images", "failed", "nothing was compared")]
    decisive = margin > tolerance.tie_margin
    ties = n - int(decisive.sum())
    changed = int(((original != converted) & decisive).sum())
    metric, margin_text = TOP1_METRIC, f"margin > {tolerance.tie_margin:g}"
    if decisive.any():
        top1 = Check(subject, metric, changed, "<=", 0, "images", _status(changed == 0),
                     f"{margin_text}; {plural(ties, 'near-tie')} excluded", images=int(decisive.sum()), near_ties=ties)
    else:
        top1 = Check(subject, metric, None, "<=", 0, "images", NOT_APPLICABLE,
                     f"all {plural(n, 'image')} are near-ties, {margin_text} on none", images=0, near_ties=ties)
    worst = float(dmax.max())
    checks = [top1, Check(subject, "max |Δp|", worst, "<=", tolerance.max_prob_delta, "p",
                          _status(worst <= tolerance.max_prob_delta + EPS), images=n)]
    why = accuracy_reasons(n, weights, tolerance.top1_pp)
    if why:
        checks.append(Check(subject, "|Δ top-1|", None, "<=", tolerance.top1_pp, "pp", NOT_APPLICABLE, why))
    else:
        delta = abs(float(np.mean(converted == labels)) - float(np.mean(original == labels))) * 100
        checks.append(Check(subject, "|Δ top-1|", delta, "<=", tolerance.top1_pp, "pp",
                            _status(delta <= tolerance.top1_pp + EPS), images=n))
    return checks


def missing_tolerance(run: str, key: str) -> Check:
    """A run whose tolerance models.yaml does not give: it cannot pass (nothing says what it may do)."""
    return Check(f"{run} vs {ORIGINAL}", "tolerance", None, "<=", 0, "p", "failed",
                 f"models.yaml gives no tolerances.precisions.{key} to hold {run} to")


def accuracy_reasons(images: int, weights: str, limit_pp: float) -> str:
    """Why an accuracy difference means nothing here ("" when it does): weights that recognize
    nothing, or too few images for one image to be within the tolerance."""
    if weights == "synthetic":
        return "synthetic weights recognize nothing: their accuracy is meaningless"
    one = 100 / images
    if one > limit_pp + EPS:
        return f"one image of {images:,} is {one:.2g} pp, more than the {limit_pp:g} pp allowed"
    return ""


def reference_reasons(images: int, full_size: int, weights: str) -> list[str]:
    """Why a published accuracy does not apply to this run; empty when it does.

    A reference is measured on the whole validation set with the official weights: a subset's
    accuracy differs by sampling alone, and other weights are another model.
    """
    reasons = []
    if images != full_size:
        reasons.append(f"subset of {images:,} images (the reference is on all {full_size:,})")
    if weights == "synthetic":
        reasons.append("synthetic weights")
    elif weights == "custom":
        reasons.append("custom checkpoint")
    elif weights != "official":
        reasons.append(f"weights of unknown origin ({weights!r})")
    return reasons


def applicable_references(references: Sequence[Reference], output: str) -> list[Reference]:
    """The references measured on the output that was frozen (another node is another model)."""
    return [r for r in references if r.output == output]


def reference_checks(run_name: str, top1: float, top5: float, reference: Reference,
                     reference_pp: float) -> list[Check]:
    """One run's top-1 and top-5 (fractions) against a published reference (percent); only for
    runs where `reference_reasons` is empty."""
    subject = f"{run_name} vs {reference.source}"
    checks = []
    for metric, value, ref in (("|Δ top-1| to reference", top1, reference.top1),
                               ("|Δ top-5| to reference", top5, reference.top5)):
        delta = abs(value * 100 - ref)
        checks.append(Check(subject, metric, delta, "<=", reference_pp, "pp", _status(delta <= reference_pp + EPS)))
    return checks
