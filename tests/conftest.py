"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def configs_dir() -> Path:
    return REPO / "configs"


@pytest.fixture
def mnist_dir() -> Path:
    """The shared MNIST folder of the development machines; tests using it skip elsewhere."""
    path = Path(os.environ.get("TTEDGE_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
    if not path.is_dir():
        pytest.skip(f"MNIST not found at {path} (set TTEDGE_MNIST_DIR)")
    return path
