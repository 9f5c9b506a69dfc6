"""Synthetic checkpoints: official layout, determinism, and trained-network-like behaviour.

Each model's archive is built once per session (about a minute each on two cores). The
acceptance check runs the restored inference graph on 100 of the 200 real ImageNet images in
../shared/imagenet-sample (every second one: 100 classes; read in place, never copied into the
project).
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from omzconv.procedural import natural_images
from omzconv.registry import load_registry
from omzconv.synthetic import (
    LOGIT_STD,
    calibrate_classifier,
    initial_value,
    make_synthetic_archive,
)

MODELS = ("inception_v4", "inception_resnet_v2")
# One of each kind the recipe must cover: tf_slim nets with BatchNorm (and gamma: resnet), the VGG
# recipe, a shipped frozen graph, a network without BatchNorm (unit-variance layer scaling).
FAMILY = ("inception_v1", "resnet_v1_50", "inception_v3", "vgg_16")
SAMPLE_IMAGES = 200
EVAL_EVERY = 2  # every second sample image: 100 images of 100 classes, half the TensorFlow time
MIN_DISTINCT_TOP1 = 50  # of those 100 (a degenerate network gives a handful)
MAX_CLASS_SHARE = 0.10
MIN_MEDIAN_MARGIN = 0.01  # p1 - p2 of the softmax, median over the sample images
EVAL_BATCH = 10


# --- fixtures -------------------------------------------------------------------------------------
# The archives and checkpoints are the session's shared synthetic artefacts (tests/conftest.py).


@pytest.fixture(scope="session")
def synthetic_archive(artefacts) -> Callable[[str], Path]:
    def get(model_name: str) -> Path:
        artefacts.checkpoint(model_name)
        return artefacts.workspace.archive_path(artefacts.model(model_name))
    return get


@pytest.fixture(scope="session")
def synthetic_checkpoint(artefacts) -> Callable[[str], Path]:
    return artefacts.checkpoint


@pytest.fixture(scope="session")
def sample_pixels(shared_dir: Path) -> Callable[..., np.ndarray]:
    """Every EVAL_EVERY-th of the 200 sample images after the model's eval crop and resize (RGB, 0..255)."""
    from omzconv.preprocess import prepare

    paths = sorted((shared_dir / "imagenet-sample" / "ILSVRC2012_img_val").glob("*.JPEG"))
    assert len(paths) == SAMPLE_IMAGES
    paths = paths[::EVAL_EVERY]
    cache: dict = {}

    def get(preprocessing) -> np.ndarray:
        if preprocessing not in cache:
            cache[preprocessing] = np.stack([prepare(p, preprocessing) for p in paths])
        return cache[preprocessing]
    return get


# --- procedural images and pure pieces (fast) ---------------------------------------------------


def test_natural_images_shape_and_determinism() -> None:
    a = natural_images(4, 64, seed=7)
    assert a.shape == (4, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, natural_images(4, 64, seed=7))
    np.testing.assert_array_equal(a[:2], natural_images(2, 64, seed=7))  # image i depends on (seed, i)
    assert not np.array_equal(a, natural_images(4, 64, seed=8))


def test_natural_images_look_like_photographs() -> None:
    images = natural_images(24, 299, seed=0).astype(np.float64)
    per_image_std = images.std(axis=(1, 2, 3))
    assert np.all(per_image_std > 10), "flat images"
    assert 70 < images.mean() < 170
    # channels strongly correlated (as in natural scenes), but not grey
    r, b = images[..., 0].ravel(), images[..., 2].ravel()
    assert 0.5 < np.corrcoef(r, b)[0, 1] < 0.99
    # most of the power at low spatial frequencies (1/f-like spectrum), unlike white noise
    lum = images.mean(axis=3)
    power = np.abs(np.fft.rfft2(lum - lum.mean(axis=(1, 2), keepdims=True))) ** 2
    low = power[:, :15, :15].sum() + power[:, -15:, :15].sum()
    assert low / power.sum() > 0.5  # white noise: 0.01
    # images differ from each other
    assert len({img.tobytes() for img in images.astype(np.uint8)}) == len(images)


