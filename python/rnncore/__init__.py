"""rnncore: fast CPU training and sampling of recurrent neural networks.

The compiled extension is loaded on first use (:mod:`rnncore._native`), so
``import rnncore`` and the NumPy reference backend work without it.
"""

from __future__ import annotations

import numbers
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
from rnncore._grad import enable_grad, is_grad_enabled, no_grad
from rnncore._native import kernels as _kernels
from rnncore._weight_cache import clear_weight_cache, set_weight_cache_limit, weight_cache_info
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
    "MAX_THREADS",
    "ArgumentError",
    "CheckpointError",
    "DTypeError",
    "NonFiniteError",
    "RnnCoreError",
    "ShapeError",
    "StateError",
    "__version__",
    "checkpoint",
    "clear_weight_cache",
    "convert",
    "corpus",
    "data",
    "decode",
    "enable_grad",
    "errors",
    "get_num_threads",
    "is_grad_enabled",
    "models",
    "nn",
    "no_grad",
    "optim",
    "reference",
    "set_num_threads",
    "set_weight_cache_limit",
    "simd_level",
    "train",
    "weight_cache_info",
]


MAX_THREADS = 1024
"""Most threads :func:`set_num_threads` takes (``RNNCORE_NUM_THREADS`` is cut to it)."""


def set_num_threads(n: int | None) -> None:
    """Threads of the compiled kernels (results are bitwise the same at any count).

    ``n`` is an integer in ``1..MAX_THREADS``; ``None`` restores the default
    (``RNNCORE_NUM_THREADS``, else every core this process may use).
    """
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise DTypeError(f"n must be an integer or None, got {type(n).__name__}")
        if not 1 <= int(n) <= MAX_THREADS:
            raise ArgumentError(f"n must lie in 1..{MAX_THREADS}, got {int(n)}")
        n = int(n)
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
