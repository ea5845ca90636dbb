"""rnncore: fast CPU training and sampling of recurrent neural networks."""

from __future__ import annotations

from rnncore import (
    checkpoint,
    convert,
    corpus,
    data,
    decode,
    errors,
    models,
    nn,
    optim,
    reference,
    train,
)
from rnncore._rnncore import __version__, get_num_threads, set_num_threads, simd_level
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
    "__version__",
    "checkpoint",
    "convert",
    "corpus",
    "data",
    "decode",
    "errors",
    "get_num_threads",
    "models",
    "nn",
    "optim",
    "reference",
    "set_num_threads",
    "simd_level",
    "train",
]
