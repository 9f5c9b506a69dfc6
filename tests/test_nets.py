"""The tf_slim networks match TF-Slim's checkpoints; the tf_slim fix applies."""

from __future__ import annotations

import importlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omzconv.errors import UnknownModelError
from omzconv.nets import SLIM_NETS, get_network
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


# --- every model of models.yaml: graph build only (no values), cheap ----------------------------

OFFICIAL_VARIABLES = {  # model → the official network's variable list in ../shared/slim-variables
    "inception_v4": "inception_v4.txt",
    "inception_resnet_v2": "inception_resnet_v2.txt",
    "mobilenet_v1_025_128": "mobilenet_v1_0.25_128.txt",
    "mobilenet_v1_1.0_224": "mobilenet_v1_1.0_224.txt",
    "mobilenet_v2_1.0_224": "mobilenet_v2_1.0_224.txt",
    "mobilenet_v2_1.4_224": "mobilenet_v2_1.4_224.txt",
}


def _needs_own_net(model) -> None:
    import importlib.util

    if model.network not in SLIM_NETS and importlib.util.find_spec(f"omzconv.nets.{model.network}") is None:
        pytest.skip(f"omzconv.nets.{model.network} is not in this checkout yet")


@pytest.fixture(scope="module")
def family_registry():
    from omzconv.registry import load_registry

    return load_registry(Path(__file__).resolve().parents[1] / "models.yaml")


def _family_names() -> list[str]:
    from omzconv.registry import load_registry

    return [m.name for m in load_registry(Path(__file__).resolve().parents[1] / "models.yaml").models]


@pytest.mark.parametrize("name", _family_names())
def test_every_model_builds_with_the_official_variables_and_declared_nodes(name, family_registry, shared_dir):
    """omzconv's builder for the model has exactly the official variables (names, shapes, order: the
    shared lists for omzconv's own nets, tf_slim's net built directly for the others), and the
    declared input and outputs exist with the declared shapes."""
    tf, slim = import_tf(), import_slim()
    model = family_registry.model(name)
    _needs_own_net(model)
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, model.input.shape, name=model.input.name)
        get_network(model.network)(images, num_classes=model.num_classes, is_training=False,
                                   **dict(model.network_params))
        ours = _variable_lines(tf)
    if name in OFFICIAL_VARIABLES:
        official = (shared_dir / "slim-variables" / OFFICIAL_VARIABLES[name]).read_text().splitlines()
    else:  # tf_slim's own network, built the documented way (its arg_scope, inference mode)
        from omzconv.tfcompat import inference_batch_norm_scope

        module, function = SLIM_NETS[model.network]
        nets = importlib.import_module(f"tf_slim.nets.{module}")
        scope_fn = {"resnet_v1": "resnet_arg_scope", "resnet_v2": "resnet_arg_scope", "vgg": "vgg_arg_scope"}.get(
            module, f"{module}_arg_scope")
        with tf.Graph().as_default():
            x = tf.placeholder(tf.float32, model.input.shape)
            with slim.arg_scope(getattr(nets, scope_fn)()), inference_batch_norm_scope():
                getattr(nets, function)(x, num_classes=model.num_classes, is_training=False)
            official = _variable_lines(tf)
    assert ours == official
    nodes = {op.name: op for op in graph.get_operations()}
    assert nodes[model.input.name].type == "Placeholder"
    for output in model.outputs:
        assert output.name in nodes, output.name
        assert graph.get_tensor_by_name(f"{output.name}:0").shape.as_list() == [1, model.num_classes]
        assert (nodes[output.name].type == "Softmax" or nodes[output.name].inputs[0].op.type == "Softmax") == (
            output.kind == "probabilities"), output.name


def test_slim_networks_by_module_path_and_unknown() -> None:
    """Any tf_slim.nets classifier is reachable from models.yaml by its module path."""
    tf = import_tf()
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, [1, 224, 224, 3])
        logits, _ = get_network("tf_slim.nets.alexnet.alexnet_v2")(images, num_classes=10)
        assert logits.shape.as_list() == [1, 10]
        with pytest.raises(UnknownModelError, match="tf_slim has no network tf_slim.nets.alexnet.alexnet_v9"):
            get_network("tf_slim.nets.alexnet.alexnet_v9")(images)


def test_slim_training_copy_updates_batch_norm_in_place() -> None:
    """The tf_slim nets' training copy shares the variables and, with decay 0, sets the moving
    statistics to the batch's (what synthetic BatchNorm calibration needs) on TF 2.21."""
    tf = import_tf()
    build = get_network("resnet_v1_50")
    with tf.Graph().as_default() as graph:
        images = tf.placeholder(tf.float32, [2, 64, 64, 3])
        build(images, num_classes=10)
        before = _variable_lines(tf)
        build(images, num_classes=10, is_training=True, reuse=True, batch_norm_decay=0.0)
        assert _variable_lines(tf) == before
        conv = graph.get_tensor_by_name("resnet_v1_50_1/conv1/Conv2D:0")
        bn_out = graph.get_tensor_by_name("resnet_v1_50_1/conv1/Relu:0")
        mean = [v for v in tf.global_variables() if v.op.name == "resnet_v1_50/conv1/BatchNorm/moving_mean"][0]
        with tf.Session(config=session_config()) as session:
            session.run(tf.global_variables_initializer())
            x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
            conv_out, _ = session.run([conv, bn_out], {images: x})
            np.testing.assert_allclose(session.run(mean), conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)


def test_get_network_unknown_name() -> None:
    with pytest.raises(UnknownModelError, match="unknown network 'inception_v9'; known networks: inception_resnet_v2, inception_v1"):
        get_network("inception_v9")


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
