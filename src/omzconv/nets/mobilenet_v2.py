"""MobileNet v2 (arXiv:1801.04381) in tf_slim, variable for variable as TF-Slim's checkpoints.

Scope names are facts of the checkpoints ``mobilenet_v2_{1.0,1.4}_224``; they are written out,
not generated. Every conv is conv (or 3 x 3 depthwise conv) → BatchNorm (beta and gamma) →
ReLU6, SAME padding (see ``omzconv.nets.mobilenet_arg_scope``), except each block's linear
``project`` conv. A block (inverted residual) is ``expand`` (1 x 1 to 6x its input channels,
left out when that would not widen it) → ``depthwise`` → ``project``, plus the input when
stride and channels allow.

``depth_multiplier`` scales every layer but the classifier, rounded to a multiple of 8 (never
below 8, nor more than 10 % below the exact value); the last conv ``Conv_1`` is scaled too
(1280 → 1792 at 1.4) unless ``finegrain_classification_mode`` keeps it at 1280 for
multipliers below 1.

Node names are those of the authors' frozen graphs: each block ends in
``MobilenetV2/<block>/output``, the logits are ``MobilenetV2/Logits/output`` and the output
``MobilenetV2/Predictions/Reshape_1`` (``slim.softmax``: Reshape → Softmax → Reshape_1).
End points are keyed as in TF-Slim: ``layer_1`` (``Conv``) … ``layer_19`` (``Conv_1``).
Shape comments are for a 224 x 224 input at depth multiplier 1.0.
"""

from __future__ import annotations

from typing import Any

from omzconv.errors import ConfigError
from omzconv.nets import mobilenet_arg_scope
from omzconv.tfcompat import import_slim, import_tf

tf = import_tf()
slim = import_slim()

SCOPE = "MobilenetV2"
DIVISIBLE_BY = 8
MIN_DEPTH = 8
EXPANSION = 6
LAST_CONV_DEPTH = 1280
BATCH_NORM_DECAY = 0.997  # TF-Slim's mobilenet.training_scope
DROPOUT_KEEP_PROB = 0.8

