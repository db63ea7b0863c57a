"""Atomic checkpoints: written to a temporary file, flushed, then renamed over the old one.

A crash at any moment leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

__all__ = ["save_checkpoint", "load_checkpoint"]

FORMAT = "ttedge-checkpoint-1"


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) atomically to ``path``."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing anything else clearly."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"no checkpoint at {p}; resume from a run folder that holds checkpoint.pt.")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {p} is corrupt or truncated ({reason[:120]}); delete it to restart the run "
            "or restore an intact copy."
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{p} is not a ttedge checkpoint of format {FORMAT}; point --resume at a ttedge run folder.")
    return state
