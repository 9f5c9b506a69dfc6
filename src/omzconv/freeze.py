"""Checkpoint → TensorFlow frozen graph (the only stage that needs the network definitions).

`freeze()` builds the model's network in inference mode, restores exactly the network's
variables from a V1 single-file or V2 (.index/.data) checkpoint, turns them into constants and
writes `<name>.frozen.pb` with deterministic bytes, atomically, plus a `<name>.frozen.json`
sidecar recording what it was frozen from. An up-to-date, intact graph is not frozen again.
Reading the checkpoint (its files, its variables, the restore) is `omzconv.checkpoint`'s.

`adopt()` is the same stage for a model whose authors ship the frozen graph (`source:
frozen_graph` in models.yaml): it checks their graph (no variables left, the declared input and
outputs exist with the declared shapes), records the self-check reference from it and puts its
bytes, unchanged, at the frozen path, with the same sidecar.
"""

from __future__ import annotations

import difflib
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omzconv import __version__
from omzconv.checkpoint import check_checkpoint, checkpoint_digest, checkpoint_files, restore
from omzconv.errors import GraphError
from omzconv.fileutil import file_digest, read_json, write_bytes_atomic, write_json_atomic
from omzconv.integrity import changed, stamp, unchanged
from omzconv.registry import Model
from omzconv.preprocess import to_nhwc_normalized
from omzconv.selfcheck import check_images, record_reference

VARIABLE_OPS = {"Variable", "VariableV2", "VarHandleOp", "ReadVariableOp"}
AUTHORS = "authors"  # network_source of a frozen graph the model's authors ship
Builder = Callable[..., tuple[Any, dict[str, Any]]]  # build(images, num_classes=, is_training=)


@dataclass(frozen=True)
class FreezeResult:
    model: str
    path: Path
    outputs: tuple[str, ...]
    skipped: bool
    weights: str  # official, synthetic or custom
    seconds: float
    size: int
    nodes: int


def sidecar_path(pb_path: Path) -> Path:
    return pb_path.with_suffix(".json")


def is_up_to_date(pb_path: Path, source_sha: str, outputs: Sequence[str], weights: str,
                  network_source: str) -> bool:
    """True when the frozen graph exists, is intact (see `omzconv.integrity`; a damaged one is
    said), and came from the same inputs and version (`source_sha`: of the checkpoint, or of the
    authors' graph)."""
    meta = read_json(sidecar_path(pb_path))
    if not meta or not pb_path.is_file():
        return False
    return (
        meta.get("source_sha256") == source_sha
        and meta.get("outputs") == list(outputs)
        and meta.get("omzconv_version") == __version__
        and meta.get("weights") == weights
        and meta.get("network_source") == network_source
        and unchanged([pb_path], meta, f"frozen graph {pb_path}", "making it again")
    )


def graph_damage(pb_path: Path) -> tuple[str | None, dict | None]:
    """(why the frozen graph is not what its sidecar records, or None; the sidecar, or None if it
    has none). An intact graph whose mtime moved (a copy, a touch) gets its stamp renewed, so the
    next check reads nothing but the sidecar."""
    meta = read_json(sidecar_path(pb_path))
    if not meta or not meta.get("sha256"):
        return None, None
    reason = changed([pb_path], meta)
    if reason is None and pb_path.is_file() and meta.get("stamp") != (now := stamp([pb_path])):
        meta = {**meta, "stamp": now}
        write_json_atomic(sidecar_path(pb_path), meta)
    return reason, meta


