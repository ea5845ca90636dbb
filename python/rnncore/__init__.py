"""rnncore: fast CPU training and sampling of recurrent neural networks."""

from __future__ import annotations

from rnncore import errors, nn, reference
from rnncore.errors import (
    ArgumentError,
    CheckpointError,
    DTypeError,
    NonFiniteError,
    RnnCoreError,
    ShapeError,
    StateError,
)

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "DTypeError",
    "NonFiniteError",
    "RnnCoreError",
    "ShapeError",
    "StateError",
    "errors",
    "nn",
    "reference",
]