def test_initial_value_is_seeded_per_variable() -> None:
    name, shape = "InceptionV4/Conv2d_1a_3x3/weights", [3, 3, 3, 32]
    w = initial_value(name, shape, seed=0)
    assert w.dtype == np.float32 and list(w.shape) == shape
    np.testing.assert_array_equal(w, initial_value(name, shape, seed=0))
    assert not np.array_equal(w, initial_value(name, shape, seed=1))
    assert not np.array_equal(w, initial_value("InceptionV4/Conv2d_2a_3x3/weights", shape, seed=0))
    assert abs(w.std() - np.sqrt(2 / 27)) < 0.03  # He normal
    assert np.all(initial_value("X/BatchNorm/beta", [5], seed=0) == 1.0)
    assert np.all(initial_value("X/BatchNorm/gamma", [5], seed=0) == 1.0)
    depthwise = initial_value("X/depthwise/depthwise_weights", [3, 3, 512, 1], seed=0)
    assert abs(depthwise.std() - np.sqrt(2 / 9)) < 0.03  # fan-in 3 x 3 per channel
    pointwise = initial_value("X/pointwise_weights", [1, 1, 24, 64], seed=0)  # separable conv (inception_v2)
    assert abs(pointwise.std() - np.sqrt(2 / 24)) < 0.03
    with pytest.raises(ValueError, match="no synthetic initializer"):
        initial_value("X/alpha", [5], seed=0)


