"""MobileNet v1 (arXiv:1704.04861) in tf_slim, variable for variable as TF-Slim's checkpoints.

Scope names are facts of the checkpoints ``mobilenet_v1_{1.0_224,0.25_128}`` (2018_08_02);
they are written out, not generated. Every layer is a conv or a 3 x 3 depthwise conv →
BatchNorm (beta and gamma) → ReLU6, SAME padding (see ``omzconv.nets.mobilenet_arg_scope``).
``depth_multiplier`` thins every layer but the classifier: ``max(int(d * m), 8)`` channels.

Node names are those of the authors' frozen graphs: TF-Slim re-enters the network's variable
scope for the body, so its ops sit under ``MobilenetV1/MobilenetV1/`` (variables under
``MobilenetV1/``); the logits are ``MobilenetV1/Logits/SpatialSqueeze`` and the output
``MobilenetV1/Predictions/Reshape_1`` (``slim.softmax``: Reshape → Softmax → Reshape_1).
Shape comments are for a 224 x 224 input at depth multiplier 1.0.
"""

from __future__ import annotations

from typing import Any

from omzconv.errors import ConfigError
from omzconv.nets import mobilenet_arg_scope
from omzconv.tfcompat import import_slim, import_tf

tf = import_tf()
slim = import_slim()

SCOPE = "MobilenetV1"
MIN_DEPTH = 8
BATCH_NORM_DECAY = 0.9997
DROPOUT_KEEP_PROB = 0.999
POOL_KERNEL = (7, 7)  # reduced to the feature map for smaller inputs (4 x 4 at 128)

Tensor = Any  # a graph-mode tf.Tensor
EndPoints = dict[str, Tensor]


def _separable(net: Tensor, scope: str, depth: int, stride: int, end_points: EndPoints) -> Tensor:
    """``<scope>_depthwise`` (3 x 3, `stride`), then ``<scope>_pointwise`` (1 x 1, `depth`)."""
    # num_outputs=None: separable_conv2d builds the depthwise conv alone.
    net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=stride, scope=scope + "_depthwise")
    end_points[scope + "_depthwise"] = net
    net = slim.conv2d(net, depth, [1, 1], scope=scope + "_pointwise")
    end_points[scope + "_pointwise"] = net
    return net


def _base(images: Tensor, depth_multiplier: float, end_points: EndPoints) -> Tensor:
    """Conv2d_0 and the thirteen depthwise-separable blocks."""

    def depth(channels: int) -> int:
        return max(int(channels * depth_multiplier), MIN_DEPTH)

    # 224 x 224 x 3
    net = slim.conv2d(images, depth(32), [3, 3], stride=2, scope="Conv2d_0")
    end_points["Conv2d_0"] = net
    # 112 x 112 x 32
    net = _separable(net, "Conv2d_1", depth(64), 1, end_points)
    # 112 x 112 x 64
    net = _separable(net, "Conv2d_2", depth(128), 2, end_points)
    net = _separable(net, "Conv2d_3", depth(128), 1, end_points)
    # 56 x 56 x 128
    net = _separable(net, "Conv2d_4", depth(256), 2, end_points)
    net = _separable(net, "Conv2d_5", depth(256), 1, end_points)
    # 28 x 28 x 256
    net = _separable(net, "Conv2d_6", depth(512), 2, end_points)
    for scope in ("Conv2d_7", "Conv2d_8", "Conv2d_9", "Conv2d_10", "Conv2d_11"):
        net = _separable(net, scope, depth(512), 1, end_points)
    # 14 x 14 x 512
    net = _separable(net, "Conv2d_12", depth(1024), 2, end_points)
    net = _separable(net, "Conv2d_13", depth(1024), 1, end_points)
    # 7 x 7 x 1024
    return net


def _logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Average pool, dropout and the 1 x 1 conv classifier, squeezed to [batch, classes]."""
    with tf.variable_scope("Logits"):
        # 7 x 7 x 1024
        feature_map = net.get_shape().as_list()[1:3]
        kernel = [min(size or limit, limit) for size, limit in zip(feature_map, POOL_KERNEL)]
        net = slim.avg_pool2d(net, kernel, padding="VALID", scope="AvgPool_1a")
        end_points["AvgPool_1a"] = end_points["global_pool"] = net
        # 1 x 1 x 1024
        net = slim.dropout(net, keep_prob=DROPOUT_KEEP_PROB, scope="Dropout_1b")
        # Not in TF-Slim's graph (nothing reads it, so freezing drops it): the classifier's
        # input as a matrix, for calibrating the classifier (omzconv.synthetic).
        end_points["PreLogitsFlatten"] = slim.flatten(net, scope="PreLogitsFlatten")
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
        # 1 x 1 x num_classes
        return tf.squeeze(logits, [1, 2], name="SpatialSqueeze")


def build(
    images: Tensor,
    num_classes: int = 1001,
    is_training: bool = False,
    reuse: bool | None = None,
    batch_norm_decay: float = BATCH_NORM_DECAY,
    create_aux_logits: bool = True,
    depth_multiplier: float = 1.0,
) -> tuple[Tensor, EndPoints]:
    """Build MobileNet v1 on NHWC ``images`` under scope ``MobilenetV1``.

    Returns the logits and the end points (``Conv2d_0``, ``Conv2d_<i>_depthwise`` and
    ``Conv2d_<i>_pointwise`` for i in 1..13, ``AvgPool_1a`` and its alias ``global_pool``,
    ``PreLogitsFlatten``, ``Logits``, ``Predictions``). ``depth_multiplier`` is 1.0 for
    ``mobilenet_v1_1.0_224``, 0.25 for ``mobilenet_v1_0.25_128``. MobileNet has no auxiliary
    head: ``create_aux_logits`` is accepted for the common builder interface and ignored.
    ``reuse=True`` builds another copy on the existing variables.
    """
    if not depth_multiplier > 0:
        raise ConfigError(f"mobilenet_v1: depth_multiplier must be greater than 0, got {depth_multiplier}")
    end_points: EndPoints = {}
    with tf.variable_scope(SCOPE, reuse=reuse) as scope:
        with slim.arg_scope(mobilenet_arg_scope(is_training=is_training, batch_norm_decay=batch_norm_decay)):
            # Re-entering the scope keeps variables under MobilenetV1/ and puts the body's ops
            # under MobilenetV1/MobilenetV1/, as in TF-Slim's graphs.
            with tf.variable_scope(scope):
                net = _base(images, depth_multiplier, end_points)
            logits = end_points["Logits"] = _logits(net, num_classes, end_points)
        end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
    return logits, end_points
