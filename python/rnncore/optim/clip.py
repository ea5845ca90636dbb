"""Gradient clipping, in place on a dict name -> gradient array.

:func:`clip_grad_norm_` rescales every gradient by one factor when their global
L2 norm is too large (as :func:`torch.nn.utils.clip_grad_norm_`);
:func:`clip_grad_value_` clips each entry to ``[-clip, clip]`` (min-char-rnn's
``np.clip(dparam, -5, 5, out=dparam)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Union

import numpy as np

from rnncore import _native
from rnncore.errors import ArgumentError, DTypeError
from rnncore.optim._base import non_negative

__all__ = ["clip_grad_norm_", "clip_grad_value_", "global_norm"]

Grads = Union[Mapping[str, np.ndarray], Iterable[np.ndarray]]


def _arrays(grads: Grads) -> list[np.ndarray]:
    """The gradient arrays of a dict (its values) or of an iterable of arrays."""
    arrays = list(grads.values() if isinstance(grads, Mapping) else grads)
    for i, g in enumerate(arrays):
        if not isinstance(g, np.ndarray) or not np.issubdtype(g.dtype, np.floating):
            raise DTypeError(
                f"grads must be floating-point NumPy arrays (clipped in place), entry {i} is "
                f"{type(g).__name__}{'' if not isinstance(g, np.ndarray) else ' ' + str(g.dtype)}"
            )
    return arrays


def global_norm(grads: Grads) -> float:
    """The L2 norm of all gradients together, accumulated in float64.

    Gradients of one dtype, float32 or float64, are summed in one compiled call
    (``rust/src/optim.rs``, pieces in parallel added in order: the same bits at
    any thread count); others in NumPy.
    """
    arrays = _arrays(grads)
    dtypes = {g.dtype for g in arrays}
    one_float = len(dtypes) == 1 and dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}
    kernels = _native.kernels_if_built() if one_float else None
    if kernels is not None:
        return math.sqrt(kernels.sum_squares(arrays))
    total = 0.0
    for g in arrays:
        flat = g.astype(np.float64, copy=False).ravel()
        total += float(np.dot(flat, flat))
    return math.sqrt(total)


def clip_grad_norm_(grads: Grads, max_norm: float) -> float:
    """Scale all gradients in place by ``max_norm / (norm + 1e-6)`` if that is below 1.

    ``norm`` is the global L2 norm of every gradient together (returned). As in
    torch, the ``1e-6`` keeps the division finite. A non-finite norm leaves the
    gradients unchanged (torch would fill them with NaN); the returned ``inf``/``nan``
    lets :class:`~rnncore.optim.NonFiniteGuard` or the caller skip the step.
    """
    max_norm = non_negative("max_norm", max_norm)
    arrays = _arrays(grads)
    norm = global_norm(arrays)
    coef = max_norm / (norm + 1e-6)
    if math.isfinite(norm) and coef < 1:
        for g in arrays:
            g *= g.dtype.type(coef)
    return norm


def clip_grad_value_(grads: Grads, clip: float) -> None:
    """Clip every gradient entry to ``[-clip, clip]`` in place (``clip > 0``)."""
    clip = non_negative("clip", clip)
    if clip == 0:
        raise ArgumentError("clip must be > 0, got 0")
    for g in _arrays(grads):
        np.clip(g, -clip, clip, out=g)
