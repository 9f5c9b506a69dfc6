"""The report as Markdown. Everything that comes from outside (file names, paths, dataset
descriptions) is escaped: a file named `<img src=x onerror=…>.JPEG` stays text."""

from __future__ import annotations

import re

from omzconv.verify.report import ORIGINAL, SYNTHETIC_NOTE, VerifyReport
from omzconv.verify.texts import (accuracy_text, check_text, compared_text, comparison_text, run_notes,
                                  cpu_text, decided_text, excluded_text, execution_text, explanation_text, percent,
                                  plural, printable, reference_text, sci, selection_text, speed_text)

_SPECIAL = re.compile(r"([\\`*_\[\]|<>&])")


def md_text(text: str) -> str:
    """Plain text for Markdown: every character Markdown or HTML could act on backslash-escaped
    (`<` and `>` too: CommonMark then shows them, and never opens a tag), control characters shown."""
    return _SPECIAL.sub(r"\\\1", printable(text))


def md_code(text: str) -> str:
    """`text` as a code span (Markdown shows it verbatim, HTML inside it included), fenced with
    more backticks than it contains."""
    text = printable(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def render_markdown(report: VerifyReport) -> str:
    d = report.dataset
    lines = [f"# omzconv verify — {md_text(d.name)}", ""]
    if report.synthetic:
        lines += [f"> **{md_text(SYNTHETIC_NOTE)}**", ""]
    if report.interrupted:
        lines += ["> **INTERRUPTED: partial result for the images done.**", ""]
    lines += [f"**Result: {report.verdict}** · {report.tool} · {report.created}", "",
              f"- dataset: {md_text(d.description)} — {md_text(d.found)}",
              f"- selected: {md_text(selection_text(d))}",
              *([f"- execution: {md_text(cpu_text(report))}"] if report.cpu_default else []),
              f"- skipped (listed but missing, or label out of range): {d.skipped.count:,}"]
    lines += [f"  - {md_code(p.path)}: {md_text(p.reason)}" for p in d.skipped.first]
    for m in report.models:
        alias = f" ({md_text(m.alias)})" if m.alias else ""
        lines += ["", f"## {md_text(m.model)}{alias} — {m.verdict}", "",
                  f"output {md_code(m.output)} ({m.output_kind}), {m.weights} weights, {compared_text(m)}"
                  + (f", {plural(m.skipped.count, 'image')} skipped" if m.skipped.count else ""), ""]
        lines += [f"- skipped {md_code(p.path)}: {md_text(p.reason)}" for p in m.skipped.first]
        lines += [""] if m.skipped.count else []
        lines += ["| run | runtime | top-1 [95 % CI] | top-5 [95 % CI] | top-1 agree | top-5 agree | max \\|Δp\\| "
                  "| mean \\|Δp\\| | images/s | inferred / cached |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        comps = {c.precision: c for c in m.comparisons if c.reference == ORIGINAL}
        for r in m.runs:
            c = comps.get(r.name)
            lines.append(f"| {r.name} | {r.runtime} | {accuracy_text(r.top1)} | {accuracy_text(r.top5)} | "
                         f"{percent(c.top1_agreement) if c else '–'} | {percent(c.top5_agreement) if c else '–'} | "
                         f"{sci(c.max_abs_prob_delta) if c else '–'} | {sci(c.mean_abs_prob_delta) if c else '–'} | "
                         f"{speed_text(r)} | {r.inferred:,} / {r.cached:,} |")
        if any(r.excluded for r in m.runs):
            lines += [""] + [f"- {excluded_text(r)}" for r in m.runs if r.excluded]
        others = [c for c in m.comparisons if c.reference != ORIGINAL]
        if others:
            lines += ["", "Compared with the run they were made from:"] + [f"- {comparison_text(c)}" for c in others]
        if m.references:
            lines += ["", "References:"] + [f"- {md_text(reference_text(r))}" for r in m.references]
        lines += ["", f"Checks ({decided_text(m)}):"]
        lines += [f"- **{md_text(check_text(c))}**" if c.failed else f"- {md_text(check_text(c))}"
                  for c in m.checks if c.applies]
        lines += [f"- *{md_text(check_text(c))}*" for c in m.checks if not c.applies]
        lines += [] if m.checks else ["- none"]
        computed = run_notes(m)
        if computed:
            lines += ["", "Execution precision:"] + [f"- {md_text(t)}" for t in computed]
        if m.explanations:
            lines += ["", "Where runs depart from the original (`omzconv diff`):"]
            lines += [f"- {md_text(explanation_text(e))}" + (f" — [diff page]({e.page})" if e.page else "")
                      + (f"; {md_code(e.command)}" if e.page else "") for e in m.explanations]
        if m.execution is not None:
            lines += ["", f"Verified in {m.seconds:.1f} s {md_text(execution_text(m.execution))}."]
    lines += ["", "Notes:"] + [f"- {md_text(n)}" for n in report.notes]
    return "\n".join(lines) + "\n"
