"""What `omzconv diff` found, as data: per run the matched layers' errors, the first layer whose
error exceeds the threshold, and the layers that add the most error. Serializes to JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omzconv.diff.compare import LayerError, RunDiff
from omzconv.diff.match import describe_unmatched

THRESHOLD = 0.01  # relative error that counts as divergence (1 %)
WORST = 10


@dataclass(frozen=True)
class DiffReport:
    model: str
    weights: str  # official, synthetic, custom
    images: int
    image_source: str  # "procedural (seed S)" or the dataset directory
    threshold: float
    runs: tuple[RunDiff, ...]
    tool: str


def first_divergence(run: RunDiff, threshold: float) -> LayerError | None:
    """The first layer, in the original's topological order, whose relative error exceeds `threshold`."""
    return next((e for e in run.layers if e.rel_error > threshold), None)


def worst(run: RunDiff, count: int = WORST) -> list[LayerError]:
    """The layers that add the most error (error after ÷ the error of their inputs), largest first;
    the output itself excluded (it is its last layer again)."""
    return sorted((e for e in run.layers if e.layer.kind != "output"), key=lambda e: -e.gain)[:count]


def output_error(run: RunDiff) -> LayerError | None:
    return next((e for e in run.layers if e.layer.kind == "output"), None)


def _layer(e: LayerError) -> dict[str, Any]:
    return {"index": e.layer.index, "tf_node": e.layer.tf_node, "tf_tensor": e.layer.tf_tensor, "kind": e.layer.kind,
            "ir_op": e.layer.ov_label, "ir_port": e.layer.ov_port, "shape": list(e.layer.shape),
            "rel_error": e.rel_error, "cosine": e.cosine, "max_abs_delta": e.max_abs, "rms": e.scale,
            "error_before": e.before, "gain": e.gain}


def _nncf(run: RunDiff) -> dict[str, Any]:
    from omzconv.diff.nncf import nncf_reverted

    found = nncf_reverted(run)
    return {"nncf_reverted": found} if found is not None else {}


def to_dict(report: DiffReport) -> dict[str, Any]:
    runs = []
    for run in report.runs:
        first = first_divergence(run, report.threshold)
        m = run.matching
        runs.append({
            "run": run.spec.name, "precision": run.spec.precision, "ir": str(run.spec.xml),
            "inference_precision": {"requested": run.spec.inference_precision, "executed": run.executed_in},
            "matching": {"tf_layers": m.tf_layers, "ir_layers": m.ov_layers,
                         "matched": len([x for x in m.layers if x.kind != "output"]),
                         "fraction": m.fraction, "unmatched": m.unmatched, "unmatched_summary": describe_unmatched(m),
                         "ir_unmatched": len(m.ov_unmatched)},
            "first_divergence": _layer(first) if first else None,
            "worst": [_layer(e) for e in worst(run)],
            "layers": [_layer(e) for e in run.layers],
            "groups": run.groups, "seconds": round(run.seconds, 3),
            **_nncf(run),
        })
    return {"tool": report.tool, "model": report.model, "weights": report.weights, "images": report.images,
            "image_source": report.image_source, "threshold": report.threshold, "runs": runs}
