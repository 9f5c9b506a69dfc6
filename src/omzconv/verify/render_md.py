"""The report as Markdown, and the one-line texts the terminal table shares with it."""

from __future__ import annotations

from omzconv.verify.report import (ORIGINAL, SYNTHETIC_NOTE, Accuracy, Check, Comparison, Execution,
                                   ReferenceResult, RunResult, VerifyReport)


def percent(value: float | None, digits: int = 2, unit: str = " %") -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}{unit}"


def accuracy_text(acc: Accuracy, digits: int = 2, unit: str = " %") -> str:
    """`80.21 % [79.9, 80.6]`: the value and its 95 % interval, on one line."""
    if acc.value is None:
        return "–"
    lo, hi = acc.ci95
    return f"{percent(acc.value, digits, unit)} [{lo * 100:.1f}, {hi * 100:.1f}]"


def check_text(check: Check) -> str:
    value = "–" if check.value is None else f"{check.value:.3g} {check.unit}"
    op = "≤" if check.op == "<=" else "≥"
    text = f"{check.subject}: {check.metric} {value} ({op} {check.limit:g} {check.unit}): {check.status.upper()}"
    return text + (f" (reported, not enforced: {check.waived})" if check.waived else "")


def comparison_text(c: Comparison) -> str:
    """A comparison with another run than the original, on one line (e.g. INT8 vs FP32)."""
    delta = "–" if c.top1_delta_pp is None else f"{c.top1_delta_pp:+.2f} pp"
    return (f"{c.precision} vs {c.reference} on {c.images:,} images: Δ top-1 {delta}, top-1 agreement "
            f"{percent(c.top1_agreement)}, top-5 agreement {percent(c.top5_agreement)}, max |Δp| "
            f"{_sci(c.max_abs_prob_delta)}, mean |Δp| {_sci(c.mean_abs_prob_delta)}")


def excluded_text(r: RunResult) -> str:
    return f"{r.name}: {r.excluded:,} calibration images excluded, measured on the other {r.images:,}"


def execution_text(e: Execution) -> str:
    """`ray at local, 2 workers: vm:311 100.9 images/s (128 images), …`: who ran the images, how fast each."""
    workers = ", ".join(f"{w.worker} " + ("–" if w.images_per_second is None else f"{w.images_per_second:.1f}")
                        + f" images/s ({w.images:,} images)" for w in e.per_worker)
    return f"{e.executor} at {e.address}, {e.workers} worker{'s' * (e.workers != 1)}" + (f": {workers}" if workers else "")


def reference_text(ref: ReferenceResult) -> str:
    text = f"{ref.source} ({ref.output}): top-1 {ref.top1:g} %, top-5 {ref.top5:g} %"
    return text + ("" if ref.applied else f" — not applied: {'; '.join(ref.reasons)}")


def render_markdown(report: VerifyReport) -> str:
    d = report.dataset
    lines = [f"# omzconv verify — {d.name}", ""]
    if report.synthetic:
        lines += [f"> **{SYNTHETIC_NOTE}**", ""]
    if report.interrupted:
        lines += ["> **INTERRUPTED: partial result for the images done.**", ""]
    verdict = "PASSED" if report.passed else "INTERRUPTED" if report.interrupted else "FAILED"
    lines += [f"**Result: {verdict}** · {report.tool} · {report.created}", "",
              f"- dataset: {d.description} — {d.found}",
              f"- images: {d.selected:,} of {d.listed:,}"
              + (f" (class-balanced subset, --limit {d.limit}, seed {d.seed})" if d.limit is not None else ""),
              f"- skipped (listed but missing, or label out of range): {d.skipped.count}"]
    lines += [f"  - `{p.path}`: {p.reason}" for p in d.skipped.first]
    for m in report.models:
        lines += ["", f"## {m.model} ({m.alias}) — {'PASSED' if m.passed else 'FAILED'}", "",
                  f"output `{m.output}` ({m.output_kind}), {m.weights} weights, {m.images:,} images"
                  + (f", {m.skipped.count} skipped" if m.skipped.count else "") + (" (INTERRUPTED)" if m.interrupted else ""),
                  ""]
        lines += [f"- skipped `{p.path}`: {p.reason}" for p in m.skipped.first] + ([""] if m.skipped.count else [])
        lines += ["| run | runtime | top-1 [95 % CI] | top-5 [95 % CI] | top-1 agree | top-5 agree | max \\|Δp\\| "
                  "| mean \\|Δp\\| | images/s | inferred / cached |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        comps = {c.precision: c for c in m.comparisons if c.reference == ORIGINAL}
        for r in m.runs:
            c = comps.get(r.name)
            speed = "–" if r.images_per_second is None else f"{r.images_per_second:.2f}"
            lines.append(f"| {r.name} | {r.runtime} | {accuracy_text(r.top1)} | {accuracy_text(r.top5)} | "
                         f"{percent(c.top1_agreement) if c else '–'} | {percent(c.top5_agreement) if c else '–'} | "
                         f"{_sci(c.max_abs_prob_delta) if c else '–'} | {_sci(c.mean_abs_prob_delta) if c else '–'} | "
                         f"{speed} | {r.inferred} / {r.cached} |")
        lines += [""] + [f"- {excluded_text(r)}" for r in m.runs if r.excluded] if any(r.excluded for r in m.runs) else []
        others = [c for c in m.comparisons if c.reference != ORIGINAL]
        if others:
            lines += ["", "Compared with the run they were made from:"] + [f"- {comparison_text(c)}" for c in others]
        if m.references:
            lines += ["", "References:"]
            lines += [f"- {reference_text(r)}" for r in m.references]
        lines += ["", "Checks:"]
        lines += [f"- {check_text(c)}" for c in m.checks] or ["- none"]
        if m.execution is not None:
            lines += ["", f"Executor: {execution_text(m.execution)}"]
    lines += ["", "Notes:"] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def _sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"