Tensor = Any  # a graph-mode tf.Tensor
EndPoints = dict[str, Tensor]


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """`value` rounded to the nearest multiple of `divisor`, at least `min_value` (default
    `divisor`), and moved up one step if rounding lost more than 10 %."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _expanded_conv(net: Tensor, scope: str, depth: int, stride: int = 1, expansion: int = EXPANSION) -> Tensor:
    """Inverted residual block: [expand] → depthwise → project (linear) [+ input]."""
    with tf.variable_scope(scope):
        input_depth = net.get_shape().as_list()[3]
        inner_depth = make_divisible(input_depth * expansion, DIVISIBLE_BY if expansion > 1 else 1)
        net = block_input = tf.identity(net, name="input")
        if inner_depth > input_depth:
            net = slim.conv2d(net, inner_depth, [1, 1], scope="expand")
            net = tf.identity(net, name="expansion_output")
        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1, stride=stride, scope="depthwise")
        net = tf.identity(net, name="depthwise_output")
        net = slim.conv2d(net, depth, [1, 1], activation_fn=tf.identity, scope="project")
        if stride == 1 and depth == input_depth:
            net += block_input
        return tf.identity(net, name="output")


def _base(images: Tensor, depth_multiplier: float, finegrain: bool, end_points: EndPoints) -> Tensor:
    """Conv, the seventeen inverted residual blocks and Conv_1."""

    def depth(channels: int) -> int:
        return make_divisible(channels * depth_multiplier, DIVISIBLE_BY, MIN_DEPTH)

    # 224 x 224 x 3
    net = end_points["layer_1"] = slim.conv2d(images, depth(32), [3, 3], stride=2, scope="Conv")
    # 112 x 112 x 32
    net = end_points["layer_2"] = _expanded_conv(net, "expanded_conv", depth(16), expansion=1)
    # 112 x 112 x 16
    net = end_points["layer_3"] = _expanded_conv(net, "expanded_conv_1", depth(24), stride=2)
    net = end_points["layer_4"] = _expanded_conv(net, "expanded_conv_2", depth(24))
    # 56 x 56 x 24
    net = end_points["layer_5"] = _expanded_conv(net, "expanded_conv_3", depth(32), stride=2)
    net = end_points["layer_6"] = _expanded_conv(net, "expanded_conv_4", depth(32))
    net = end_points["layer_7"] = _expanded_conv(net, "expanded_conv_5", depth(32))
    # 28 x 28 x 32
    net = end_points["layer_8"] = _expanded_conv(net, "expanded_conv_6", depth(64), stride=2)
    net = end_points["layer_9"] = _expanded_conv(net, "expanded_conv_7", depth(64))
    net = end_points["layer_10"] = _expanded_conv(net, "expanded_conv_8", depth(64))
    net = end_points["layer_11"] = _expanded_conv(net, "expanded_conv_9", depth(64))
    # 14 x 14 x 64
    net = end_points["layer_12"] = _expanded_conv(net, "expanded_conv_10", depth(96))
    net = end_points["layer_13"] = _expanded_conv(net, "expanded_conv_11", depth(96))
    net = end_points["layer_14"] = _expanded_conv(net, "expanded_conv_12", depth(96))
    # 14 x 14 x 96
    net = end_points["layer_15"] = _expanded_conv(net, "expanded_conv_13", depth(160), stride=2)
    net = end_points["layer_16"] = _expanded_conv(net, "expanded_conv_14", depth(160))
    net = end_points["layer_17"] = _expanded_conv(net, "expanded_conv_15", depth(160))
    # 7 x 7 x 160
    net = end_points["layer_18"] = _expanded_conv(net, "expanded_conv_16", depth(320))
    # 7 x 7 x 320
    last_depth = LAST_CONV_DEPTH if finegrain and depth_multiplier < 1 else depth(LAST_CONV_DEPTH)
    net = end_points["layer_19"] = slim.conv2d(net, last_depth, [1, 1], scope="Conv_1")
    # 7 x 7 x 1280
    return net


def _logits(net: Tensor, num_classes: int, end_points: EndPoints) -> Tensor:
    """Global average pool, dropout and the 1 x 1 conv classifier, squeezed to [batch, classes]."""
    with tf.variable_scope("Logits"):
        # 7 x 7 x 1280
        height, width = net.get_shape().as_list()[1:3]
        if height is None or width is None:
            shape = tf.shape(net)
            kernel = tf.convert_to_tensor([1, shape[1], shape[2], 1])
        else:
            kernel = [1, height, width, 1]
        net = tf.nn.avg_pool(net, ksize=kernel, strides=[1, 1, 1, 1], padding="VALID")
        net.set_shape([None, 1, 1, None])
        end_points["global_pool"] = net
        # 1 x 1 x 1280
        net = slim.dropout(net, keep_prob=DROPOUT_KEEP_PROB, scope="Dropout")
        # Not in TF-Slim's graph (nothing reads it, so freezing drops it): the classifier's
        # input as a matrix, for calibrating the classifier (omzconv.synthetic).
        end_points["PreLogitsFlatten"] = slim.flatten(net, scope="PreLogitsFlatten")
        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None, normalizer_fn=None, scope="Conv2d_1c_1x1")
        # 1 x 1 x num_classes
        logits = tf.squeeze(logits, [1, 2])
        return tf.identity(logits, name="output")


def build(
    images: Tensor,
    num_classes: int = 1001,
    is_training: bool = False,
    reuse: bool | None = None,
    batch_norm_decay: float = BATCH_NORM_DECAY,
    create_aux_logits: bool = True,
    depth_multiplier: float = 1.0,
    finegrain_classification_mode: bool = False,
) -> tuple[Tensor, EndPoints]:
    """Build MobileNet v2 on NHWC ``images`` under scope ``MobilenetV2``.

    Returns the logits and the end points (``layer_1`` … ``layer_19``, ``global_pool``,
    ``PreLogitsFlatten``, ``Logits``, ``Predictions``). ``depth_multiplier`` is 1.0 for
    ``mobilenet_v2_1.0_224``, 1.4 for ``mobilenet_v2_1.4_224``; ``finegrain_classification_mode``
    only matters below 1.0 (see the module docstring). MobileNet has no auxiliary head:
    ``create_aux_logits`` is accepted for the common builder interface and ignored.
    ``reuse=True`` builds another copy on the existing variables.
    """
    if not depth_multiplier > 0:
        raise ConfigError(f"mobilenet_v2: depth_multiplier must be greater than 0, got {depth_multiplier}")
    end_points: EndPoints = {}
    with tf.variable_scope(SCOPE, reuse=reuse):
        with slim.arg_scope(mobilenet_arg_scope(is_training=is_training, batch_norm_decay=batch_norm_decay)):
            images = tf.identity(images, name="input")
            net = _base(images, depth_multiplier, finegrain_classification_mode, end_points)
            logits = end_points["Logits"] = _logits(net, num_classes, end_points)
        end_points["Predictions"] = slim.softmax(logits, scope="Predictions")
    return logits, end_points
