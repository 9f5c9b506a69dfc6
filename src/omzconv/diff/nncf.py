"""An INT8 run's ranking next to what NNCF's accuracy control reverted to float.

`omzconv quantize --max-drop` records in the INT8 IR's sidecar which ops
`nncf.quantize_with_accuracy_control` returned to float (`accuracy_control.reverted`, IR friendly
names, read from NNCF's log: see `omzconv.nncf_reverted`). Here each of those ops is placed in the
diff layer it belongs to (the layer's op, its affine tail and their constants) and that layer's
rank in diff's ranking (the error it adds, largest first) — two independent opinions of which
layers quantization hurts, side by side.
"""

from __future__ import annotations

from typing import Any

from omzconv.diff.compare import RunDiff
from omzconv.diff.report import worst
from omzconv.fileutil import read_json
from omzconv.workspace import SIDECAR

TOP = 5  # diff's top-ranked layers listed beside NNCF's choice


def nncf_reverted(run: RunDiff) -> dict[str, Any] | None:
    """None unless `run` is an INT8 IR quantized with accuracy control; else what NNCF reverted
    (`reverted`: None when NNCF's log did not say), each op with its diff layer and rank."""
    if run.spec.precision != "INT8":
        return None
    control = (read_json(run.spec.xml.parent / SIDECAR) or {}).get("accuracy_control")
    if not control:
        return None
    ranked = worst(run, count=len(run.layers))
    result: dict[str, Any] = {"max_drop_pp": control.get("max_drop_pp"), "quantized_ops": control.get("quantized_ops"),
                              "ranked_layers": len(ranked),
                              "diff_top": [{"tf_node": e.layer.tf_node, "gain": e.gain} for e in ranked[:TOP]],
                              "reverted": None}
    if control.get("reverted") is None:
        return result
    from omzconv.diff.match import ov_graph
    from omzconv.ovcompat import import_openvino
    from omzconv.repair.mark import layer_ops

    g = ov_graph(import_openvino().Core().read_model(str(run.spec.xml)))
    by_label = {node.label: name for name, node in g.nodes.items()}
    owner: dict[str, tuple[int, Any]] = {}
    for rank, e in enumerate(ranked, 1):
        if e.layer.ov_label in by_label:
            for op in layer_ops(g, by_label[e.layer.ov_label]):
                owner.setdefault(g.nodes[op].label, (rank, e))
    result["reverted"] = [
        {"ir_op": op, "tf_node": owner[op][1].layer.tf_node, "diff_rank": owner[op][0], "gain": owner[op][1].gain}
        if op in owner else {"ir_op": op, "tf_node": None, "diff_rank": None, "gain": None}
        for op in control["reverted"]]
    return result
