"""The one place the compiled extension :mod:`rnncore._rnncore` is loaded.

``import rnncore`` does not load it: everything that runs on the NumPy
reference (``backend=rnncore.reference``) works without it. The first call that
needs a compiled kernel loads it through :func:`kernels`, and if it is missing
gets an ``ImportError`` that says how to build it or how to do without.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["kernels"]

MISSING = (
    "the compiled kernels rnncore._rnncore cannot be imported (build them with "
    "`maturin develop --release`, or run `bash scripts/setup.sh`); layers run on "
    "the NumPy reference without them: pass backend=rnncore.reference"
)


def kernels() -> ModuleType:
    """The compiled extension module, loaded on first use."""
    try:
        return importlib.import_module("rnncore._rnncore")
    except ImportError as err:
        raise ImportError(MISSING) from err
