"""Decisions: pure functions from numbers and facts to `Check`s — a converted model against the
original (`conversion_checks`) and a run against a published accuracy (`reference_reasons`,
`applicable_references`, `reference_checks`)."""

from __future__ import annotations

from collections.abc import Sequence

from omzconv.registry import PrecisionTolerance, Reference
from omzconv.verify.report import ORIGINAL, Check

SYNTHETIC_WAIVER = "synthetic weights (models.yaml: enforced_on_synthetic: false)"
EPS = 1e-9  # float slack in threshold comparisons (a 0.1 pp limit must accept 0.1 pp)


def _status(ok: bool) -> str:
    return "passed" if ok else "failed"


def conversion_checks(precision: str, original_top1: float, converted_top1: float,
                      top1_agreement: float, tolerance: PrecisionTolerance, *, waived: str = "") -> list[Check]:
    """A converted model against the original (accuracies and agreement as fractions). With
    `waived` (why), the checks are measured and reported but never fail the model."""
    subject = f"{precision} vs {ORIGINAL}"
    delta = abs(converted_top1 - original_top1) * 100
    checks = [Check(subject, "|Δ top-1|", delta, "<=", tolerance.top1_pp, "pp",
                    _status(delta <= tolerance.top1_pp + EPS), waived)]
    if tolerance.agreement is not None:
        value = top1_agreement * 100
        checks.append(Check(subject, "top-1 agreement", value, ">=", tolerance.agreement * 100, "%",
                            _status(value >= tolerance.agreement * 100 - EPS), waived))
    return checks


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
