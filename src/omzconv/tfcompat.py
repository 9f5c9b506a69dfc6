"""The one place that imports TensorFlow (graph mode) and tf_slim.

TensorFlow is imported inside the functions, so importing this module is free.
``import_slim()`` applies at runtime the fix that ``patches/tf_slim-1.1.0-ops-tensor.patch``
makes to the installed tf_slim (see patches/README.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

# Native log lines look like "I0000 00:00:1795275348.089384    4678 port.cc:153] ...".
_NATIVE_LOG_LINE = re.compile(r"([IWEF])\d{4} ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"


def _min_log_level() -> int:
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


@contextlib.contextmanager
def _native_log_filter(min_level: int) -> Iterator[None]:
    """Drop native log lines below ``min_level`` that TensorFlow writes to fd 2.

    TF 2.21 logs through absl before absl is initialized, which ignores
    TF_CPP_MIN_LOG_LEVEL; everything else written to stderr is passed on.
    """
    if min_level <= 0:
        yield
        return
    dropped = "IWE"[:min_level]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode(errors="replace").splitlines(keepends=True):
                match = _NATIVE_LOG_LINE.match(line)
                if line.startswith(_ABSL_BANNER) or (match and match.group(1) in dropped):
                    continue
                sys.stderr.write(line)


def import_tf() -> ModuleType:
    """Return ``tensorflow.compat.v1`` with TensorFlow's log noise turned down.

    ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (a value the user set is kept; `omzconv -v` sets 0): even
    TF's error-level lines such as "failed call to cuInit" on machines without a GPU are noise here.
    It also filters the native lines TF prints while it is first imported. Eager execution is left on:
    build graphs inside ``with tf.Graph().as_default():``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(tensorflow|tf_slim|keras)")
    # tf_slim calls layer.apply and tf.layers.flatten, which warn with UserWarning.
    warnings.filterwarnings("ignore", message=r".* is deprecated", category=UserWarning, module="tensorflow")
    first_import = "tensorflow" not in sys.modules
    with _native_log_filter(_min_log_level() if first_import else 0):
        import tensorflow.compat.v1 as tf

    # Deprecation notices (convert_variables_to_constants, ...) go to TF's Python logger.
    tf.get_logger().setLevel(logging.ERROR)
    return tf


def session_config() -> Any:
    """A ``ConfigProto`` for omzconv's sessions: CPU only.

    Asking for no GPU also keeps TF from calling cuInit, which logs an error line on every
    machine without CUDA.
    """
    tf = import_tf()
    return tf.ConfigProto(device_count={"GPU": 0})


def restore_ops_tensor() -> bool:
    """Set ``tensorflow.python.framework.ops.Tensor`` to ``tf.Tensor`` if it is missing.

    tf_slim 1.1.0 reads ``ops.Tensor``, which newer TensorFlow no longer defines.
    Returns True if the attribute was added, False if it was already there (no-op).
    """
    from tensorflow.python.framework import ops

    if hasattr(ops, "Tensor"):
        return False
    import tensorflow as tf

    ops.Tensor = tf.Tensor
    return True


def import_slim() -> ModuleType:
    """Return the ``tf_slim`` module, made to work with the installed TensorFlow."""
    import_tf()
    import tf_slim

    restore_ops_tensor()
    return tf_slim


def inference_batch_norm_scope() -> Any:
    """An arg_scope under which upstream TF-Slim networks build in inference mode on TF ≥ 2.16.

    Upstream nets pass ``updates_collections=UPDATE_OPS`` to ``slim.batch_norm``, which then
    delegates to a Keras legacy layer that current TensorFlow no longer ships. With
    ``zero_debias_moving_mean=True`` tf_slim takes its own fused implementation instead; that flag
    only affects moving-average updates, which inference (``is_training=False``) never makes, so
    variables and results are unchanged. omzconv's own networks don't need it
    (they use ``updates_collections=None``).
    """
    slim = import_slim()
    return slim.arg_scope([slim.batch_norm], zero_debias_moving_mean=True)
