"""Inception-ResNet-v2 (arXiv:1602.07261) in tf_slim, variable for variable as TF-Slim's checkpoint.

Scope names are facts of the checkpoint ``inception_resnet_v2_2016_08_30``; they are written
out, not generated (the ``Repeat``/``Repeat_1``/``Repeat_2`` groups are what ``slim.repeat``
called them). Every conv is conv → BatchNorm (beta only) → ReLU, stride 1, SAME padding unless
stated; the 1x1 "up" projection of each residual block has biases and no BatchNorm/ReLU.
"""

from __future__ import annotations

from typing import Any

from omzconv.nets import inception_arg_scope
from omzconv.tfcompat import import_slim, import_tf

tf = import_tf()
slim = import_slim()

SCOPE = "InceptionResnetV2"
DROPOUT_KEEP_PROB = 0.8

Tensor = Any  # a graph-mode tf.Tensor
EndPoints = dict[str, Tensor]


def _residual(net: Tensor, mixed: Tensor, channels: int, scale: float, relu: bool) -> Tensor:
    """Add the scaled 1x1 projection of ``mixed`` to ``net`` (then ReLU, unless last)."""
    up = slim.conv2d(mixed, channels, [1, 1], normalizer_fn=None, activation_fn=None, scope="Conv2d_1x1")
    net = net + scale * up
    return tf.nn.relu(net) if relu else net


def _block35(net: Tensor, scope: str, scale: float = 0.17) -> Tensor:
    """Inception-ResNet-A: 35 x 35 x 320 → 35 x 35 x 320."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 32, [1, 1], scope="Conv2d_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 32, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 32, [3, 3], scope="Conv2d_0b_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 32, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 48, [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, 64, [3, 3], scope="Conv2d_0c_3x3")
        mixed = tf.concat([branch_0, branch_1, branch_2], axis=3)
        return _residual(net, mixed, 320, scale, relu=True)


def _block17(net: Tensor, scope: str, scale: float = 0.10) -> Tensor:
    """Inception-ResNet-B: 17 x 17 x 1088 → 17 x 17 x 1088."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 128, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 160, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, 192, [7, 1], scope="Conv2d_0c_7x1")
        mixed = tf.concat([branch_0, branch_1], axis=3)
        return _residual(net, mixed, 1088, scale, relu=True)


