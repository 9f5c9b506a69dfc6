"""GFLOPs and MParams in models.yaml: present for every model, and reproduced by
benchmarks/model_specs.py, which counts them on omzconv's own network."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "model_specs.py"


def _model_specs():
    spec = importlib.util.spec_from_file_location("model_specs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_every_model_has_gflops_and_mparams(registry) -> None:
    missing = [m.name for m in registry.models if not (m.gflops > 0 and m.mparams > 0)]
    assert not missing, f"models.yaml: no gflops/mparams for {', '.join(missing)}"


@pytest.mark.slow
def test_script_reproduces_models_yaml(registry) -> None:
    model = registry.model("mobilenet_v1_025_128")
    spec = _model_specs().measure(model)
    assert spec.outputs == ("MobilenetV1/Predictions/Reshape_1",)
    assert spec.flops / 1e9 == pytest.approx(model.gflops, rel=0.005)
    assert spec.params / 1e6 == pytest.approx(model.mparams, rel=0.005)
