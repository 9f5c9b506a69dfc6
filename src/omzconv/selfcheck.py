"""What a converted model is checked against right after conversion.

The reference is the original network's output, in TensorFlow, on a few deterministic
natural-looking images. Freeze records it beside the graph from the session it freezes, where the
checkpoint is already restored (`<name>.frozen.selfcheck.npz`, keyed by the graph's hash), so
converting needs no TensorFlow; a graph that omzconv did not freeze gets its reference computed
from the frozen graph on first use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from omzconv.errors import GraphError
from omzconv.fileutil import atomic_path
from omzconv.registry import Model

CHECK_IMAGES = 4
CHECK_SEED = 20160909


def check_images(model: Model) -> np.ndarray:
    """The self-check images: float32 N x H x W x 3 RGB, whole pixel values (so a u8 IR sees the
    very same input)."""
    from omzconv.procedural import natural_images

    return natural_images(CHECK_IMAGES, model.preprocessing.size, seed=CHECK_SEED).astype(np.float32)


def reference_path(pb_path: Path) -> Path:
    return pb_path.with_suffix(".selfcheck.npz")


def _key(pb_sha256: str, outputs: Sequence[str], images: np.ndarray) -> str:
    return json.dumps({"graph": pb_sha256, "outputs": list(outputs), "images": [CHECK_SEED, *images.shape]})


def record_reference(model: Model, pb_path: Path, pb_sha256: str, outputs: Sequence[str],
                     values: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Store `values` (the outputs on `check_images(model)`) beside the frozen graph; without
    them, run the frozen graph on the check images first."""
    from omzconv.runners import TFRunner

    images = check_images(model)
    result = values
    if result is None:
        runner = TFRunner(model, outputs, pb_path=pb_path)
        try:
            result = runner.run(images)
        finally:
            runner.close()
    with atomic_path(reference_path(pb_path)) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=np.array(_key(pb_sha256, outputs, images)),
                 **{f"out{i}": result[o] for i, o in enumerate(outputs)})
    return result


def reference_outputs(model: Model, pb_path: Path, pb_sha256: str, outputs: Sequence[str]) -> dict[str, np.ndarray]:
    """The recorded reference if it matches this graph and outputs, else a freshly computed one."""
    path = reference_path(pb_path)
    if path.is_file():
        with np.load(path) as stored:
            if str(stored["key"]) == _key(pb_sha256, outputs, check_images(model)):
                return {o: stored[f"out{i}"] for i, o in enumerate(outputs)}
    return record_reference(model, pb_path, pb_sha256, outputs)


@lru_cache(maxsize=1)
def _node_list_type() -> type:
    """A protobuf message that reads just GraphDef.node[].name/.op (fields 1 and 2 of NodeDef,
    field 1 of GraphDef) — enough to check a .pb without importing TensorFlow."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="omzconv_graph_nodes.proto", package="omzconv")
    node = fdp.message_type.add(name="Node")
    node.field.add(name="name", number=1, type=9, label=1)  # string, optional
    node.field.add(name="op", number=2, type=9, label=1)
    graph = fdp.message_type.add(name="Graph")
    graph.field.add(name="node", number=1, type=11, label=3, type_name=".omzconv.Node")  # repeated
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("omzconv.Graph"))


def graph_nodes(pb_path: Path) -> dict[str, str]:
    """Node name → op type of a frozen graph; GraphError if the file is not a GraphDef."""
    try:
        data = Path(pb_path).read_bytes()
    except OSError as exc:
        raise GraphError(f"cannot read frozen graph {pb_path}: {exc.strerror or exc}") from exc
    graph = _node_list_type()()
    try:
        graph.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise GraphError(f"{pb_path} is not a TensorFlow GraphDef (.pb): {exc}") from exc
    if not graph.node or not all(n.name and n.op for n in graph.node):
        raise GraphError(f"{pb_path} is not a TensorFlow GraphDef (.pb): it has no nodes")
    return {n.name: n.op for n in graph.node}