def freeze(
    model: Model,
    checkpoint: Path,
    pb_path: Path,
    outputs: Sequence[str] | None = None,
    *,
    weights: str = "official",
    network: Builder | None = None,
    network_source: str = "omzconv",
    force: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> FreezeResult:
    """Freeze `checkpoint` for `model` into `pb_path`; skip if up to date (unless `force`).

    `network` replaces omzconv's own builder for the model (e.g. one from an upstream slim
    checkout); `network_source` names it in the sidecar.
    """
    outputs = tuple(outputs or (o.name for o in model.default_outputs))
    on_stage("hashing checkpoint")
    checkpoint_sha = checkpoint_digest(checkpoint)
    if not force and is_up_to_date(pb_path, checkpoint_sha, outputs, weights, network_source):
        return _up_to_date_result(model, pb_path, outputs)

    started = time.perf_counter()
    timings: dict[str, float] = {}
    graph_def, reference = _frozen_graph_def(model, checkpoint, outputs, network, on_stage, timings)
    on_stage("writing")
    data = graph_def.SerializeToString(deterministic=True)
    write_bytes_atomic(pb_path, data)
    pb_sha256 = "sha256:" + hashlib.sha256(data).hexdigest()
    record_reference(model, pb_path, pb_sha256, outputs, values=reference)
    seconds = time.perf_counter() - started
    _write_sidecar(model, pb_path, outputs, weights, network_source, pb_sha256, len(data), len(graph_def.node),
                   {**timings, "total": round(seconds, 3)}, source="checkpoint", source_sha256=checkpoint_sha,
                   checkpoint=str(checkpoint), checkpoint_sha256=checkpoint_sha)
    return FreezeResult(model.name, pb_path, outputs, False, weights, seconds, len(data), len(graph_def.node))


def adopt(
    model: Model,
    graph_path: Path,
    pb_path: Path,
    outputs: Sequence[str] | None = None,
    *,
    weights: str = "official",
    force: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> FreezeResult:
    """Check the authors' frozen graph at `graph_path` and put it at `pb_path` (bytes unchanged)
    with its sidecar and self-check reference; skip if up to date (unless `force`)."""
    outputs = tuple(outputs or (o.name for o in model.default_outputs))
    on_stage("hashing frozen graph")
    source_sha = "sha256:" + file_digest(graph_path)
    if not force and is_up_to_date(pb_path, source_sha, outputs, weights, AUTHORS):
        return _up_to_date_result(model, pb_path, outputs)
    started = time.perf_counter()
    on_stage("checking the authors' frozen graph")
    nodes = check_frozen_graph(model, graph_path, outputs)
    check_graph_shapes(model, graph_path, outputs)
    on_stage("writing")
    data = Path(graph_path).read_bytes()
    write_bytes_atomic(pb_path, data)
    on_stage("recording the self-check reference")
    record_reference(model, pb_path, source_sha, outputs)
    seconds = time.perf_counter() - started
    _write_sidecar(model, pb_path, outputs, weights, AUTHORS, source_sha, len(data), len(nodes),
                   {"total": round(seconds, 3)}, source="frozen_graph", source_sha256=source_sha,
                   frozen_graph=str(graph_path))
    return FreezeResult(model.name, pb_path, outputs, False, weights, seconds, len(data), len(nodes))


def _up_to_date_result(model: Model, pb_path: Path, outputs: Sequence[str]) -> FreezeResult:
    meta = read_json(sidecar_path(pb_path))
    return FreezeResult(model.name, pb_path, tuple(outputs), True, meta["weights"], 0.0, pb_path.stat().st_size,
                        int(meta.get("nodes", 0)))


def _write_sidecar(model: Model, pb_path: Path, outputs: Sequence[str], weights: str, network_source: str,
                   sha256: str, size: int, nodes: int, seconds: dict[str, float], **origin: str) -> None:
    """`<name>.frozen.json`: what the graph was made from (`origin`: source kind, its hash and path)
    and what it is; `is_up_to_date` reads it back."""
    from omzconv.tfcompat import import_tf

    write_json_atomic(sidecar_path(pb_path), {
        "model": model.name, "network": model.network, "network_source": network_source, "weights": weights,
        **origin,
        "outputs": list(outputs), "input": asdict(model.input), "sha256": sha256, "size": size, "nodes": nodes,
        "stamp": stamp([pb_path]),
        "omzconv_version": __version__, "tensorflow_version": import_tf().__version__, "seconds": seconds,
    })


def check_frozen_graph(model: Model, pb_path: Path, outputs: Sequence[str]) -> dict[str, str]:
    """Raise GraphError unless `pb_path` is a frozen graph (no variables) holding the model's input
    and `outputs`; return its node name → op type (no TensorFlow needed)."""
    from omzconv.selfcheck import graph_nodes

    ops = graph_nodes(pb_path)
    variables = sorted(name for name, op in ops.items() if op in VARIABLE_OPS)
    if variables:
        raise GraphError(f"{pb_path} is not frozen: it still has {len(variables)} variables "
                         f"(e.g. {variables[0]}); run `omzconv freeze` on the checkpoint")
    for name in (model.input.name, *outputs):
        if name not in ops:
            close = difflib.get_close_matches(name, list(ops), n=3, cutoff=0.6)
            hint = f"; names that look close: {', '.join(close)}" if close else ""
            raise GraphError(f"node {name!r} is not in {Path(pb_path).name}{hint}")
    return ops


def check_graph_shapes(model: Model, pb_path: Path, outputs: Sequence[str]) -> None:
    """Raise GraphError unless the graph's input takes the model's [N, S, S, 3] (any batch) and
    every output is [N, num_classes]."""
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    graph_def = tf.GraphDef()
    graph_def.ParseFromString(Path(pb_path).read_bytes())
    with tf.Graph().as_default() as graph:
        tf.import_graph_def(graph_def, name="")
        declared = [None, *model.input.shape[1:]]
        got = graph.get_tensor_by_name(f"{model.input.name}:0").shape
        if got.rank != 4 or not got.is_compatible_with(declared):
            raise GraphError(f"{Path(pb_path).name}: input {model.input.name!r} has shape {got}, "
                             f"the model declares {model.input.shape}")
        for name in outputs:
            shape = graph.get_tensor_by_name(f"{name}:0").shape
            if shape.rank != 2 or not shape.is_compatible_with([None, model.num_classes]):
                raise GraphError(f"{Path(pb_path).name}: output {name!r} has shape {shape}, "
                                 f"expected [N, {model.num_classes}]")


def build_inference_graph(model: Model, graph: Any, batch: int | None = None,
                          network: Builder | None = None) -> tuple[Any, dict[str, Any]]:
    """Build `model`'s network in inference mode into `graph`; return (input placeholder, end points)."""
    from omzconv.nets import get_network
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    shape = list(model.input.shape)
    if batch is not None:
        shape[0] = batch
    with graph.as_default():
        images = tf.placeholder(tf.float32, shape, name=model.input.name)
        if network is not None:
            _, end_points = network(images, num_classes=model.num_classes, is_training=False)
        else:
            _, end_points = get_network(model.network)(images, num_classes=model.num_classes, is_training=False,
                                                       **dict(model.network_params))
    return images, end_points


def frozen_graph_def(model: Model, checkpoint: Path, outputs: Sequence[str]) -> Any:
    """The GraphDef of `model` frozen from `checkpoint` to `outputs` (omzconv's builder)."""
    return _frozen_graph_def(model, checkpoint, outputs, None, lambda stage: None, {})[0]


def _frozen_graph_def(model: Model, checkpoint: Path, outputs: Sequence[str], network: Builder | None,
                      on_stage: Callable[[str], None],
                      timings: dict[str, float]) -> tuple[Any, dict[str, np.ndarray]]:
    from omzconv.tfcompat import import_tf, session_config

    tf = import_tf()
    prefix, _ = checkpoint_files(checkpoint)
    t0 = time.perf_counter()
    on_stage("building graph")
    graph = tf.Graph()
    images, _ = build_inference_graph(model, graph, network=network)
    check_outputs(graph, outputs)
    timings["build"] = round(time.perf_counter() - t0, 3)

    t0 = time.perf_counter()
    on_stage("restoring variables")
    with graph.as_default(), tf.Session(graph=graph, config=session_config()) as sess:
        variables = tf.global_variables()
        check_checkpoint(prefix, {v.op.name: v.shape.as_list() for v in variables}, model.name)
        restore(tf.train.Saver(var_list={v.op.name: v for v in variables}), sess, prefix)
        timings["restore"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        on_stage("recording the self-check reference")
        reference = _run_check_images(model, sess, images, outputs)
        timings["reference"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        on_stage("freezing")
        frozen = tf.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), list(outputs))
    timings["freeze"] = round(time.perf_counter() - t0, 3)
    return frozen, reference


def _run_check_images(model: Model, sess: Any, images: Any, outputs: Sequence[str]) -> dict[str, np.ndarray]:
    """The restored network's outputs on the self-check images, one image per run (the
    placeholder has the model's batch of 1): the reference converted IRs are checked against."""
    pre = model.preprocessing
    x = to_nhwc_normalized(check_images(model), pre.mean, pre.scale)
    fetches = [sess.graph.get_tensor_by_name(f"{o}:0") for o in outputs]
    runs = [sess.run(fetches, {images: x[i:i + 1]}) for i in range(len(x))]
    return {o: np.concatenate([r[k] for r in runs]).astype(np.float32) for k, o in enumerate(outputs)}


def check_outputs(graph: Any, outputs: Sequence[str]) -> None:
    """Raise GraphError for an output node that is not in `graph`, suggesting close names."""
    names = [op.name for op in graph.get_operations()]
    known = set(names)
    for output in outputs:
        if output not in known:
            close = difflib.get_close_matches(output, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise GraphError(f"output node {output!r} is not in the graph{hint}")
