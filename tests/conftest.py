"""Shared pytest fixtures.

The expensive artefacts — synthetic checkpoints, frozen graphs, IRs — are built once per test
session, lazily, in one synthetic workspace that every test module shares.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from omzconv.registry import Model, Registry, load_registry
from omzconv.workspace import Workspace

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
ROOT = Path(__file__).resolve().parents[1]


SLOW_FIXTURES = {"artefacts", "synthetic_workspace"}  # what builds synthetic checkpoints, graphs and IRs


def pytest_collection_modifyitems(items) -> None:
    """Every test that needs the session's synthetic workspace is `slow` (`-m "not slow"` skips it)."""
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout: reference variable lists and sample images."""
    if not SHARED_DIR.is_dir():
        pytest.fail(
            f"{SHARED_DIR} is missing: the tests read reference data from the 'shared' "
            "directory beside the checkout (slim-variables/, imagenet-sample/)",
            pytrace=False,
        )
    return SHARED_DIR


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry(ROOT / "models.yaml")


@pytest.fixture(scope="session")
def synthetic_workspace(tmp_path_factory) -> Workspace:
    """One synthetic workspace for the session (cache and output under a temp dir)."""
    root = tmp_path_factory.mktemp("omzconv")
    return Workspace(cache_dir=root / "cache", output_dir=root / "out", synthetic=True)


class Artefacts:
    """Synthetic checkpoints, frozen graphs and IRs, each made on first use."""

    def __init__(self, registry: Registry, workspace: Workspace) -> None:
        self.registry, self.workspace = registry, workspace

    def model(self, name: str) -> Model:
        return self.registry.model(name)

    def checkpoint(self, name: str) -> Path:
        from omzconv.pipeline import obtain_checkpoint
        return obtain_checkpoint(self.model(name), self.workspace)

    def frozen(self, name: str) -> Path:
        from omzconv.pipeline import ensure_frozen
        return ensure_frozen(self.model(name), self.workspace).path

    def ir(self, name: str, precision: str) -> Path:
        from omzconv.pipeline import ensure_converted
        return ensure_converted(self.model(name), self.workspace, self.registry, precision).path

    def int8(self, name: str, data_dir: Path, calibration_size: int) -> Path:
        """The INT8 IR calibrated on `calibration_size` images of `data_dir` (no agreement check)."""
        from omzconv.quantize import ensure_quantized, load_calibration_source
        source = load_calibration_source(self.registry, "imagenet-val", data_dir)
        return ensure_quantized(self.model(name), self.workspace, self.registry, source,
                                calibration_size=calibration_size, check_images=0).path


@pytest.fixture(scope="session")
def artefacts(registry, synthetic_workspace) -> Artefacts:
    return Artefacts(registry, synthetic_workspace)
