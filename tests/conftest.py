"""Shared test fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


@pytest.fixture
def killed_and_resumed(tmp_path: Path) -> Callable[[Any, int], Any]:
    """Run a config in tmp_path/cut, kill it (an exception from the progress callback) after global
    step ``stop_at``, resume it from its checkpoint, and return the resumed run's result."""
    from ttedge.train.loop import train

    class Killed(Exception):
        pass

    def run(cfg: Any, stop_at: int) -> Any:
        def kill(event: str, info: dict[str, Any]) -> None:
            if event == "step" and info["step"] == stop_at:
                raise Killed

        with pytest.raises(Killed):
            train(cfg, tmp_path / "cut", callback=kill)
        return train(cfg, tmp_path / "cut", resume=True)

    return run
