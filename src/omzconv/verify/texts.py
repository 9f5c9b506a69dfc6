"""The report's one-line texts, shared by the terminal, the Markdown and the HTML page."""

from __future__ import annotations

import re

from omzconv.text import plural  # noqa: F401 - re-exported for the renderers

from omzconv.execution import cpu_default_text, ir_precision, unavailable_text
from omzconv.verify.report import (NOT_APPLICABLE, ORIGINAL, Accuracy, Check, Comparison, DatasetInfo, Execution,
                                   Explanation, ModelReport, ReferenceResult, RunResult, VerifyReport)

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters (escape sequences, newlines) shown as `\\x1b`, so a file
    name can neither restyle a terminal nor break a Markdown line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def percent(value: float | None, digits: int = 2, unit: str = " %") -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}{unit}"


def sci(value: float | None) -> str:
    return "–" if value is None else f"{value:.2e}"


def accuracy_text(acc: Accuracy, digits: int = 2, unit: str = " %") -> str:
    """`80.21 % [79.9, 80.6]`: the value and its 95 % interval, on one line."""
    if acc.value is None:
        return "–"
    lo, hi = acc.ci95
    return f"{percent(acc.value, digits, unit)} [{lo * 100:.1f}, {hi * 100:.1f}]"


def _quantity(value: float, unit: str) -> str:
    if unit == "p":
        return f"{value:.2g}" if value >= 1e-2 or value == 0 else f"{value:.1e}"
    if unit == "images":
        return f"{value:,.0f}"
    return f"{value:.3g} {unit}"


def check_text(check: Check) -> str:
    """`FP16 vs original: max |Δp| 0.032 (≤ 0.1): PASSED`, `… top-1 changes on decisive images 0 of
    143 (≤ 0): PASSED (margin > 0.05; 57 near-ties excluded)`; a check
    that does not apply says so and why, with no status."""
    if check.status == NOT_APPLICABLE:
        return f"{check.subject}: {check.metric}: not applicable ({check.detail})"
    op = "≤" if check.op == "<=" else "≥"
    value = "–" if check.value is None else _quantity(check.value, check.unit)
    if check.unit == "images" and check.images is not None:
        value += f" of {check.images:,}"
    limit = _quantity(check.limit, check.unit)
    text = f"{check.subject}: {check.metric} {value} ({op} {limit}): {check.status.upper()}"
    return text + (f" ({check.detail})" if check.detail else "")


def decided_text(m: ModelReport) -> str:
    """Which checks decided the verdict and which did not apply, counted."""
    applied = [c for c in m.checks if c.applies]
    failed = sum(c.failed for c in applied)
    text = f"decided by {plural(len(applied), 'check')}" + (f", {failed:,} failed" if failed else "")
    skipped = len(m.checks) - len(applied)
    return text + (f"; {plural(skipped, 'check')} not applicable" if skipped else "")


def comparison_text(c: Comparison) -> str:
    """A comparison with another run than the original, on one line (e.g. INT8 vs FP32)."""
    delta = "–" if c.top1_delta_pp is None else f"{c.top1_delta_pp:+.2f} pp"
    return (f"{c.precision} vs {c.reference} on {plural(c.images, 'image')}: Δ top-1 {delta}, top-1 agreement "
            f"{percent(c.top1_agreement)}, top-5 agreement {percent(c.top5_agreement)}, max |Δp| "
            f"{sci(c.max_abs_prob_delta)}, mean |Δp| {sci(c.mean_abs_prob_delta)}")


def excluded_text(r: RunResult) -> str:
    return f"{r.name}: {plural(r.excluded, 'calibration image')} excluded, measured on the other {r.images:,}"


def speed_text(r: RunResult) -> str:
    """`6.10` measured now, `6.10 (cached)` measured when the cached images were run, `–` unknown."""
    if r.images_per_second is None:
        return "–"
    return f"{r.images_per_second:.2f}" + (" (cached)" if r.speed_source == "cache" else "")


