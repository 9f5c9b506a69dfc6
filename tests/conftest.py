"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


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
