"""`omzconv verify`'s result on the terminal: a table per model, its checks, how each run was
computed and where failed runs depart from the original, and a summary line per model."""

from __future__ import annotations

from rich.markup import escape

from omzconv.cli.ui import HEAD_RULE, say, stdout


def _say(text: str, style: str = "", indent: int = 2) -> None:
    """A line of the result (file names in it shown with their control characters escaped)."""
    from omzconv.verify import printable

    say(printable(text), style, indent)


def render(report, report_dir=None) -> None:
    """One small table per model, a row per run, sized for an 80-column terminal (the JSON and the
    report files hold the rest: top-5 agreement, mean |Δp|, top-5 intervals, timings); then the
    checks, which decided the verdict and which did not apply; and, for several models, one line
    per model. A diff page is shown as a path in `report_dir`, where the report is."""
    from pathlib import Path

    from rich.table import Table

    from omzconv.verify import (ORIGINAL, accuracy_text, check_text, compared_text, comparison_text, computed_text,
                                cpu_text, decided_text, excluded_text, execution_text, explanation_text, kept_text,
                                percent, plural, reference_text, selection_text)

    d = report.dataset
    _say(f"Verify on {d.name}: {selection_text(d)}", "bold", 0)
    if report.synthetic:
        stdout.print("[bold white on red] SYNTHETIC WEIGHTS [/] accuracy figures are meaningless; "
                     "only the agreement between original and converted means something.")
    if report.cpu_default:
        _say(cpu_text(report), "" if report.cpu_default == "f32" else "bold yellow", 0)
    styles = {"PASSED": "green", "FAILED": "red", "INTERRUPTED": "yellow"}
    for m in report.models:
        comparisons = {c.precision: c for c in m.comparisons if c.reference == ORIGINAL}
        verdict = f"[{styles[m.verdict]}]{m.verdict}[/]"
        table = Table(title=f"{escape(m.model)}: {verdict}, {compared_text(m)}, {m.weights} weights",
                      title_justify="left", header_style="bold", box=HEAD_RULE, show_edge=False,
                      pad_edge=False, padding=(0, 0, 0, 2))
        for column in ("run", "run\nnow", "cached", "top-1 %\n(95 % CI)", "top-5\n%", "same\ntop-1 %",
                       "max\n|Δp|", "img/s"):
            table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
        for r in m.runs:
            c = comparisons.get(r.name)
            speed = "–" if r.images_per_second is None else f"{r.images_per_second:.1f}" + (
                "*" if r.speed_source == "cache" else "")
            table.add_row(r.name, f"{r.inferred:,}", f"{r.cached:,}", accuracy_text(r.top1, 1, unit=""),
                          "–" if r.top5.value is None else f"{r.top5.value * 100:.1f}",
                          percent(c.top1_agreement, 1, unit="") if c else "",
                          f"{c.max_abs_prob_delta:.1e}" if c and c.max_abs_prob_delta is not None else "", speed)
        stdout.print(table)
        if any(r.speed_source == "cache" for r in m.runs):
            _say("* img/s measured when the cached images ran")
        _say(f"output {m.output} ({m.output_kind})")
        if m.execution is not None and m.execution.executor != "in-process":
            _say(f"ran {execution_text(m.execution)}")
        if m.skipped.count:
            first = m.skipped.first[0]
            _say(f"{plural(m.skipped.count, 'image')} skipped (first: {first.path}: {first.reason})")
        _say(f"{m.verdict}: {decided_text(m)}", styles[m.verdict])
        for check in m.checks:
            _say(check_text(check), "bold red" if check.failed else "green" if check.applies else "dim", 4)
        for r in m.runs:
            if r.runtime == "openvino" and "@" in r.name:
                _say(computed_text(r), "" if r.executed == r.inference_precision else "yellow")
            if r.kept:
                _say(kept_text(r))
        for e in m.explanations:
            _say(explanation_text(e), "red" if e.why == "failed" else "")
            if e.page:
                _say(f"diff page: {Path(report_dir or '.') / e.page}", indent=4)
        for r in m.runs:
            if r.excluded:
                _say(excluded_text(r))
        for c in m.comparisons:
            if c.reference != ORIGINAL:
                _say(comparison_text(c))
        for ref in m.references:
            _say(f"reference: {reference_text(ref)}", "" if ref.applied else "dim")
    if d.skipped.count:
        _say(f"{plural(d.skipped.count, 'listed image')} skipped (missing or label out of range), first: "
             + "; ".join(f"{p.path} ({p.reason})" for p in d.skipped.first), indent=0)
    if len(report.models) > 1:
        _summary(report)
    stdout.print(f"Result: [bold {styles[report.verdict]}]{report.verdict}[/]")


def _summary(report) -> None:
    """One line per model: its verdict and each IR's top-1 agreement with the original."""
    from rich.table import Table

    from omzconv.verify import ORIGINAL, percent

    precisions = list(dict.fromkeys(c.precision for m in report.models for c in m.comparisons
                                    if c.reference == ORIGINAL))
    _say("Summary: each model's verdict, and the top-1 agreement of each IR with the original", "bold", 0)
    table = Table(header_style="bold", box=HEAD_RULE, show_edge=False, pad_edge=False, padding=(0, 0, 0, 2))
    table.add_column("model", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for precision in precisions:
        table.add_column(precision, justify="right", no_wrap=True)
    for m in report.models:
        agree = {c.precision: c.top1_agreement for c in m.comparisons if c.reference == ORIGINAL}
        table.add_row(escape(m.model), m.verdict, *(percent(agree[p], 1) if p in agree else "–" for p in precisions))
    stdout.print(table)
