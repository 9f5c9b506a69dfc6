"""The tf_slim networks match TF-Slim's checkpoints; the tf_slim fix applies."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omzconv.errors import UnknownModelError
from omzconv.nets import get_network
from omzconv.tfcompat import import_slim, import_tf, restore_ops_tensor, session_config

pytestmark = pytest.mark.slow  # builds the networks in TensorFlow

PATCH = Path(__file__).resolve().parents[1] / "patches" / "tf_slim-1.1.0-ops-tensor.patch"

SCOPES = {"inception_v4": "InceptionV4", "inception_resnet_v2": "InceptionResnetV2"}
OUTPUT_NODES = {
    "inception_v4": [
        "InceptionV4/Logits/Logits/BiasAdd",
        "InceptionV4/Logits/Predictions",
        "InceptionV4/AuxLogits/Aux_logits/BiasAdd",
    ],
    "inception_resnet_v2": [
        "InceptionResnetV2/Logits/Logits/BiasAdd",
        "InceptionResnetV2/Logits/Predictions",
        "InceptionResnetV2/AuxLogits/Logits/BiasAdd",
    ],
}


@dataclass
class Built:
    name: str
    graph: Any
    images: Any
    logits: Any
    end_points: dict[str, Any]
    variables: list[str]  # "name [shape]" after the inference build
    train_end_points: dict[str, Any]  # training copy, reuse=True, decay 0
    variables_after_train: list[str]


def _variable_lines(tf: Any) -> list[str]:
    return [f"{v.op.name} {v.shape.as_list()}" for v in tf.global_variables()]


@pytest.fixture(scope="module", params=sorted(SCOPES))
def built(request: pytest.FixtureRequest) -> Built:
    """The network for inference, then a training copy on the same variables (decay 0)."""
    tf = import_tf()
    build = get_network(request.param)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, 299, 299, 3], name="input")
        logits, end_points = build(images)
        variables = _variable_lines(tf)
        _, train_end_points = build(images, is_training=True, reuse=True, batch_norm_decay=0.0)
        variables_after_train = _variable_lines(tf)
    return Built(
        request.param, graph, images, logits, end_points, variables, train_end_points, variables_after_train
    )


def test_variables_match_checkpoint(built: Built, shared_dir: Path) -> None:
    expected = (shared_dir / "slim-variables" / f"{built.name}.txt").read_text().splitlines()
    for index, (got, want) in enumerate(zip(built.variables, expected)):
        assert got == want, f"variable #{index}"
    assert len(built.variables) == len(expected)


def test_training_copy_shares_variables(built: Built) -> None:
    assert built.variables_after_train == built.variables


def test_output_nodes_and_shapes(built: Built) -> None:
    names = {node.name for node in built.graph.as_graph_def().node}
    for name in OUTPUT_NODES[built.name]:
        assert name in names
        assert built.graph.get_tensor_by_name(f"{name}:0").shape.as_list() == [1, 1001]
    assert built.logits.name == f"{OUTPUT_NODES[built.name][0]}:0"
    assert built.end_points["Predictions"].op.type == "Softmax"
    features = ("AuxPreLogitsFlatten", "PreLogitsFlatten")
    shapes = {key: built.end_points[key].shape.as_list() for key in features}
    assert shapes == {"AuxPreLogitsFlatten": [1, 768], "PreLogitsFlatten": [1, 1536]}


def test_training_copy_with_decay_0_sets_moving_stats_to_batch_stats(built: Built) -> None:
    """Run only the first conv of the training copy: its BatchNorm updates in place."""
    tf = import_tf()
    scope = SCOPES[built.name]
    layer = f"{scope}/Conv2d_1a_3x3"
    with built.graph.as_default():
        layer_vars = [v for v in tf.global_variables() if v.op.name.startswith(layer + "/")]
        by_name = {v.op.name: v for v in layer_vars}
        conv = built.graph.get_tensor_by_name(f"{scope}_1/Conv2d_1a_3x3/Conv2D:0")
        images = np.random.default_rng(0).uniform(-1, 1, (1, 299, 299, 3)).astype(np.float32)
        with tf.Session(config=session_config()) as session:
            session.run(tf.variables_initializer(layer_vars))
            fetches = [conv, built.train_end_points["Conv2d_1a_3x3"]]
            conv_out, _ = session.run(fetches, {built.images: images})
            mean, variance = session.run(
                [by_name[f"{layer}/BatchNorm/moving_mean"], by_name[f"{layer}/BatchNorm/moving_variance"]]
            )
    assert np.abs(mean).max() > 1e-3  # moved away from its initial zeros
    np.testing.assert_allclose(mean, conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # The fused kernel reports the unbiased (n - 1) batch variance.
    np.testing.assert_allclose(variance, conv_out.var(axis=(0, 1, 2), ddof=1), rtol=1e-4)


def test_get_network_unknown_name() -> None:
    with pytest.raises(UnknownModelError, match="inception_v3.*inception_resnet_v2, inception_v4"):
        get_network("inception_v3")


def test_ops_tensor_shim_is_noop_when_attribute_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorflow.python.framework import ops

    sentinel = object()
    monkeypatch.setattr(ops, "Tensor", sentinel, raising=False)
    assert restore_ops_tensor() is False
    assert ops.Tensor is sentinel


def test_ops_tensor_shim_restores_missing_attribute(monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorflow.python.framework import ops

    tf = import_tf()
    monkeypatch.delattr(ops, "Tensor", raising=False)
    assert restore_ops_tensor() is True
    assert ops.Tensor is tf.Tensor


def test_patch_applies_to_installed_tf_slim() -> None:
    if shutil.which("patch") is None:
        pytest.fail("the 'patch' program is needed to check patches/*.patch")
    slim = import_slim()
    site_packages = Path(slim.__file__).resolve().parents[1]
    result = subprocess.run(
        ["patch", "-p1", "--dry-run", "--forward", "-d", str(site_packages), "-i", str(PATCH)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tf_slim/layers/utils.py" in result.stdout
