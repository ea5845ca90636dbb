"""rnncore: fast CPU training and sampling of recurrent neural networks.

The compiled extension is loaded on first use (:mod:`rnncore._native`), so
``import rnncore`` and the NumPy reference backend work without it.
"""

from __future__ import annotations

from typing import Any

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
from rnncore._native import kernels as _kernels
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


def set_num_threads(n: int) -> None:
    """Threads of the compiled kernels (results are bitwise the same at any count)."""
    _kernels().set_num_threads(n)


def get_num_threads() -> int:
    """Threads the compiled kernels use."""
    return int(_kernels().get_num_threads())


def simd_level() -> str:
    """The SIMD level the compiled kernels run at on this CPU."""
    return str(_kernels().simd_level())


def __getattr__(name: str) -> Any:
    if name == "__version__":  # the extension's version, loaded on first use
        return _kernels().__version__
    raise AttributeError(f"module 'rnncore' has no attribute {name!r}")
