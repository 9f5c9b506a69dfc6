"""MobileNet v1/v2 match TF-Slim's checkpoints and graphs; their training copy calibrates BatchNorm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_nets import _variable_lines

from omzconv.errors import ConfigError
from omzconv.nets import get_network
from omzconv.tfcompat import import_tf, session_config

pytestmark = pytest.mark.slow  # builds the networks in TensorFlow


@dataclass(frozen=True)
class Case:
    checkpoint: str  # stem of ../shared/slim-variables/<checkpoint>.txt
    network: str
    size: int
    depth_multiplier: float
    scope: str
    logits_node: str
    first_layer: str  # end point of the first conv
    last_layer: str  # end point of the last conv
    body_node: str  # a node of the authors' graph before the head
    features: int  # channels the classifier sees
    parameters: int  # values in all variables, BatchNorm moving statistics included


CASES = [
    Case("mobilenet_v1_1.0_224", "mobilenet_v1", 224, 1.0, "MobilenetV1", "MobilenetV1/Logits/SpatialSqueeze",
         "Conv2d_0", "Conv2d_13_pointwise",
         "MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6", 1024, 4_254_889),
    # Not in REFERENCE.md: measured, and equal to the sum over the official list (checked below).
    Case("mobilenet_v1_0.25_128", "mobilenet_v1", 128, 0.25, "MobilenetV1", "MobilenetV1/Logits/SpatialSqueeze",
         "Conv2d_0", "Conv2d_13_pointwise",
         "MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6", 256, 475_801),
    Case("mobilenet_v2_1.0_224", "mobilenet_v2", 224, 1.0, "MobilenetV2", "MobilenetV2/Logits/output",
         "layer_1", "layer_19", "MobilenetV2/expanded_conv_16/output", 1280, 3_540_265),
    Case("mobilenet_v2_1.4_224", "mobilenet_v2", 224, 1.4, "MobilenetV2", "MobilenetV2/Logits/output",
         "layer_1", "layer_19", "MobilenetV2/expanded_conv_16/output", 1792, 6_158_505),
]
TRAIN_BATCH = 2


@dataclass
class Built:
    case: Case
    graph: Any
    images: Any
    logits: Any
    end_points: dict[str, Any]
    variables: list[str]  # "name [shape]" after the inference build
    parameters: int
    train_images: Any  # [TRAIN_BATCH, S, S, 3]
    train_end_points: dict[str, Any]  # training copy, reuse=True, decay 0
    variables_after_train: list[str]


@pytest.fixture(scope="module", params=CASES, ids=[case.checkpoint for case in CASES])
def built(request: pytest.FixtureRequest) -> Built:
    """The network for inference, then a training copy on the same variables (decay 0)."""
    case: Case = request.param
    tf = import_tf()
    build = get_network(case.network)
    shape = [case.size, case.size, 3]
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, *shape], name="input")
        logits, end_points = build(images, depth_multiplier=case.depth_multiplier)
        variables = _variable_lines(tf)
        parameters = sum(v.shape.num_elements() for v in tf.global_variables())
        train_images = tf.placeholder(tf.float32, [TRAIN_BATCH, *shape], name="calibration_input")
        _, train_end_points = build(train_images, is_training=True, reuse=True, batch_norm_decay=0.0,
                                    depth_multiplier=case.depth_multiplier)
        variables_after_train = _variable_lines(tf)
    return Built(case, graph, images, logits, end_points, variables, parameters, train_images,
                 train_end_points, variables_after_train)


def _official_lines(shared_dir: Path, case: Case) -> list[str]:
    return (shared_dir / "slim-variables" / f"{case.checkpoint}.txt").read_text().splitlines()


def test_variables_match_checkpoint(built: Built, shared_dir: Path) -> None:
    expected = _official_lines(shared_dir, built.case)
    for index, (got, want) in enumerate(zip(built.variables, expected)):
        assert got == want, f"variable #{index} (line {index + 1} of {built.case.checkpoint}.txt)"
    assert len(built.variables) == len(expected)


def test_parameter_count(built: Built, shared_dir: Path) -> None:
    official = 0
    for line in _official_lines(shared_dir, built.case):
        dims = line.split(" ", 1)[1].strip("[]").split(", ")
        official += int(np.prod([int(d) for d in dims]))
    assert built.parameters == official == built.case.parameters


def test_training_copy_shares_variables(built: Built) -> None:
    assert built.variables_after_train == built.variables


def test_output_nodes_and_shapes(built: Built) -> None:
    scope = built.case.scope
    names = {node.name for node in built.graph.as_graph_def().node}
    predictions = f"{scope}/Predictions/Reshape_1"
    for name in ("input", built.case.body_node, built.case.logits_node, f"{scope}/Predictions/Softmax", predictions):
        assert name in names
    assert built.logits.name == f"{built.case.logits_node}:0"
    assert built.end_points["Logits"] is built.logits
    assert built.end_points["Predictions"].name == f"{predictions}:0"
    assert built.graph.get_tensor_by_name(f"{predictions}:0").shape.as_list() == [1, 1001]
    assert built.logits.shape.as_list() == [1, 1001]
    side = built.case.size // 32  # output stride 32
    assert built.end_points[built.case.last_layer].shape.as_list() == [1, side, side, built.case.features]
    assert built.end_points["global_pool"].shape.as_list() == [1, 1, 1, built.case.features]
    assert built.end_points["PreLogitsFlatten"].shape.as_list() == [1, built.case.features]


def test_residuals_and_activations(built: Built) -> None:
    """What no variable shows: v2 adds its input back exactly where stride is 1 and the depth
    does not change, and its projections are linear; v1 has no residuals."""
    scope = built.case.scope
    ops = [op for op in built.graph.get_operations()
           if op.name.startswith(f"{scope}/") and "/Initializer/" not in op.name]
    adds = {op.name for op in ops if op.type == "AddV2"}
    relu6 = {op.name.rsplit("/", 1)[0] for op in ops if op.type == "Relu6"}
    if built.case.network == "mobilenet_v1":
        assert adds == set()
        assert len(relu6) == 1 + 13 * 2  # Conv2d_0, then depthwise and pointwise
    else:
        assert adds == {f"MobilenetV2/expanded_conv_{i}/add" for i in (2, 4, 5, 7, 8, 9, 11, 12, 14, 15)}
        assert not [name for name in relu6 if name.endswith("/project")]
        assert len(relu6) == 2 + 1 + 16 * 2  # Conv and Conv_1, the first block's depthwise, expand and depthwise


def test_training_copy_with_decay_0_sets_moving_stats_to_batch_stats(built: Built) -> None:
    """Two images through the training copy up to the pooled features: every BatchNorm's moving
    statistics change, and the first layer's become exactly its batch statistics."""
    tf = import_tf()
    first = built.train_end_points[built.case.first_layer]
    conv = built.graph.get_tensor_by_name(first.name.rsplit("/", 1)[0] + "/Conv2D:0")
    with built.graph.as_default():
        variables = tf.global_variables()
        moving = [v for v in variables if v.op.name.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance")]
        layer = f"{built.case.scope}/{first.op.name.split('/')[-2]}/BatchNorm"  # Conv2d_0 or Conv
        images = np.random.default_rng(0).uniform(-1, 1, (TRAIN_BATCH, built.case.size, built.case.size, 3))
        with tf.Session(config=session_config()) as session:
            session.run(tf.variables_initializer(variables))
            before = session.run(moving)
            conv_out, _ = session.run([conv, built.train_end_points["global_pool"]],
                                      {built.train_images: images.astype(np.float32)})
            after = dict(zip([v.op.name for v in moving], session.run(moving)))
    unchanged = [v.op.name for v, old in zip(moving, before) if np.array_equal(after[v.op.name], old)]
    assert not unchanged, f"{len(unchanged)} of {len(moving)} moving statistics unchanged, e.g. {unchanged[0]}"
    np.testing.assert_allclose(after[f"{layer}/moving_mean"], conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    # The fused kernel reports the unbiased (n - 1) batch variance.
    np.testing.assert_allclose(after[f"{layer}/moving_variance"], conv_out.var(axis=(0, 1, 2), ddof=1), rtol=1e-4)


def test_frozen_graph_has_authors_nodes_and_nothing_else() -> None:
    """Freezing keeps what the outputs need: no PreLogitsFlatten, and TF-Slim's node names
    (the v1 body under MobilenetV1/MobilenetV1/)."""
    tf = import_tf()
    outputs = ["MobilenetV1/Predictions/Reshape_1", "MobilenetV1/Logits/SpatialSqueeze"]
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, 128, 128, 3], name="input")
        get_network("mobilenet_v1")(images, depth_multiplier=0.25)
        with tf.Session(config=session_config()) as session:
            session.run(tf.global_variables_initializer())
            frozen = tf.graph_util.convert_variables_to_constants(session, graph.as_graph_def(), outputs)
    names = {node.name for node in frozen.node}
    assert {"input", *outputs, "MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6",
            "MobilenetV1/Logits/AvgPool_1a/AvgPool"} <= names
    assert not [name for name in names if "PreLogitsFlatten" in name]
    assert {node.op for node in frozen.node}.isdisjoint({"VariableV2", "VarHandleOp"})