def _block8(net: Tensor, scope: str, scale: float = 0.20, relu: bool = True) -> Tensor:
    """Inception-ResNet-C: 8 x 8 x 2080 → 8 x 8 x 2080."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 224, [1, 3], scope="Conv2d_0b_1x3")
            branch_1 = slim.conv2d(branch_1, 256, [3, 1], scope="Conv2d_0c_3x1")
        mixed = tf.concat([branch_0, branch_1], axis=3)
        return _residual(net, mixed, 2080, scale, relu=relu)


def _mixed_5b(net: Tensor) -> Tensor:
    """35 x 35 x 192 → 35 x 35 x 320."""
    with tf.variable_scope("Mixed_5b"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 96, [1, 1], scope="Conv2d_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 48, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 64, [5, 5], scope="Conv2d_0b_5x5")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0c_3x3")
        with tf.variable_scope("Branch_3"):
            branch_3 = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, 64, [1, 1], scope="Conv2d_0b_1x1")
        return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=3)


def _mixed_6a(net: Tensor) -> Tensor:
    """Reduction-A: 35 x 35 x 320 → 17 x 17 x 1088."""
    with tf.variable_scope("Mixed_6a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 384, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 256, [3, 3], scope="Conv2d_0b_3x3")
            branch_1 = slim.conv2d(branch_1, 384, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
        return tf.concat([branch_0, branch_1, branch_2], axis=3)


def _mixed_7a(net: Tensor) -> Tensor:
    """Reduction-B: 17 x 17 x 1088 → 8 x 8 x 2080."""
    with tf.variable_scope("Mixed_7a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, 384, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 288, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 288, [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, 320, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_3"):
            branch_3 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
        return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=3)


def _base(images: Tensor, end_points: EndPoints) -> Tensor:
    """Stem, the three residual stages and the reductions, up to Conv2d_7b_1x1."""
    # 299 x 299 x 3
    net = slim.conv2d(images, 32, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
    end_points["Conv2d_1a_3x3"] = net
    # 149 x 149 x 32
    net = slim.conv2d(net, 32, [3, 3], padding="VALID", scope="Conv2d_2a_3x3")
    end_points["Conv2d_2a_3x3"] = net
    # 147 x 147 x 32
    net = slim.conv2d(net, 64, [3, 3], scope="Conv2d_2b_3x3")
    end_points["Conv2d_2b_3x3"] = net
    # 147 x 147 x 64
    net = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_3a_3x3")
    end_points["MaxPool_3a_3x3"] = net
    # 73 x 73 x 64
    net = slim.conv2d(net, 80, [1, 1], padding="VALID", scope="Conv2d_3b_1x1")
    end_points["Conv2d_3b_1x1"] = net
    # 73 x 73 x 80
    net = slim.conv2d(net, 192, [3, 3], padding="VALID", scope="Conv2d_4a_3x3")
    end_points["Conv2d_4a_3x3"] = net
    # 71 x 71 x 192
    net = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_5a_3x3")
    end_points["MaxPool_5a_3x3"] = net
    # 35 x 35 x 192
    net = end_points["Mixed_5b"] = _mixed_5b(net)
    # 35 x 35 x 320
    with tf.variable_scope("Repeat"):
        for i in range(1, 11):
            net = _block35(net, f"block35_{i}")
    # 35 x 35 x 320
    net = end_points["Mixed_6a"] = _mixed_6a(net)
    # 17 x 17 x 1088
    with tf.variable_scope("Repeat_1"):
        for i in range(1, 21):
            net = _block17(net, f"block17_{i}")
    end_points["PreAuxLogits"] = net
    # 17 x 17 x 1088
    net = end_points["Mixed_7a"] = _mixed_7a(net)
    # 8 x 8 x 2080
    with tf.variable_scope("Repeat_2"):
        for i in range(1, 10):
            net = _block8(net, f"block8_{i}")
    net = _block8(net, "Block8", scale=1.0, relu=False)
    # 8 x 8 x 2080
    net = slim.conv2d(net, 1536, [1, 1], scope="Conv2d_7b_1x1")
    end_points["Conv2d_7b_1x1"] = net
    # 8 x 8 x 1536
    return net


def _aux_logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Auxiliary classifier on PreAuxLogits (the output of the last block17)."""
    with tf.variable_scope("AuxLogits"):
        # 17 x 17 x 1088
        net = slim.avg_pool2d(net, [5, 5], stride=3, padding="VALID", scope="AvgPool_1a_5x5")
        # 5 x 5 x 1088
        net = slim.conv2d(net, 128, [1, 1], scope="Conv2d_1b_1x1")
        net = slim.conv2d(net, 768, [5, 5], padding="VALID", scope="Conv2d_2a_5x5")
        # 1 x 1 x 768
        net = end_points["AuxPreLogitsFlatten"] = slim.flatten(net)
        return slim.fully_connected(net, num_classes, activation_fn=None, scope="Logits")


def _logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Global average pool, dropout and the main classifier."""
    with tf.variable_scope("Logits"):
        # 8 x 8 x 1536
        if net.get_shape()[1:3].is_fully_defined():
            net = slim.avg_pool2d(net, net.get_shape()[1:3], padding="VALID", scope="AvgPool_1a_8x8")
        else:
            net = tf.reduce_mean(net, axis=[1, 2], keepdims=True, name="global_pool")
        end_points["global_pool"] = net
        # 1 x 1 x 1536
        net = slim.flatten(net)
        net = end_points["PreLogitsFlatten"] = slim.dropout(net, DROPOUT_KEEP_PROB, scope="Dropout")
        # 1536
        logits = end_points["Logits"] = slim.fully_connected(
            net, num_classes, activation_fn=None, scope="Logits"
        )
        end_points["Predictions"] = tf.nn.softmax(logits, name="Predictions")
        return logits


def build(
    images: Tensor,
    num_classes: int = 1001,
    is_training: bool = False,
    reuse: bool | None = None,
    batch_norm_decay: float = 0.9997,
    create_aux_logits: bool = True,
) -> tuple[Tensor, EndPoints]:
    """Build Inception-ResNet-v2 on NHWC ``images`` under scope ``InceptionResnetV2``.

    Returns the main logits and the end points (stem layers, ``Mixed_*``, ``PreAuxLogits``,
    ``Conv2d_7b_1x1``, ``AuxPreLogitsFlatten``, ``AuxLogits``, ``global_pool``,
    ``PreLogitsFlatten``, ``Logits``, ``Predictions``). ``reuse=True`` builds another copy on
    the existing variables.
    """
    end_points: EndPoints = {}
    with tf.variable_scope(SCOPE, reuse=reuse):
        with slim.arg_scope(inception_arg_scope(is_training=is_training, batch_norm_decay=batch_norm_decay)):
            net = _base(images, end_points)
            if create_aux_logits:
                end_points["AuxLogits"] = _aux_logits(end_points["PreAuxLogits"], num_classes, end_points)
            logits = _logits(net, num_classes, end_points)
    return logits, end_points
