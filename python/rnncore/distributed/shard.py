"""How the ``N`` parallel streams are cut among ``W`` workers, and what follows
from it; plain NumPy, no Ray.

Worker ``w`` of ``W`` owns the contiguous rows ``shard_rows(N, W)[w]`` of every
chunk ``(N, T)``, of the carried state ``(num_layers, N, H)`` and of every
dropout mask ``(T, N, ...)``. A step's gradients are one flat vector
``(P,)`` in the order of ``model.grads``, cut into ``W`` pieces for the
all-reduce (:func:`pieces`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from rnncore.errors import ArgumentError

__all__ = [
    "ShardGenerator",
    "concat_states",
    "flat_grads",
    "model_signature",
    "pieces",
    "set_flat_grads",
    "shard_rows",
    "slice_state",
]


def shard_rows(N: int, W: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]``: the rows of each of ``W`` workers, sizes differing by
    at most one (the first ``N % W`` workers take one more)."""
    if not isinstance(W, int) or W < 1:
        raise ArgumentError(f"workers must be an integer >= 1, got {W!r}")
    if W > N:
        raise ArgumentError(
            f"workers ({W}) must not exceed the number of parallel streams (batch size {N})"
        )
    base, extra = divmod(N, W)
    bounds, lo = [], 0
    for w in range(W):
        hi = lo + base + (1 if w < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def slice_state(state: Any, lo: int, hi: int) -> Any:
    """Rows ``lo:hi`` of a carried state (None, an array or a tuple of arrays,
    each ``(num_layers, N, H)``), copied."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(np.ascontiguousarray(s[:, lo:hi]) for s in state)
    return np.ascontiguousarray(state[:, lo:hi])


def concat_states(parts: list[Any]) -> Any:
    """The full carried state from the workers' parts, in worker order (all None,
    or all of the same structure)."""
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ArgumentError("the workers' carried states disagree (some are reset, some not)")
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([p[i] for p in parts], axis=1) for i in range(len(parts[0])))
    return np.concatenate(parts, axis=1)


def flat_grads(grads: dict[str, np.ndarray]) -> np.ndarray:
    """``(P,)``: every gradient, flattened and concatenated in dict order."""
    return np.concatenate([g.ravel() for g in grads.values()])


def set_flat_grads(grads: dict[str, np.ndarray], flat: np.ndarray) -> None:
    """Copy ``flat (P,)`` back into the gradient arrays, in place."""
    at = 0
    for g in grads.values():
        g.ravel()[:] = flat[at : at + g.size]  # the arrays are contiguous: a view
        at += g.size
    if at != flat.size:
        raise ArgumentError(f"a flat gradient of {flat.size} values for {at} parameters")


def pieces(flat: np.ndarray, W: int) -> list[np.ndarray]:
    """``flat (P,)`` cut into ``W`` contiguous pieces (sizes differ by at most one)."""
    return [np.ascontiguousarray(p) for p in np.array_split(flat, W)]


def model_signature(model: Any, optimizer: Any) -> dict[str, Any]:
    """What must be the same on every worker: the model's class and config, each
    parameter's name, shape and dtype, the optimizer and its hyperparameters,
    and the versions that compute the steps."""
    import dataclasses

    from rnncore import _rnncore

    config = model.config
    params = [(k, list(p.shape), str(p.dtype)) for k, p in model.named_parameters()]
    digest = hashlib.sha256(repr(params).encode()).hexdigest()[:16]
    return {
        "model": type(model).__name__,
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        "parameters": digest,
        "optimizer": type(optimizer).__name__,
        "hyperparameters": {k: repr(v) for k, v in optimizer.hyperparameters.items()},
        "rnncore": _rnncore.__version__,
        "numpy": np.__version__,
    }


class ShardGenerator(np.random.Generator):
    """A generator whose masks are drawn per stream: ``random(size)`` with
    ``size = (T, rows, ...)`` draws the mask ``(T, N, ...)`` of all ``N`` streams
    and returns the rows ``lo:hi`` of this worker, so that entry ``(t, n, j)`` is
    the same for any number of workers. It shares ``bit_generator`` with the
    model's generator, whose state checkpoints save. Only dropout draws from a
    model's generator while training; it draws time-major ``(T, N, ...)``."""

    def __init__(self, bit_generator: np.random.BitGenerator, lo: int, hi: int, N: int) -> None:
        super().__init__(bit_generator)
        self.lo, self.hi, self.N = lo, hi, N

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        shape = (size,) if isinstance(size, int) else tuple(size or ())
        if out is not None or len(shape) < 2 or shape[1] != self.hi - self.lo:
            raise ArgumentError(
                f"a sharded generator draws (T, {self.hi - self.lo}, ...) masks, "
                f"asked for size={size!r}"
            )
        full = super().random((shape[0], self.N, *shape[2:]), dtype=dtype)  # (T, N, ...)
        return full[:, self.lo : self.hi]
