"""The exceptions ttedge raises for bad input.

Every message is one sentence naming what is wrong and how to fix it, so that the CLI can print it
as is instead of a traceback.
"""

from __future__ import annotations

__all__ = ["TTEdgeError", "ShapeError", "ConfigError", "CheckpointError", "DataError", "ToolError"]


class TTEdgeError(ValueError):
    """Base class of every error caused by the user's input rather than by a bug."""


class ShapeError(TTEdgeError):
    """Modes, ranks or tensor shapes that do not fit together."""


class ConfigError(TTEdgeError):
    """A configuration file or override that cannot be used."""


class CheckpointError(TTEdgeError):
    """A checkpoint that is missing, corrupt, or belongs to another run."""


class DataError(TTEdgeError):
    """A data set that is missing, corrupt, or cannot be fetched."""


class ToolError(TTEdgeError):
    """An external tool (Yosys, nextpnr) that is missing or cannot be run."""
