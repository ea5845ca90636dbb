"""Nested states (arrays in tuples and lists) <-> flat named tensors + JSON.

A recurrent state is an array, an ``(h, c)`` tuple, a list of per-layer
states or ``None``. :func:`flatten` turns it into named arrays (for a
safetensors file) and a JSON description of the nesting; :func:`unflatten`
rebuilds it.

    flatten("state", (h, c)) -> {"state.0": h, "state.1": c},
                                {"tuple": ["array", "array"]}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncore.errors import CheckpointError

__all__ = ["flatten", "unflatten"]


def flatten(prefix: str, value: Any) -> tuple[dict[str, np.ndarray], Any]:
    """Named arrays under ``prefix`` and the JSON spec of ``value``'s nesting."""
    tensors: dict[str, np.ndarray] = {}

    def walk(name: str, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, np.ndarray):
            tensors[name] = np.ascontiguousarray(v)
            return "array"
        if isinstance(v, (tuple, list)):
            kind = "tuple" if isinstance(v, tuple) else "list"
            return {kind: [walk(f"{name}.{i}", item) for i, item in enumerate(v)]}
        raise TypeError(f"cannot store a {type(v).__name__} in a checkpoint state ({name})")

    spec = walk(prefix, value)
    return tensors, spec


def unflatten(prefix: str, tensors: dict[str, np.ndarray], spec: Any, source: str) -> Any:
    """The value that :func:`flatten` described; ``source`` names the file in
    error messages."""

    def walk(name: str, s: Any) -> Any:
        if s is None:
            return None
        if s == "array":
            if name not in tensors:
                raise CheckpointError(f"{source}: tensor {name!r} is missing")
            return tensors[name]
        if isinstance(s, dict) and len(s) == 1:
            kind, items = next(iter(s.items()))
            if kind in ("tuple", "list") and isinstance(items, list):
                out = [walk(f"{name}.{i}", item) for i, item in enumerate(items)]
                return tuple(out) if kind == "tuple" else out
        raise CheckpointError(f"{source}: invalid description of the stored state at {name!r}")

    return walk(prefix, spec)
