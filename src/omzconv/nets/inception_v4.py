"""Inception-v4 (arXiv:1602.07261) in tf_slim, variable for variable as TF-Slim's checkpoint.

Scope names are facts of the checkpoint ``inception_v4_2016_09_09``; they are written out,
not generated. Every conv is conv → BatchNorm (beta only) → ReLU, stride 1, SAME padding
unless stated (see ``omzconv.nets.inception_arg_scope``).
"""

from __future__ import annotations

from typing import Any

from omzconv.nets import inception_arg_scope
from omzconv.tfcompat import import_slim, import_tf

tf = import_tf()
slim = import_slim()

SCOPE = "InceptionV4"
DROPOUT_KEEP_PROB = 0.8

Tensor = Any  # a graph-mode tf.Tensor
EndPoints = dict[str, Tensor]


def _mixed_3a(net: Tensor) -> Tensor:
    with tf.variable_scope("Mixed_3a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_0a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 96, [3, 3], stride=2, padding="VALID", scope="Conv2d_0a_3x3")
        return tf.concat([branch_0, branch_1], axis=3)


def _mixed_4a(net: Tensor) -> Tensor:
    with tf.variable_scope("Mixed_4a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, 96, [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 64, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, 64, [7, 1], scope="Conv2d_0c_7x1")
            branch_1 = slim.conv2d(branch_1, 96, [3, 3], padding="VALID", scope="Conv2d_1a_3x3")
        return tf.concat([branch_0, branch_1], axis=3)


def _mixed_5a(net: Tensor) -> Tensor:
    with tf.variable_scope("Mixed_5a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 192, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
        return tf.concat([branch_0, branch_1], axis=3)


def _inception_a(net: Tensor, scope: str) -> Tensor:
    """Inception-A: 35 x 35 x 384 → 35 x 35 x 384."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 96, [1, 1], scope="Conv2d_0a_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 96, [3, 3], scope="Conv2d_0b_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 64, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0b_3x3")
            branch_2 = slim.conv2d(branch_2, 96, [3, 3], scope="Conv2d_0c_3x3")
        with tf.variable_scope("Branch_3"):
            branch_3 = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, 96, [1, 1], scope="Conv2d_0b_1x1")
        return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=3)


def _reduction_a(net: Tensor) -> Tensor:
    """Reduction-A: 35 x 35 x 384 → 17 x 17 x 1024."""
    with tf.variable_scope("Mixed_6a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 384, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 224, [3, 3], scope="Conv2d_0b_3x3")
            branch_1 = slim.conv2d(branch_1, 256, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
        return tf.concat([branch_0, branch_1, branch_2], axis=3)


def _inception_b(net: Tensor, scope: str) -> Tensor:
    """Inception-B: 17 x 17 x 1024 → 17 x 17 x 1024."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 384, [1, 1], scope="Conv2d_0a_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 224, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, 256, [7, 1], scope="Conv2d_0c_7x1")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 192, [7, 1], scope="Conv2d_0b_7x1")
            branch_2 = slim.conv2d(branch_2, 224, [1, 7], scope="Conv2d_0c_1x7")
            branch_2 = slim.conv2d(branch_2, 224, [7, 1], scope="Conv2d_0d_7x1")
            branch_2 = slim.conv2d(branch_2, 256, [1, 7], scope="Conv2d_0e_1x7")
        with tf.variable_scope("Branch_3"):
            branch_3 = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, 128, [1, 1], scope="Conv2d_0b_1x1")
        return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=3)


