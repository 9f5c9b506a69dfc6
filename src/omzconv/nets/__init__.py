"""Every network by name, built from one place, and the layer defaults omzconv's own nets share.

Two kinds of builder, one interface (``build(images, num_classes=, is_training=, reuse=,
batch_norm_decay=, **network_params) -> (logits, end_points)`` in TF1 graph mode):

* omzconv's own TF-Slim-style networks, for what tf_slim does not ship: ``inception_v4``,
  ``inception_resnet_v2``, ``mobilenet_v1``, ``mobilenet_v2`` (modules of this package);
* the official networks in ``tf_slim.nets`` (inception_v1/v2/v3, resnet_v1/v2, vgg, ...), called
  unchanged under their own module's arg_scope. Any ``tf_slim.nets`` classifier is reachable by
  ``tf_slim.nets.<module>.<function>`` (e.g. ``tf_slim.nets.alexnet.alexnet_v2`` in models.yaml),
  so adding one is a models.yaml entry; ``SLIM_NETS`` gives the family's short names.

Importing this package does not import TensorFlow: a builder imports its network module
(and with it TensorFlow and tf_slim) on its first call.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from omzconv.errors import UnknownModelError

SLIM_PREFIX = "tf_slim.nets."


class NetworkBuilder(Protocol):
    """``build(images, ...) -> (logits, end_points)`` in TF1 graph mode.

    ``batch_norm_decay`` (None: the network's own) and ``reuse`` exist so that a training-mode
    copy can share the variables and set every BatchNorm's moving statistics in place
    (omzconv.synthetic). Further keyword arguments are the model's ``network_params``.
    """

    def __call__(
        self,
        images: Any,
        num_classes: int = 1001,
        is_training: bool = False,
        reuse: bool | None = None,
        batch_norm_decay: float | None = None,
        **network_params: Any,
    ) -> tuple[Any, dict[str, Any]]: ...


def _lazy_builder(module: str) -> NetworkBuilder:
    def build(*args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        if kwargs.get("batch_norm_decay", 0) is None:
            del kwargs["batch_norm_decay"]  # the network's own default
        return importlib.import_module(f"{__name__}.{module}").build(*args, **kwargs)

    build.__qualname__ = build.__name__ = f"{module}.build"
    build.__doc__ = f"Build {module} (see omzconv.nets.{module}.build)."
    return build


def slim_builder(module: str, function: str) -> NetworkBuilder:
    """A builder for ``tf_slim.nets.<module>.<function>``, called as the official code is meant to
    be: under its module's own arg_scope (the module's one ``*_arg_scope``), unchanged.

    Two adjustments, neither of which changes a variable or an inference result: BatchNorm updates
    its moving statistics in place (``updates_collections=None``: tf_slim's own fused path, which
    works on TF 2.21 where the UPDATE_OPS path needs a Keras module that is gone — see
    patches/README.md), with ``batch_norm_decay`` when given; and logits left 4-D by nets without a
    spatial squeeze (tf_slim's resnets) are squeezed to [N, classes] under the name research/slim
    gives that node, ``<scope>/SpatialSqueeze``.
    """
    def build(images: Any, num_classes: int = 1001, is_training: bool = False, reuse: bool | None = None,
              batch_norm_decay: float | None = None, **network_params: Any) -> tuple[Any, dict[str, Any]]:
        from omzconv.tfcompat import import_slim, import_tf

        tf, slim = import_tf(), import_slim()
        try:
            nets = importlib.import_module(f"{SLIM_PREFIX}{module}")
            network_fn = getattr(nets, function)
        except (ImportError, AttributeError) as exc:
            raise UnknownModelError(f"tf_slim has no network {SLIM_PREFIX}{module}.{function}") from exc
        scopes = [getattr(nets, name) for name in dir(nets)
                  if name.endswith("_arg_scope") and name != "add_arg_scope"]
        if len(scopes) != 1:
            raise UnknownModelError(f"{SLIM_PREFIX}{module} has {len(scopes)} *_arg_scope functions, expected one")
        arg_scope = _in_place_batch_norm(scopes[0](), batch_norm_decay)
        with slim.arg_scope(arg_scope), tf.variable_scope(tf.get_variable_scope(), reuse=reuse or None):
            logits, end_points = network_fn(images, num_classes=num_classes, is_training=is_training,
                                            **network_params)
            if logits.shape.ndims == 4:
                with tf.name_scope(logits.op.name.split("/")[0] + "/"):
                    logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
        return logits, end_points

    build.__qualname__ = build.__name__ = f"{SLIM_PREFIX}{module}.{function}"
    build.__doc__ = f"Build {SLIM_PREFIX}{module}.{function} under its own arg_scope."
    return build


def _in_place_batch_norm(scope: dict, decay: float | None) -> dict:
    """`scope` (an arg_scope dict) with every BatchNorm parameter set updating in place."""
    def patched(params: dict) -> dict:
        params = {**params, "updates_collections": None}
        return {**params, "decay": decay} if decay is not None else params

    result = {}
    for key, kwargs in scope.items():
        kwargs = dict(kwargs)
        if isinstance(kwargs.get("normalizer_params"), dict) and "updates_collections" in kwargs["normalizer_params"]:
            kwargs["normalizer_params"] = patched(kwargs["normalizer_params"])
        if "updates_collections" in kwargs:
            kwargs = patched(kwargs)
        result[key] = kwargs
    return result


# Short names of the tf_slim.nets classifiers in models.yaml → (module, function).
SLIM_NETS = {
    "inception_v1": ("inception_v1", "inception_v1"),
    "inception_v2": ("inception_v2", "inception_v2"),
    "inception_v3": ("inception_v3", "inception_v3"),
    **{f"resnet_v{v}_{d}": (f"resnet_v{v}", f"resnet_v{v}_{d}") for v in (1, 2) for d in (50, 101, 152)},
    "vgg_16": ("vgg", "vgg_16"),
    "vgg_19": ("vgg", "vgg_19"),
}

NETWORKS: dict[str, NetworkBuilder] = {
    "inception_v4": _lazy_builder("inception_v4"),
    "inception_resnet_v2": _lazy_builder("inception_resnet_v2"),
    "mobilenet_v1": _lazy_builder("mobilenet_v1"),
    "mobilenet_v2": _lazy_builder("mobilenet_v2"),
    **{name: slim_builder(*where) for name, where in SLIM_NETS.items()},
}


def get_network(name: str) -> NetworkBuilder:
    """Return the builder for ``name`` (a key of NETWORKS or ``tf_slim.nets.<module>.<function>``);
    raise UnknownModelError for an unknown name."""
    if name.startswith(SLIM_PREFIX) and name.count(".") == 3:
        return slim_builder(*name[len(SLIM_PREFIX):].split("."))
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
