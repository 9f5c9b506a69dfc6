"""omzconv's own networks by name, and the layer defaults they share.

Importing this package does not import TensorFlow: a builder imports its network module
(and with it TensorFlow and tf_slim) on its first call.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from omzconv.errors import UnknownModelError


class NetworkBuilder(Protocol):
    """``build(images, ...) -> (logits, end_points)`` in TF1 graph mode.

    A network may take keyword parameters of its own (e.g. MobileNet's ``depth_multiplier``);
    every builder accepts ``batch_norm_decay`` and ``create_aux_logits``, ignoring what does
    not apply to it.
    """

    def __call__(
        self,
        images: Any,
        num_classes: int = 1001,
        is_training: bool = False,
        reuse: bool | None = None,
        batch_norm_decay: float = 0.9997,
        create_aux_logits: bool = True,
        **params: Any,
    ) -> tuple[Any, dict[str, Any]]: ...


def _lazy_builder(module: str) -> NetworkBuilder:
    def build(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        return importlib.import_module(f"{__name__}.{module}").build(*args, **kwargs)

    build.__qualname__ = build.__name__ = f"{module}.build"
    build.__doc__ = f"Build {module} (see omzconv.nets.{module}.build)."
    return build


NETWORKS: dict[str, NetworkBuilder] = {
    "inception_v4": _lazy_builder("inception_v4"),
    "inception_resnet_v2": _lazy_builder("inception_resnet_v2"),
    "mobilenet_v1": _lazy_builder("mobilenet_v1"),
    "mobilenet_v2": _lazy_builder("mobilenet_v2"),
}


def get_network(name: str) -> NetworkBuilder:
    """Return the builder for ``name``; raise UnknownModelError for an unknown name."""
    try:
        return NETWORKS[name]
    except KeyError:
        known = ", ".join(sorted(NETWORKS))
        raise UnknownModelError(f"unknown network {name!r}; known networks: {known}") from None


def inception_arg_scope(
    *, is_training: bool, batch_norm_decay: float = 0.9997, batch_norm_epsilon: float = 0.001
) -> dict[str, Any]:
    """TF-Slim's Inception defaults as an arg_scope: conv → BatchNorm (no gamma) → ReLU.

    BatchNorm updates its moving statistics in place (``updates_collections=None``), so a
    training-mode copy changes them whenever it runs. No weight regularizer: inference only.
    """
    from omzconv.tfcompat import import_slim, import_tf

    tf, slim = import_tf(), import_slim()
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "scale": False,
        "updates_collections": None,
    }
    with slim.arg_scope(
        [slim.conv2d],
        weights_initializer=slim.variance_scaling_initializer(),
        activation_fn=tf.nn.relu,
        normalizer_fn=slim.batch_norm,
        normalizer_params=batch_norm_params,
    ):
        with slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], stride=1, padding="SAME"):
            with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training) as scope:
                return scope


def mobilenet_arg_scope(
    *, is_training: bool, batch_norm_decay: float, batch_norm_epsilon: float = 0.001
) -> dict[str, Any]:
    """TF-Slim's MobileNet defaults as an arg_scope: conv or depthwise conv → BatchNorm (beta
    and gamma) → ReLU6, SAME padding.

    As in ``inception_arg_scope``, BatchNorm updates its moving statistics in place
    (``updates_collections=None``). The initializer is TF-Slim's (truncated normal, stddev
    0.09); no weight regularizer: inference only.
    """
    from omzconv.tfcompat import import_slim, import_tf

    tf, slim = import_tf(), import_slim()
    batch_norm_params = {
        "decay": batch_norm_decay,
        "epsilon": batch_norm_epsilon,
        "center": True,
        "scale": True,
        "updates_collections": None,
    }
    with slim.arg_scope(
        [slim.conv2d, slim.separable_conv2d],
        weights_initializer=tf.truncated_normal_initializer(stddev=0.09),
        activation_fn=tf.nn.relu6,
        normalizer_fn=slim.batch_norm,
        normalizer_params=batch_norm_params,
        padding="SAME",
    ):
        with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training) as scope:
            return scope