def _reduction_b(net: Tensor) -> Tensor:
    """Reduction-B: 17 x 17 x 1024 → 8 x 8 x 1536."""
    with tf.variable_scope("Mixed_7a"):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 192, [1, 1], scope="Conv2d_0a_1x1")
            branch_0 = slim.conv2d(branch_0, 192, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = slim.conv2d(branch_1, 256, [1, 7], scope="Conv2d_0b_1x7")
            branch_1 = slim.conv2d(branch_1, 320, [7, 1], scope="Conv2d_0c_7x1")
            branch_1 = slim.conv2d(branch_1, 320, [3, 3], stride=2, padding="VALID", scope="Conv2d_1a_3x3")
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.max_pool2d(net, [3, 3], stride=2, padding="VALID", scope="MaxPool_1a_3x3")
        return tf.concat([branch_0, branch_1, branch_2], axis=3)


def _inception_c(net: Tensor, scope: str) -> Tensor:
    """Inception-C: 8 x 8 x 1536 → 8 x 8 x 1536."""
    with tf.variable_scope(scope):
        with tf.variable_scope("Branch_0"):
            branch_0 = slim.conv2d(net, 256, [1, 1], scope="Conv2d_0a_1x1")
        with tf.variable_scope("Branch_1"):
            branch_1 = slim.conv2d(net, 384, [1, 1], scope="Conv2d_0a_1x1")
            branch_1 = tf.concat(
                [
                    slim.conv2d(branch_1, 256, [1, 3], scope="Conv2d_0b_1x3"),
                    slim.conv2d(branch_1, 256, [3, 1], scope="Conv2d_0c_3x1"),
                ],
                axis=3,
            )
        with tf.variable_scope("Branch_2"):
            branch_2 = slim.conv2d(net, 384, [1, 1], scope="Conv2d_0a_1x1")
            branch_2 = slim.conv2d(branch_2, 448, [3, 1], scope="Conv2d_0b_3x1")
            branch_2 = slim.conv2d(branch_2, 512, [1, 3], scope="Conv2d_0c_1x3")
            branch_2 = tf.concat(
                [
                    slim.conv2d(branch_2, 256, [1, 3], scope="Conv2d_0d_1x3"),
                    slim.conv2d(branch_2, 256, [3, 1], scope="Conv2d_0e_3x1"),
                ],
                axis=3,
            )
        with tf.variable_scope("Branch_3"):
            branch_3 = slim.avg_pool2d(net, [3, 3], scope="AvgPool_0a_3x3")
            branch_3 = slim.conv2d(branch_3, 256, [1, 1], scope="Conv2d_0b_1x1")
        return tf.concat([branch_0, branch_1, branch_2, branch_3], axis=3)


def _base(images: Tensor, end_points: EndPoints) -> Tensor:
    """Stem and the Inception/Reduction blocks up to Mixed_7d."""
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
    net = end_points["Mixed_3a"] = _mixed_3a(net)
    # 73 x 73 x 160
    net = end_points["Mixed_4a"] = _mixed_4a(net)
    # 71 x 71 x 192
    net = end_points["Mixed_5a"] = _mixed_5a(net)
    # 35 x 35 x 384
    for scope in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_5e"):
        net = end_points[scope] = _inception_a(net, scope)
    # 35 x 35 x 384
    net = end_points["Mixed_6a"] = _reduction_a(net)
    # 17 x 17 x 1024
    for scope in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_6f", "Mixed_6g", "Mixed_6h"):
        net = end_points[scope] = _inception_b(net, scope)
    # 17 x 17 x 1024
    net = end_points["Mixed_7a"] = _reduction_b(net)
    # 8 x 8 x 1536
    for scope in ("Mixed_7b", "Mixed_7c", "Mixed_7d"):
        net = end_points[scope] = _inception_c(net, scope)
    # 8 x 8 x 1536
    return net


def _aux_logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Auxiliary classifier on Mixed_6h."""
    with tf.variable_scope("AuxLogits"):
        # 17 x 17 x 1024
        net = slim.avg_pool2d(net, [5, 5], stride=3, padding="VALID", scope="AvgPool_1a_5x5")
        # 5 x 5 x 1024
        net = slim.conv2d(net, 128, [1, 1], scope="Conv2d_1b_1x1")
        net = slim.conv2d(net, 768, [5, 5], padding="VALID", scope="Conv2d_2a")
        # 1 x 1 x 768
        net = end_points["AuxPreLogitsFlatten"] = slim.flatten(net)
        return slim.fully_connected(net, num_classes, activation_fn=None, scope="Aux_logits")


def _logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Global average pool, dropout and the main classifier."""
    with tf.variable_scope("Logits"):
        # 8 x 8 x 1536
        if net.get_shape()[1:3].is_fully_defined():
            net = slim.avg_pool2d(net, net.get_shape()[1:3], padding="VALID", scope="AvgPool_1a")
        else:
            net = tf.reduce_mean(net, axis=[1, 2], keepdims=True, name="global_pool")
        end_points["global_pool"] = net
        # 1 x 1 x 1536
        net = slim.dropout(net, DROPOUT_KEEP_PROB, scope="Dropout_1b")
        net = end_points["PreLogitsFlatten"] = slim.flatten(net, scope="PreLogitsFlatten")
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
    """Build Inception-v4 on NHWC ``images`` under scope ``InceptionV4``.

    Returns the main logits and the end points (every block, ``AuxPreLogitsFlatten``,
    ``AuxLogits``, ``global_pool``, ``PreLogitsFlatten``, ``Logits``, ``Predictions``).
    ``reuse=True`` builds another copy on the existing variables.
    """
    end_points: EndPoints = {}
    with tf.variable_scope(SCOPE, reuse=reuse):
        with slim.arg_scope(inception_arg_scope(is_training=is_training, batch_norm_decay=batch_norm_decay)):
            net = _base(images, end_points)
            if create_aux_logits:
                end_points["AuxLogits"] = _aux_logits(end_points["Mixed_6h"], num_classes, end_points)
            logits = _logits(net, num_classes, end_points)
    return logits, end_points
