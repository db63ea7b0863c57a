"""ttedge: tensor-train neural networks whose training fits on edge devices and FPGAs.

The pipeline: ``tt`` (TT cores, contractions, TTLinear) -> ``train`` (float training runs) ->
``memory`` (what a training step keeps in memory). Import the layer as ``from ttedge import TTLinear``.
"""

from .errors import CheckpointError, ConfigError, DataError, ShapeError, TTEdgeError
from .tt import TTLinear, factorize, to_dense, tt_apply, tt_svd

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "ShapeError",
    "TTEdgeError",
    "TTLinear",
    "factorize",
    "to_dense",
    "tt_apply",
    "tt_svd",
]
