"""Which IR ops make up a layer `omzconv diff` reports, and marking them to stay in f32.

The only mark OpenVINO honours is its C++ runtime attribute `ov::DisableFP16Compression`, written
in an IR as `<rt_info><attribute name="precise" version="0"/></rt_info>` inside a `<layer>`
(`read_model` turns it into the rt_info key `DisablePrecisionConversion_0`; a key set from Python
does nothing and is not saved). So the f32 IR is saved, the attribute written into its XML, and the
result read back and saved with `compress_to_fp16=True`: a marked Constant stays f32, every other
float Constant becomes f16 + a decompressing Convert, exactly as a plain FP16 IR is made. On a CPU
that executes in bf16 (`INFERENCE_PRECISION_HINT`), a marked op also keeps `runtimePrecision` f32.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from omzconv.diff.match import Graph, Layer, Matching
from omzconv.errors import UsageError

PRECISE = "precise"  # the IR name of ov::DisableFP16Compression
RT_KEY = "DisablePrecisionConversion_0"  # what read_model makes of it


def layer_ops(g: Graph, end: str) -> list[str]:
    """The IR ops (unique names) computing the layer whose compared output is op `end`: `end`,
    the affine ops above it up to the layer's own op (a convolution's bias Add, its fused BatchNorm's
    Multiply), and every constant they take (weights, biases, with whatever folds into them)."""
    found: list[str] = []

    def constants(name: str) -> None:
        for src, _ in g.nodes[name].inputs:
            if src not in g.data and src not in found:
                found.append(src)
                constants(src)

    name = end
    while True:
        found.append(name)
        constants(name)
        ins = g.data_inputs(name)
        if g.kind(name) is not None or len(ins) != 1 or g.nodes[name].op not in g.affine:
            return found
        name = ins[0][0]


def weight_ops(g: Graph, ops: Iterable[str]) -> list[str]:
    """Those of `ops` that are constants (not on the data path)."""
    return [name for name in ops if name not in g.data]


def resolve(matching: Matching, names: Sequence[str], model: str) -> list[Layer]:
    """The matched layers the user named: a TensorFlow layer name as `omzconv diff` reports it, in
    full or as its unique tail after a `/` (`Conv2d_3_pointwise/Conv2D`)."""
    layers = [x for x in matching.layers if x.kind != "output"]
    result = []
    for name in names:
        hits = [x for x in layers if x.tf_node == name] or [x for x in layers if x.tf_node.endswith("/" + name)]
        if len(hits) != 1:
            why = "is not a matched layer" if not hits else f"matches {len(hits)} layers"
            raise UsageError(f"--keep-precision: {name!r} {why} of {model}; `omzconv diff {model} -p FP16 --json` "
                             "lists the layers (runs[].layers[].tf_node)")
        if hits[0] not in result:
            result.append(hits[0])
    return result


def mark_xml(xml: bytes, labels: Collection[str]) -> bytes:
    """The IR's XML with the `precise` attribute in each `<layer>` named in `labels` (friendly names)."""
    root = ET.fromstring(xml)
    by_name = {}
    for layer in root.iter("layer"):
        if layer.get("name") in by_name:
            raise ValueError(f"two IR layers are named {layer.get('name')!r}")
        by_name[layer.get("name")] = layer
    missing = sorted(set(labels) - set(by_name))
    if missing:
        raise ValueError(f"no IR layer named {', '.join(missing)}")
    for label in labels:
        layer = by_name[label]
        rt = layer.find("rt_info")
        if rt is None:
            rt = ET.Element("rt_info")
            layer.insert(1 if layer.find("data") is not None else 0, rt)
        if not any(a.get("name") == PRECISE for a in rt.findall("attribute")):
            ET.SubElement(rt, "attribute", name=PRECISE, version="0")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def save_fp16(f32_xml: Path, labels: Collection[str], out_xml: Path, info: dict[str, str] | None = None) -> Any:
    """Save the f32 IR at `f32_xml` as an FP16 IR at `out_xml`, the ops named in `labels` kept f32;
    `info` added to the IR's rt_info under `omzconv`. Returns the ov.Model saved."""
    from omzconv.ovcompat import import_openvino

    ov = import_openvino()
    marked = f32_xml.with_name(f32_xml.stem + ".marked.xml")
    marked.write_bytes(mark_xml(f32_xml.read_bytes(), labels))
    try:
        ov_model = ov.Core().read_model(str(marked), str(f32_xml.with_suffix(".bin")))
    finally:
        marked.unlink()
    for key, value in (info or {}).items():
        ov_model.set_rt_info(value, ["omzconv", key])
    ov.save_model(ov_model, str(out_xml), compress_to_fp16=True)
    return ov_model


def f32_weights(xml_path: Path) -> dict[str, str]:
    """Friendly name → element type of every float Constant in the IR (f32 = kept, f16 = compressed)."""
    from omzconv.ovcompat import import_openvino

    ov_model = import_openvino().Core().read_model(str(xml_path))
    return {op.get_friendly_name(): op.get_element_type().to_string() for op in ov_model.get_ordered_ops()
            if op.get_type_name() == "Constant" and op.get_element_type().is_real()}
