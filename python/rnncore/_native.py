"""The one place the compiled extension :mod:`rnncore._rnncore` is loaded.

``import rnncore`` does not load it: everything that runs on the NumPy
reference (``backend=rnncore.reference``) works without it. The first call that
needs a compiled kernel loads it through :func:`kernels`, and if it is missing
gets an ``ImportError`` that says how to build it or how to do without.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from rnncore.errors import ArgumentError

__all__ = ["SIMD_LEVELS", "SIMD_VAR", "kernels", "kernels_if_built"]

SIMD_VAR = "RNNCORE_SIMD"  # caps the kernels' SIMD level, read when they first run
SIMD_LEVELS = ("avx512", "avx2", "avx2+fma", "scalar")

MISSING = (
    "the compiled kernels rnncore._rnncore cannot be imported (build them with "
    "`maturin develop --release`, or run `bash scripts/setup.sh`); layers run on "
    "the NumPy reference without them: pass backend=rnncore.reference"
)


def kernels() -> ModuleType:
    """The compiled extension module, loaded on first use.

    Raises :class:`~rnncore.errors.ArgumentError` when ``RNNCORE_SIMD`` is set to
    anything but ``avx512``, ``avx2`` or ``scalar`` (the level the kernels are
    capped at, for testing and measuring the fallbacks).
    """
    level = os.environ.get(SIMD_VAR)
    if level is not None and level.strip().lower() not in SIMD_LEVELS:
        raise ArgumentError(
            f"{SIMD_VAR}={level[:40]!r} is not a SIMD level; use avx512, avx2 or scalar "
            "(or leave it unset for the best this CPU has)"
        )
    try:
        return importlib.import_module("rnncore._rnncore")
    except ImportError as err:
        raise ImportError(MISSING) from err


def kernels_if_built() -> ModuleType | None:
    """:func:`kernels`, or None when the extension is not built: for the paths
    that have a NumPy form to fall back on (the products, the loss, the
    optimizer, the embedding's backward)."""
    try:
        return kernels()
    except ImportError:  # the NumPy reference alone
        return None


def writable_in_place(a: Any) -> bool:
    """Whether the compiled kernels can write the array ``a`` in place: C-contiguous,
    writeable and aligned, as the binding's ``writable`` requires
    (``rust/src/python/arrays.rs``)."""
    flags = a.flags
    return bool(flags.c_contiguous and flags.writeable and flags.aligned)
