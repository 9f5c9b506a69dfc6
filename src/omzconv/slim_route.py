"""Build the network from a user's upstream tensorflow/models `research/slim` checkout.

This is the route the Open Model Zoo documented (checkout, `patches/freeze.py.patch`, run
`freeze.py`); `omzconv freeze --slim-dir DIR` takes it in-process, so the result gets omzconv's
checks, sidecar and atomic write, and the tf_slim fix applies without a manual step.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from omzconv.errors import OmzconvError
from omzconv.freeze import Builder
from omzconv.registry import Model


def _import_factory(slim_dir: Path) -> Any:
    """Import `nets.nets_factory` from `slim_dir`, not from any `nets` imported before."""
    from omzconv.tfcompat import import_slim

    import_slim()  # the tf_slim fix must be in place before upstream code imports tf_slim
    saved = {name: mod for name, mod in sys.modules.items() if name == "nets" or name.startswith("nets.")}
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(slim_dir))
    try:
        return importlib.import_module("nets.nets_factory")
    except Exception as exc:
        raise OmzconvError(f"cannot import nets/nets_factory.py from {slim_dir}: {exc}") from exc
    finally:
        sys.path.remove(str(slim_dir))
        for name in [n for n in sys.modules if n == "nets" or n.startswith("nets.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def slim_network(slim_dir: Path, model: Model) -> Builder:
    """A builder like omzconv.nets' that calls the checkout's `nets_factory.get_network_fn`."""
    slim_dir = Path(slim_dir).resolve()
    if not (slim_dir / "nets" / "nets_factory.py").is_file():
        raise OmzconvError(f"{slim_dir} is not a research/slim checkout: nets/nets_factory.py not found")
    factory = _import_factory(slim_dir)
    if model.network not in getattr(factory, "nets_map", {model.network: None}):
        raise OmzconvError(f"{slim_dir}/nets/nets_factory.py has no network {model.network!r}")

    def build(images: Any, num_classes: int, is_training: bool = False) -> tuple[Any, dict[str, Any]]:
        from omzconv.tfcompat import inference_batch_norm_scope

        network_fn = factory.get_network_fn(model.network, num_classes=num_classes, is_training=is_training)
        with inference_batch_norm_scope():
            return network_fn(images)

    return build