def test_calibrate_classifier_centres_and_scales_each_class() -> None:
    rng = np.random.default_rng(0)
    features = rng.gamma(2.0, 1.0, (50, 40)) + 5.0
    weights = rng.normal(size=(40, 7))
    new_w, new_b = calibrate_classifier(features, weights)
    logits = features @ new_w + new_b
    np.testing.assert_allclose(logits.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(logits.std(axis=0), LOGIT_STD, rtol=1e-9)
    # only a per-class rescaling of W: directions unchanged
    np.testing.assert_allclose(new_w / weights, np.broadcast_to(new_w[:1] / weights[:1], weights.shape))


# --- the archives (slow: built once per session) ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("model_name", MODELS)
def test_archive_is_shaped_like_the_official_one(model_name: str, synthetic_archive: Callable[..., Path]) -> None:
    model = load_registry().model(model_name)
    path = synthetic_archive(model_name)
    assert path.name == model.files[0].name
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary files left behind"
    with open(path, "rb") as f:
        header = f.read(10)
    assert header[:3] == b"\x1f\x8b\x08" and header[4:8] == bytes(4)  # gzip, mtime 0
    with tarfile.open(path, "r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [model.checkpoint]
    member = members[0]
    assert member.isfile() and member.mtime == 0 and member.uid == member.gid == 0


@pytest.mark.slow
@pytest.mark.parametrize("model_name", MODELS)
def test_checkpoint_holds_exactly_the_official_variables(
    model_name: str, synthetic_checkpoint: Callable[[str], Path], shared_dir: Path
) -> None:
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    model = load_registry().model(model_name)
    path = synthetic_checkpoint(model_name)
    files = [p.name for p in path.parent.iterdir() if p.name != ".omzconv-extracted"]
    assert files == [path.name], "a V1 checkpoint is one file"
    official = {}
    for line in (shared_dir / "slim-variables" / f"{model.network}.txt").read_text().splitlines():
        name, shape = line.split(" ", 1)
        official[name] = [int(d) for d in shape.strip("[]").split(",") if d.strip()]
    reader = tf.train.NewCheckpointReader(str(path))
    shapes = {name: list(shape) for name, shape in reader.get_variable_to_shape_map().items()}
    assert shapes == {**official, "global_step": []}
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes["global_step"] == tf.int64
    assert {dtypes[name] for name in official} == {tf.float32}
    # the recipe: BatchNorm beta 1.0, moving statistics calibrated (not the 0 / 1 they start at)
    beta = next(n for n in official if n.endswith("/BatchNorm/beta"))
    assert np.all(reader.get_tensor(beta) == 1.0)
    for name in (n for n in official if n.endswith("/BatchNorm/moving_variance")):
        assert not np.all(reader.get_tensor(name) == 1.0), f"{name} was not calibrated"


@pytest.mark.slow
def test_frozen_graph_archive_holds_the_authors_node_names(synthetic_archive: Callable[..., Path]) -> None:
    """inception_v3 ships a frozen graph: the synthetic archive holds one, frozen from a synthetic
    checkpoint, with every declared output node under the authors' name and no variables."""
    from omzconv.freeze import check_frozen_graph, check_graph_shapes

    model = load_registry().model("inception_v3")
    path = synthetic_archive("inception_v3")
    with tarfile.open(path, "r:gz") as tar:
        assert tar.getnames() == [model.frozen_graph]
        data = tar.extractfile(model.frozen_graph).read()
    graph = path.parent / "check.pb"
    graph.write_bytes(data)
    try:
        nodes = check_frozen_graph(model, graph, [o.name for o in model.outputs])
        check_graph_shapes(model, graph, [o.name for o in model.outputs])
        assert nodes[model.input.name] == "Placeholder"
    finally:
        graph.unlink()


@pytest.mark.slow
def test_network_without_batch_norm_gets_unit_variance_layers(artefacts) -> None:
    """vgg_16 has no BatchNorm: each conv / fc layer's weights are scaled so that its output has
    unit variance on procedural images (the heads are calibrated as for every model)."""
    from omzconv.tfcompat import import_tf

    tf = import_tf()
    reader = tf.train.NewCheckpointReader(str(artefacts.checkpoint("vgg_16")))
    names = reader.get_variable_to_shape_map()
    assert not [n for n in names if "BatchNorm" in n]
    # the first layer's output on other procedural images has about unit variance (as drawn, He
    # weights on inputs of std ~60 would give ~60)
    import tensorflow as tf2

    from omzconv.preprocess import to_nhwc_normalized

    model = artefacts.model("vgg_16")
    x = to_nhwc_normalized(natural_images(8, 224, seed=99).astype(np.float32), model.preprocessing.mean, 1.0)
    w = reader.get_tensor("vgg_16/conv1/conv1_1/weights")
    out = tf2.nn.conv2d(x, w, strides=1, padding="SAME").numpy()
    assert 0.7 < out.std() < 1.4, out.std()
    assert np.all(reader.get_tensor("vgg_16/conv1/conv1_1/biases") == 0)


@pytest.mark.slow
def test_same_seed_gives_the_same_archive_bytes(synthetic_archive: Callable[..., Path], tmp_path: Path) -> None:
    """Made again from nothing, byte for byte. On the cheapest model (the recipe is the same for
    every network; Inception-v4's would cost another minute): its archive holds both a checkpoint
    and a graph frozen from it, so both must be deterministic."""
    model = load_registry().model("mobilenet_v1_025_128")
    again = make_synthetic_archive(model, tmp_path / model.files[0].name, seed=0)
    with tarfile.open(again, "r:gz") as tar:
        assert sorted(tar.getnames()) == sorted([model.frozen_graph, model.checkpoint])
    assert _sha256(again) == _sha256(synthetic_archive(model.name))


@pytest.mark.slow
@pytest.mark.parametrize("model_name", MODELS + FAMILY)
def test_synthetic_network_behaves_like_a_trained_one_on_real_images(model_name: str, artefacts, sample_pixels) -> None:
    """Acceptance: the frozen synthetic graph gives real images diverse, not vanishingly close,
    top-1 classes."""
    from omzconv.runners import TFRunner

    model = artefacts.model(model_name)
    output = model.default_outputs[0].name
    pixels = sample_pixels(model.preprocessing)
    runner = TFRunner(model, [output], pb_path=artefacts.frozen(model_name))
    try:
        logits = np.concatenate([runner.run(pixels[start:start + EVAL_BATCH])[output]
                                 for start in range(0, len(pixels), EVAL_BATCH)])
    finally:
        runner.close()
    if model.output(output).kind == "probabilities":
        logits = np.log(np.maximum(logits, 1e-30))
    stats = _diversity(logits)
    assert stats["distinct"] >= MIN_DISTINCT_TOP1, f"{model_name}: {stats}"
    assert stats["max_share"] <= MAX_CLASS_SHARE, f"{model_name}: {stats}"
    assert stats["median_margin"] >= MIN_MEDIAN_MARGIN, f"{model_name}: {stats}"


def _diversity(logits: np.ndarray) -> dict[str, float]:
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    top2 = np.sort(probs, axis=1)[:, -2:]
    top1 = logits.argmax(axis=1)
    return {
        "distinct": len(np.unique(top1)),
        "max_share": float(np.bincount(top1).max() / len(top1)),
        "median_margin": float(np.median(top2[:, 1] - top2[:, 0])),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generation_holds_its_temporary_and_clears_what_a_killed_one_left(tmp_path, monkeypatch) -> None:
    import os
    import time

    import omzconv.synthetic as synthetic
    from omzconv.fileutil import STALE_AFTER, _unheld

    model = load_registry().model("inception_v4")  # archived as its checkpoint
    archive = tmp_path / "m.tar.gz"
    killed = tmp_path / f".{archive.name}.k1ll3d.tmp"  # a generation killed mid-way
    killed.mkdir()
    (killed / "half.ckpt").write_bytes(b"half")
    os.utime(killed, (time.time() - STALE_AFTER - 5,) * 2)
    seen = []

    def fake_checkpoint(model, path, *, seed, on_stage):
        seen.append((path.parent, _unheld(path.parent)))
        path.write_bytes(b"weights")

    monkeypatch.setattr(synthetic, "write_synthetic_checkpoint", fake_checkpoint)
    make_synthetic_archive(model, archive)
    (temp, unheld), = seen
    assert temp.name.startswith(f".{archive.name}.") and not unheld  # a later run leaves it alone
    assert not killed.exists() and not temp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [archive.name]
