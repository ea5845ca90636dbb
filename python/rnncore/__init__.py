"""rnncore: fast CPU training and sampling of recurrent neural networks."""

from __future__ import annotations

from rnncore import errors
from rnncore.errors import (
    ArgumentError,
    CheckpointError,
    DTypeError,
    NonFiniteError,
    RnnCoreError,
    ShapeError,
)

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "DTypeError",
    "NonFiniteError",
    "RnnCoreError",
    "ShapeError",
    "errors",
]