def execution_text(e: Execution) -> str:
    """Who ran the images and how fast, as the end of a sentence: `in this process, at 1.5
    images/s on 200 images` or `by 2 Ray workers on a local instance: vm:311 at 100.9 images/s on
    128 images, …`."""
    def rate(w) -> str:
        speed = "an unknown rate" if w.images_per_second is None else f"{w.images_per_second:.1f} images/s"
        return f"at {speed} on {plural(w.images, 'image')}"

    if e.executor == "in-process":
        return "in this process" + (f", {rate(e.per_worker[0])}" if len(e.per_worker) == 1 else "")
    where = "a local instance" if e.address == "local" else f"the cluster at {e.address}"
    text = f"by {plural(e.workers, f'{e.executor.capitalize()} worker')} on {where}"
    return text + (": " + ", ".join(f"{w.worker} {rate(w)}" for w in e.per_worker) if e.per_worker else "")


def reference_text(ref: ReferenceResult) -> str:
    text = f"{ref.source} ({ref.output}): top-1 {ref.top1:g} %, top-5 {ref.top5:g} %"
    return text + ("" if ref.applied else f" — not applied: {'; '.join(ref.reasons)}")


def selection_text(d: DatasetInfo) -> str:
    """`200 images`, `1,000 of 50,000 images (class-balanced subset, --limit 1000, seed 0)`, or
    `all 200 images (--limit 1000 is more than the dataset has)`."""
    if d.limit is None:
        return plural(d.selected, "image")
    if d.selected >= d.listed:
        return f"all {plural(d.selected, 'image')} (--limit {d.limit:,} is not less than the dataset's {d.listed:,})"
    return f"{d.selected:,} of {plural(d.listed, 'image')} (class-balanced subset, --limit {d.limit:,}, seed {d.seed})"


def compared_text(m: ModelReport) -> str:
    """`200 images compared`, or per run when they differ (an interrupted run, INT8's excluded images)."""
    counts = {c.precision: c.images for c in m.comparisons if c.reference == ORIGINAL}
    if m.interrupted and len(set(counts.values()) | {m.images}) > 1:
        return "images compared: " + ", ".join(f"{name} {n:,}" for name, n in counts.items())
    return f"{plural(m.images, 'image')} compared"


def cpu_text(report: VerifyReport) -> str:
    """What this CPU computes an f32 IR in by default, from OpenVINO ("" when not probed)."""
    return cpu_default_text(report.cpu_default) if report.cpu_default else ""


def computed_text(r: RunResult) -> str:
    """How an IR run was computed: `FP32@bf16: asked bf16, computed in f32 (this CPU has no bf16: …);
    held to the FP32 tolerance`; "" for the original."""
    if r.runtime != "openvino":
        return ""
    asked = "" if r.inference_precision == r.executed else f"asked {r.inference_precision}, "
    text = f"{r.name}: {asked}computed in {r.executed}"
    note = unavailable_text(r.name, ir_precision(r.name), r.inference_precision, r.executed)
    text += f" ({note})" if note else ""
    return text + (f"; held to the {r.tolerance} tolerance" if r.tolerance else "")


def kept_text(r: RunResult) -> str:
    """What a repaired IR keeps in f32 and why, and its speed against the plain IR ("" if none)."""
    if not r.kept:
        return ""
    from omzconv.repair import kept_head, speed_text

    speed = speed_text(r.kept)
    return f"{r.name}: {kept_head(r.kept)}" + (f"; {speed}" if speed else "")


def run_notes(m: ModelReport) -> list[str]:
    """How each IR run was computed, when it is not simply the IR in f32, and what a repaired IR
    keeps in f32: the lines every rendering lists under "Execution precision"."""
    notes = []
    for r in m.runs:
        if r.runtime == "openvino" and "@" in r.name:
            notes.append(computed_text(r))
        if r.kept:
            notes.append(kept_text(r))
    return notes


def explanation_text(e: Explanation) -> str:
    """Where a failed or disagreeing run departs from the original, or how to find out."""
    if e.page is None:
        what = "failed" if e.why == "failed" else "passed but changed the top-1 class of some images"
        error = f" (omzconv diff could not run: {e.error})" if e.error else ""
        return f"{e.run} {what}{error}; where it departs from the original: {e.command}"
    if e.first_layer is None:
        first = f"no layer's relative error exceeds {e.threshold:g}"
    else:
        first = (f"first divergent layer {e.first_index} {e.first_layer} (relative error {e.first_error:.2e} "
                 f"> {e.threshold:g})")
    out = "" if e.output_error is None else f", output relative error {e.output_error:.2e}"
    return f"{e.run} failed: diff on its {plural(e.images, 'worst image')}: {first}{out}"
