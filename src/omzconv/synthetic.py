"""Synthetic checkpoints in the official layout, for running the whole pipeline offline.

THESE WEIGHTS ARE SYNTHETIC AND RECOGNIZE NOTHING. They are random numbers, calibrated so that
the network *behaves* like a trained one — different images get different, confident top-1
classes spread over all 1001 — which is what freezing, converting and comparing TensorFlow with
OpenVINO need. Their "predictions" mean nothing; accuracy against ImageNet labels is chance.

``make_synthetic_archive`` writes a ``.tar.gz`` shaped like the official download: one member at
the archive root named like the official checkpoint (``inception_v4.ckpt``,
``inception_resnet_v2_2016_08_30.ckpt``), a single-file V1 checkpoint holding every variable of
the official network (same names and shapes) plus ``global_step`` (int64 scalar), nothing else.

How the weights are made (REFERENCE.md §6; plain random weights give the same class for every
image):

1. every variable is drawn in NumPy from its own stream, seeded by ``(seed, variable name)``:
   conv and fully-connected weights He-normal (truncated at 2 sigma), biases 0, BatchNorm
   ``beta`` 1.0 (keeps most ReLUs active and out of the chaotic regime), moving mean 0 and
   variance 1;
2. BatchNorm calibration: a training-mode copy of the network sharing the variables (decay 0,
   moving statistics updated in place) runs once on a batch of procedural images
   (``omzconv.procedural.natural_images``). Every layer then holds the statistics of exactly
   what it sees in inference mode on that batch, layer after layer;
3. classifier calibration: for each head (main ``Logits`` and ``AuxLogits``), with ``f`` the
   pre-logits features of more procedural images, ``W' = W * 3 / sigma_c`` and
   ``b' = -mean(f) @ W'``, where ``sigma_c`` is the per-class std of the centred logits. Every
   class's logit then has mean 0 and std 3 over such images.

Everything is seeded and TensorFlow's op determinism is on during the calibration runs, so the
same seed gives the same checkpoint bytes on the same machine and TensorFlow build (and the
archive is written with fixed tar metadata and gzip mtime 0, so it is byte-identical too).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omzconv.fileutil import atomic_path, held_temp_dir, remove_stale_temps
from omzconv.registry import Model

BN_IMAGES = 32  # one training-mode batch: its statistics become the moving mean / variance
HEAD_IMAGES = 64  # images whose pre-logits features centre and scale the classifiers
HEAD_BATCH = 16
LOGIT_STD = 3.0  # per-class std of the calibrated logits
BETA = 1.0
GZIP_LEVEL = 1  # float noise barely compresses; level 9 would triple the archiving time
LSUV_IMAGES = 16  # images on which each layer of a network without BatchNorm gets unit variance
LINEAR_OPS = ("Conv2D", "MatMul", "DepthwiseConv2dNative")
_BN_SEED, _HEAD_SEED, _LSUV_SEED = 1, 2, 3  # image streams derived from the seed, kept apart
STAGES = ("building graph", "initializing weights", "calibrating BatchNorm", "scaling layers to unit variance",
          "calibrating classifiers", "writing checkpoint", "freezing the synthetic checkpoint",
          "archiving")  # what on_stage reports, in order (a model takes the ones its network needs)


@dataclass(frozen=True)
class HeadCalibration:
    """One classifier head after calibration, measured on the calibration images."""

    name: str  # end point, "Logits" or "AuxLogits"
    variables: str  # scope of its weights and biases
    distinct_top1: int
    images: int


@dataclass(frozen=True)
class SyntheticCheckpoint:
    path: Path
    seed: int
    variables: int  # network variables, global_step not counted
    parameters: int  # numbers stored in those variables, BatchNorm statistics included
    heads: tuple[HeadCalibration, ...]
    seconds: dict[str, float] = field(default_factory=dict)


def make_synthetic_archive(
    model: Model,
    archive_path: Path,
    *,
    seed: int = 0,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> Path:
    """Write a synthetic stand-in for `model`'s official archive to `archive_path`.

    For `source: checkpoint` the archive holds the checkpoint; for `source: frozen_graph` it holds
    the graph frozen from a synthetic checkpoint with the authors' node names (every declared
    output), plus that checkpoint if the official archive has one. The archive appears only when
    complete (temp sibling, then rename). Returns `archive_path`. The weights are synthetic and
    recognize nothing (see the module docstring).
    """
    archive_path = Path(archive_path)
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(archive_path)  # what a killed generation left
    with held_temp_dir(archive_path) as tmp:
        checkpoint = tmp / (model.checkpoint or f"{model.name}.ckpt")
        write_synthetic_checkpoint(model, checkpoint, seed=seed, on_stage=on_stage)
        members = [(checkpoint, model.checkpoint)] if model.checkpoint else []
        if model.source == "frozen_graph":
            from omzconv.freeze import frozen_graph_def

            on_stage("freezing the synthetic checkpoint")
            graph = tmp / model.frozen_graph
            graph_def = frozen_graph_def(model, checkpoint, [o.name for o in model.outputs])
            graph.write_bytes(graph_def.SerializeToString(deterministic=True))
            del graph_def
            members = [(graph, model.frozen_graph), *members]
        on_stage("archiving")
        with atomic_path(archive_path) as part:
            write_tar_gz(part, members)
    return archive_path


def write_tar_gz(path: Path, members: list[tuple[Path, str]]) -> None:
    """`path` := a gzipped tar of the files `members` (file, name in the archive), reproducible
    metadata."""
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
    ) as gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for member, arcname in members:
            info = tarfile.TarInfo(arcname)
            info.size = member.stat().st_size
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(member, "rb") as f:
                tar.addfile(info, f)


@dataclass(frozen=True, eq=False)
class _Layer:
    """A conv / fully-connected layer of the inference graph: its weights and what it computes."""

    weights: Any  # tf.Variable
    output: Any  # the layer's linear output (before bias and activation)
    features: Any  # its input


def write_synthetic_checkpoint(
    model: Model,
    path: Path,
    *,
    seed: int = 0,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> SyntheticCheckpoint:
    """Write a synthetic single-file V1 checkpoint for `model` to `path` (see module docstring)."""
    from omzconv.nets import get_network
    from omzconv.procedural import natural_images
    from omzconv.tfcompat import import_tf, session_config

    tf = import_tf()
    path = Path(path)
    seconds: dict[str, float] = {}
    clock = _Clock(seconds)
    size = model.size
    build = get_network(model.network)
    params = dict(model.network_params)

    on_stage("building graph")
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [None, size, size, 3], name=model.input.name)
        build(images, num_classes=model.num_classes, is_training=False, **params)
        network_variables = tf.global_variables()
        layers = _linear_layers(graph.get_operations(), network_variables)
        heads = [layer for layer in layers if layer.weights.shape.as_list()[-1] == model.num_classes]
        if not heads:
            raise RuntimeError(f"{model.name}: no classifier layer with {model.num_classes} outputs found")
        has_batch_norm = any(v.op.name.endswith("/moving_variance") for v in network_variables)
        batch_norm_reach = None
        if has_batch_norm:
            # The training-mode copy: same variables; each BatchNorm sets its moving statistics to
            # the batch statistics (decay 0) whenever it runs. Running the copy's moving-statistics
            # updates reaches every BatchNorm in one run, and nothing past them (no dropout).
            first = len(graph.get_operations())
            calibration_images = tf.placeholder(tf.float32, [None, size, size, 3], name="calibration_input")
            build(calibration_images, num_classes=model.num_classes, is_training=True, reuse=True,
                  batch_norm_decay=0.0, **params)
            if len(tf.global_variables()) != len(network_variables):
                raise RuntimeError("the training-mode copy of the network created variables of its own")
            updates = [op for op in graph.get_operations()[first:] if "Assign" in op.type]
            batch_norm_reach = tf.group(*updates)
        global_step = tf.train.get_or_create_global_step()
        assigns, feeds = _assign_ops(tf, network_variables + [global_step])
        saver = tf.train.Saver(var_list={v.op.name: v for v in network_variables + [global_step]},
                               write_version=tf.train.SaverDef.V1, sharded=False)
    graph.finalize()
    clock.lap("build")

    with _op_determinism(), tf.Session(graph=graph, config=session_config()) as sess:
        on_stage("initializing weights")
        values = {v.op.name: initial_value(v.op.name, v.shape.as_list(), seed) for v in network_variables}
        values[global_step.op.name] = np.int64(0)
        sess.run(assigns, {feeds[name]: value for name, value in values.items()})
        del values
        clock.lap("initialize")

        if has_batch_norm:
            on_stage("calibrating BatchNorm")
            batch = _network_input(model, natural_images(BN_IMAGES, size, _stream(seed, _BN_SEED)))
            sess.run(batch_norm_reach, {calibration_images: batch})
            _check_bn_calibrated(sess, network_variables)
            clock.lap("calibrate_bn")
        else:
            on_stage("scaling layers to unit variance")
            batch = _network_input(model, natural_images(LSUV_IMAGES, size, _stream(seed, _LSUV_SEED)))
            for layer in layers:
                if layer in heads:
                    continue
                std = float(np.std(sess.run(layer.output, {images: batch}), dtype=np.float64))
                name = layer.weights.op.name
                sess.run(assigns[name], {feeds[name]: sess.run(layer.weights) / np.float32(std or 1.0)})
            clock.lap("scale_layers")

        on_stage("calibrating classifiers")
        pictures = natural_images(HEAD_IMAGES, size, _stream(seed, _HEAD_SEED))
        features: list[list[np.ndarray]] = [[] for _ in heads]
        for start in range(0, HEAD_IMAGES, HEAD_BATCH):
            batch = _network_input(model, pictures[start : start + HEAD_BATCH])
            out = sess.run([head.features for head in heads], {images: batch})
            for collected, f in zip(features, out):
                collected.append(f.reshape(len(batch), -1))
        by_name = {v.op.name: v for v in network_variables}
        calibrated, new_values = [], {}
        for head, collected in zip(heads, features):
            scope = head.weights.op.name.rsplit("/", 1)[0]
            weights_var, biases_var = head.weights, by_name[f"{scope}/biases"]
            weights = sess.run(weights_var)
            f = np.concatenate(collected).astype(np.float64)
            if f.shape[1] != int(np.prod(weights.shape[:-1])):
                raise RuntimeError(f"{scope}: {f.shape[1]} features for weights of shape {list(weights.shape)}")
            new_w, new_b = calibrate_classifier(f, weights.reshape(f.shape[1], -1).astype(np.float64))
            new_values[weights_var.op.name] = new_w.reshape(weights.shape).astype(np.float32)
            new_values[biases_var.op.name] = new_b.astype(np.float32)
            top1 = np.argmax(f @ new_w + new_b, axis=1)
            calibrated.append(HeadCalibration(scope.rsplit("/", 1)[-1], scope, len(np.unique(top1)), len(f)))
        sess.run([assigns[n] for n in new_values], {feeds[n]: v for n, v in new_values.items()})
        clock.lap("calibrate_heads")

        on_stage("writing checkpoint")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as part:
            _save_v1(saver, sess, part)
        clock.lap("save")

    parameters = sum(int(np.prod(v.shape.as_list())) for v in network_variables)
    return SyntheticCheckpoint(path, seed, len(network_variables), parameters, tuple(calibrated), seconds)


def _linear_layers(ops: list[Any], variables: list[Any]) -> list[_Layer]:
    """Every conv / fully-connected layer of the graph in `ops`, in the order of its weights among
    `variables` (creation order: input to output)."""
    order = {v.op.name: i for i, v in enumerate(variables)}
    by_name = {v.op.name: v for v in variables}
    found: dict[str, _Layer] = {}
    for op in ops:
        if op.type not in LINEAR_OPS:
            continue
        source = op.inputs[1].op
        while source.type in ("Identity", "ReadVariableOp") and source.inputs:  # weights/read
            source = source.inputs[0].op
        if source.name in by_name and source.name not in found:
            found[source.name] = _Layer(by_name[source.name], op.outputs[0], op.inputs[0])
    return [found[name] for name in sorted(found, key=order.__getitem__)]


# --- pieces -------------------------------------------------------------------------------------


def initial_value(name: str, shape: list[int], seed: int) -> np.ndarray:
    """The value variable `name` starts with, from a stream seeded by (seed, name); float32."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "beta":
        return np.full(shape, BETA, np.float32)
    if leaf in ("moving_mean", "biases"):
        return np.zeros(shape, np.float32)
    if leaf in ("moving_variance", "gamma"):
        return np.ones(shape, np.float32)
    if leaf not in ("weights", "depthwise_weights", "pointwise_weights"):
        raise ValueError(f"no synthetic initializer for variable {name} {shape}")
    # A depthwise filter [h, w, in, multiplier] sees h * w inputs per output.
    fan_in = int(np.prod(shape[:2] if leaf == "depthwise_weights" else shape[:-1]))
    rng = np.random.default_rng(_stream(seed, name))
    # He-normal truncated at 2 sigma (the truncation shrinks the std by 0.88: compensate).
    std = np.sqrt(2.0 / fan_in) / 0.8796
    w = rng.standard_normal(shape, dtype=np.float32)
    outside = np.abs(w) > 2
    while outside.any():
        w[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
        outside = np.abs(w) > 2
    w *= np.float32(std)
    return w


def calibrate_classifier(features: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W', b') giving every class's logit mean 0 and std LOGIT_STD over `features` [N, D]."""
    mean = features.mean(axis=0)
    centred = (features - mean) @ weights
    sigma = centred.std(axis=0)
    sigma = np.where(sigma > 0, sigma, 1.0)
    new_weights = weights * (LOGIT_STD / sigma)
    return new_weights, -(mean @ new_weights)


def _stream(seed: int, key: str | int) -> int:
    """A 64-bit seed derived from (seed, key), stable across runs and platforms."""
    digest = hashlib.sha256(f"omzconv.synthetic:{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _network_input(model: Model, pictures: np.ndarray) -> np.ndarray:
    from omzconv.preprocess import to_nhwc_normalized

    p = model.preprocessing
    return to_nhwc_normalized(pictures.astype(np.float32), p.mean, p.scale)


def _assign_ops(tf: Any, variables: list[Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One assign op per variable, fed by its own placeholder (no weights baked into the graph)."""
    assigns, feeds = {}, {}
    for v in variables:
        name = v.op.name
        feeds[name] = tf.placeholder(v.dtype.base_dtype, v.shape, name=f"synthetic_value/{name}")
        assigns[name] = tf.assign(v, feeds[name]).op
    return assigns, feeds


def _check_bn_calibrated(sess: Any, variables: list[Any]) -> None:
    """Every BatchNorm must have been reached by the calibration run."""
    moving = [v for v in variables if v.op.name.endswith("/moving_variance")]
    untouched = [v.op.name for v, value in zip(moving, sess.run(moving)) if np.all(value == 1.0)]
    if untouched:
        raise RuntimeError(f"BatchNorm calibration missed {len(untouched)} layers, e.g. {untouched[0]}")


def _save_v1(saver: Any, sess: Any, path: Path) -> None:
    """Save to exactly one file at `path` (V1); anything else TF writes beside it is removed."""
    workdir = Path(tempfile.mkdtemp(prefix=".v1-", dir=path.parent))
    try:
        target = workdir / "model.ckpt"
        saver.save(sess, str(target), write_meta_graph=False, write_state=False)
        written = sorted(p.name for p in workdir.iterdir())
        if written != [target.name]:
            raise RuntimeError(f"expected a single-file V1 checkpoint, TensorFlow wrote {written}")
        os.replace(target, path)
    finally:
        for p in workdir.iterdir():
            p.unlink()
        workdir.rmdir()


@contextmanager
def _op_determinism() -> Iterator[None]:
    """TensorFlow op determinism on for the duration, then back to what it was.

    TF 2 exports only ``tf.config.experimental.enable_op_determinism``; reading and resetting
    the switch needs its module. Without it, calibration simply runs as TensorFlow is set up.
    """
    try:
        from tensorflow.python.framework import config

        was_on = config.is_op_determinism_enabled()
        enable, disable = config.enable_op_determinism, config.disable_op_determinism
    except (ImportError, AttributeError):
        yield
        return
    enable()
    try:
        yield
    finally:
        if not was_on:
            disable()


class _Clock:
    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds, self.last = seconds, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self.last, 3)
        self.last = now