def _conv_1_depth(tf: Any, **params: Any) -> int:
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, [1, 96, 96, 3], name="input")
        get_network("mobilenet_v2")(images, **params)
        (weights,) = [v for v in tf.global_variables() if v.op.name == "MobilenetV2/Conv_1/weights"]
    return weights.shape.as_list()[3]


def test_v2_last_conv_scales_unless_finegrain() -> None:
    tf = import_tf()
    assert _conv_1_depth(tf, depth_multiplier=0.5) == 640
    assert _conv_1_depth(tf, depth_multiplier=0.5, finegrain_classification_mode=True, create_aux_logits=False) == 1280


@pytest.mark.parametrize(
    ("value", "divisor", "min_value", "expected"),
    [
        (44.8, 8, None, 48),  # 32 x 1.4
        (89.6, 8, None, 88),  # 64 x 1.4: rounds down
        (134.4, 8, None, 136),  # 96 x 1.4
        (11.2, 8, None, 16),  # 32 x 0.35: 8 would lose more than 10 %
        (4.0, 8, 8, 8),  # never below min_value
        (1792, 8, None, 1792),
        (96, 1, None, 96),  # divisor 1: unchanged
    ],
)
def test_make_divisible(value: float, divisor: int, min_value: int | None, expected: int) -> None:
    from omzconv.nets.mobilenet_v2 import make_divisible

    assert make_divisible(value, divisor, min_value) == expected


@pytest.mark.parametrize("network", ["mobilenet_v1", "mobilenet_v2"])
def test_depth_multiplier_must_be_positive(network: str) -> None:
    tf = import_tf()
    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, [1, 96, 96, 3], name="input")
        with pytest.raises(ConfigError, match=f"{network}: depth_multiplier must be greater than 0, got 0"):
            get_network(network)(images, depth_multiplier=0)
