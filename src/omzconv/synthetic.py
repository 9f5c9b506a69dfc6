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

from omzconv.fileutil import atomic_path
from omzconv.registry import Model

BN_IMAGES = 32  # one training-mode batch: its statistics become the moving mean / variance
HEAD_IMAGES = 64  # images whose pre-logits features centre and scale the classifiers
HEAD_BATCH = 16
LOGIT_STD = 3.0  # per-class std of the calibrated logits
BETA = 1.0
GZIP_LEVEL = 1  # float noise barely compresses; level 9 would triple the archiving time
_BN_SEED, _HEAD_SEED = 1, 2  # image streams derived from the seed, kept apart from each other
STAGES = ("building graph", "initializing weights", "calibrating BatchNorm", "calibrating classifiers",
          "writing checkpoint", "archiving")  # what on_stage reports, in order


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
    """Write a synthetic stand-in for `model`'s official checkpoint archive to `archive_path`.

    The archive appears only when complete (temp sibling, then rename). Returns `archive_path`.
    The weights are synthetic and recognize nothing (see the module docstring).
    """
    archive_path = Path(archive_path)
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{archive_path.name}.", dir=archive_path.parent) as tmp:
        checkpoint = Path(tmp) / model.checkpoint
        write_synthetic_checkpoint(model, checkpoint, seed=seed, on_stage=on_stage)
        on_stage("archiving")
        with atomic_path(archive_path) as part:
            write_tar_gz(part, checkpoint, model.checkpoint)
    return archive_path


def write_tar_gz(path: Path, member: Path, arcname: str) -> None:
    """`path` := a gzipped tar of the one file `member` at the root, with reproducible metadata."""
    info = tarfile.TarInfo(arcname)
    info.size = member.stat().st_size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with open(path, "wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
    ) as gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar, open(member, "rb") as f:
        tar.addfile(info, f)


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
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    path = Path(path)
    seconds: dict[str, float] = {}
    clock = _Clock(seconds)
    _, height, width, _ = model.input.shape
    build = get_network(model.network)

    on_stage("building graph")
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [None, height, width, 3], name=model.input.name)
        _, end_points = build(images, num_classes=model.num_classes, is_training=False)
        network_variables = tf.global_variables()
        # The training-mode copy: same variables; each BatchNorm sets its moving statistics to
        # the batch statistics (decay 0) whenever it runs.
        calibration_images = tf.placeholder(tf.float32, [None, height, width, 3], name="calibration_input")
        _, train_points = build(calibration_images, num_classes=model.num_classes, is_training=True,
                                reuse=True, batch_norm_decay=0.0)
        if len(tf.global_variables()) != len(network_variables):
            raise RuntimeError("the training-mode copy of the network created variables of its own")
        global_step = tf.train.get_or_create_global_step()
        assigns, feeds = _assign_ops(tf, network_variables + [global_step])
        heads = [(name, features) for name, features in (("Logits", "PreLogitsFlatten"),
                                                         ("AuxLogits", "AuxPreLogitsFlatten"))
                 if name in end_points]
        saver = tf.train.Saver(var_list={v.op.name: v for v in network_variables + [global_step]},
                               write_version=tf.train.SaverDef.V1, sharded=False)
    graph.finalize()
    clock.lap("build")

    with _op_determinism(), tf.Session(graph=graph) as sess:
        on_stage("initializing weights")
        values = {v.op.name: initial_value(v.op.name, v.shape.as_list(), seed) for v in network_variables}
        values[global_step.op.name] = np.int64(0)
        sess.run(assigns, {feeds[name]: value for name, value in values.items()})
        del values
        clock.lap("initialize")

        on_stage("calibrating BatchNorm")
        batch = _network_input(model, natural_images(BN_IMAGES, height, _stream(seed, _BN_SEED)))
        # Up to the last BatchNorm of each head, short of the (random) training-mode dropout.
        reach = [train_points[name] for name in ("global_pool", "AuxPreLogitsFlatten") if name in train_points]
        sess.run(reach, {calibration_images: batch})
        _check_bn_calibrated(sess, network_variables)
        clock.lap("calibrate_bn")

        on_stage("calibrating classifiers")
        pictures = natural_images(HEAD_IMAGES, height, _stream(seed, _HEAD_SEED))
        features: dict[str, list[np.ndarray]] = {name: [] for name, _ in heads}
        for start in range(0, HEAD_IMAGES, HEAD_BATCH):
            batch = _network_input(model, pictures[start : start + HEAD_BATCH])
            out = sess.run({name: end_points[f] for name, f in heads}, {images: batch})
            for name in features:
                features[name].append(out[name].reshape(len(batch), -1))
        by_name = {v.op.name: v for v in network_variables}
        calibrated, new_values = [], {}
        for name, _ in heads:
            scope = end_points[name].op.name.rsplit("/", 1)[0]
            weights_var, biases_var = by_name[f"{scope}/weights"], by_name[f"{scope}/biases"]
            weights = sess.run(weights_var)
            f = np.concatenate(features[name]).astype(np.float64)
            new_w, new_b = calibrate_classifier(f, weights.astype(np.float64))
            new_values[weights_var.op.name] = new_w.astype(np.float32)
            new_values[biases_var.op.name] = new_b.astype(np.float32)
            top1 = np.argmax(f @ new_w + new_b, axis=1)
            calibrated.append(HeadCalibration(name, scope, len(np.unique(top1)), len(f)))
        sess.run([assigns[n] for n in new_values], {feeds[n]: v for n, v in new_values.items()})
        clock.lap("calibrate_heads")

        on_stage("writing checkpoint")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as part:
            _save_v1(saver, sess, part)
        clock.lap("save")

    parameters = sum(int(np.prod(v.shape.as_list())) for v in network_variables)
    return SyntheticCheckpoint(path, seed, len(network_variables), parameters, tuple(calibrated), seconds)


# --- pieces -------------------------------------------------------------------------------------


def initial_value(name: str, shape: list[int], seed: int) -> np.ndarray:
    """The value variable `name` starts with, from a stream seeded by (seed, name); float32."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "beta":
        return np.full(shape, BETA, np.float32)
    if leaf in ("moving_mean", "biases"):
        return np.zeros(shape, np.float32)
    if leaf == "moving_variance":
        return np.ones(shape, np.float32)
    if leaf != "weights":
        raise ValueError(f"no synthetic initializer for variable {name} {shape}")
    fan_in = int(np.prod(shape[:-1]))
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
