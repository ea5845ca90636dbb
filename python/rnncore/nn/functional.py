"""Softmax, log-softmax and the fused softmax cross-entropy, on NumPy arrays.

:func:`softmax_cross_entropy` returns the loss and its gradient with respect to
the logits from one pass over them: with ``p = softmax(logits)`` the gradient of
the mean negative log-likelihood is ``(p - onehot(targets)) * w / sum(w)``, so the
probabilities computed for the loss are turned into the gradient in place. The
hot path runs in the compiled kernels (``rust/src/loss.rs``: three vectorised
passes per row, the exponentials and sums in float64, rows in parallel, the
loss summed in row order), and in NumPy (:func:`_numpy_cross_entropy`) when
the extension is not built.

Shapes: M positions (for a language model M = N*T), V classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncore import _native, _validate
from rnncore.errors import ArgumentError, DTypeError, ShapeError

__all__ = ["log_softmax", "softmax", "softmax_cross_entropy"]

Array = np.ndarray
REDUCTIONS = ("mean", "sum")


# --------------------------------------------------------------------- checks


def _integers(name: str, value: Any) -> Array:
    """``value`` as an array of integers (``bool`` and floats are refused)."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise DTypeError(f"{name} must be an array of integers, got dtype {arr.dtype}")
    return arr


def _in_range(name: str, arr: Array, high: int, counted: Array | None = None) -> None:
    """Raise unless every entry of ``arr`` (where ``counted``, if given) lies in ``0..high-1``."""
    values = arr if counted is None else arr[counted]
    if values.size and (values.min() < 0 or values.max() >= high):
        bad = values[(values < 0) | (values >= high)][0]
        raise ArgumentError(
            f"{name} must lie in 0..{high - 1}, got {bad} (range {values.min()}..{values.max()})"
        )


def _logits(value: Any, ndim: int | None) -> Array:
    """``value`` as a float32/float64 array with at least one class on its last axis."""
    arr = np.asarray(value)
    if arr.dtype not in _validate.FLOAT_DTYPES:
        raise DTypeError(f"logits must be a float32 or float64 array, got dtype {arr.dtype}")
    if ndim is not None:
        _validate.ndim("logits", arr, (ndim,), "2-D (M, V)")
    if arr.ndim == 0 or arr.shape[-1] == 0:
        raise ShapeError(f"logits needs at least one class on its last axis, got {arr.shape}")
    return arr


def _weights(mask: Any, M: int) -> Array | None:
    """``mask`` as ``(M,)`` float64 weights (finite, >= 0), or None."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ and not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise DTypeError(f"mask must be bool or numeric, got dtype {arr.dtype}")
    _validate.shape("mask", arr, (M,), "(M,)")
    w = arr.astype(np.float64)
    _validate.finite("mask", w)
    if w.size and w.min() < 0:
        raise ArgumentError(f"mask must be >= 0 (a weight per position), got {w.min()}")
    return w


# --------------------------------------------------------------------- softmax


def log_softmax(logits: Any) -> Array:
    """``log(softmax(logits))`` along the last axis, computed stably.

    ``logits (..., V)`` float32 or float64 -> ``(..., V)`` of the same dtype.
    Huge logits (up to the largest float) keep their differences. Entries equal
    to ``+inf`` share all the mass equally (``-log count``, the rest ``-inf``);
    a row of ``-inf`` only, or with a NaN, has no distribution and gives NaN.
    The compiled decoder follows the same rule.
    """
    x = _logits(logits, None)
    top = x.max(axis=-1, keepdims=True)  # (..., 1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        shifted = x - np.where(np.isinf(top), 0, top)  # (..., V), max 0 per finite row
        out = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        posinf = np.isposinf(x)
        count = posinf.sum(axis=-1, keepdims=True)  # (..., 1)
        shared = np.where(posinf, -np.log(np.maximum(count, 1)), -np.inf).astype(x.dtype)
    out = np.where(count > 0, shared, out)
    no_mass = np.isnan(top) | np.isneginf(top)  # (..., 1)
    return np.where(no_mass, np.asarray(np.nan, x.dtype), out).astype(x.dtype, copy=False)


def softmax(logits: Any) -> Array:
    """Probabilities along the last axis: ``logits (..., V)`` -> ``(..., V)``, same dtype."""
    x = _logits(logits, None)
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # (..., V)
    e /= e.sum(axis=-1, keepdims=True)
    return e


# --------------------------------------------------------------------- cross-entropy


def softmax_cross_entropy(
    logits: Any,
    targets: Any,
    *,
    mask: Any = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
    overwrite_logits: bool = False,
) -> tuple[float, Array]:
    """Cross-entropy of ``softmax(logits)`` against integer targets, and its gradient.

    ``loss = sum_m w_m * (logsumexp(logits[m]) - logits[m, targets[m]])``, divided by
    ``sum_m w_m`` for ``reduction="mean"``. The weight ``w_m`` is ``mask[m]`` (1 if
    no mask) and 0 where ``targets[m] == ignore_index``; such positions add nothing
    and may hold any target (for instance a padding value). As in
    :func:`torch.nn.functional.cross_entropy`, except that when no position counts
    the mean is 0 with a zero gradient (torch gives NaN).

    Args:
        logits: ``(M, V)`` float32 or float64 scores.
        targets: ``(M,)`` integers in ``0..V-1`` at every counted position.
        mask: ``(M,)`` bool, 0/1 or non-negative weights; None counts every position.
        ignore_index: a target value whose positions are not counted, or None.
        reduction: ``"mean"`` (over counted positions) or ``"sum"``.
        overwrite_logits: write the gradient into ``logits`` itself (when it is
            a C-contiguous, aligned, writeable array; otherwise into a copy), so
            that no second array of its size is allocated.

    Returns:
        ``(loss, dlogits)``: the loss as a Python float and its gradient with
        respect to ``logits``, ``(M, V)`` in the dtype of ``logits``. Non-finite
        logits are not an error: they give a non-finite loss and gradient, which
        :class:`rnncore.optim.NonFiniteGuard` detects.
    """
    x = _logits(logits, 2)
    M, V = x.shape
    t = _integers("targets", targets)
    _validate.shape("targets", t, (M,), "(M,) = one per row of logits")
    w = _weights(mask, M)
    reduction = _validate.choice("reduction", reduction, REDUCTIONS)
    if ignore_index is not None:
        ignore_index = int(_integers("ignore_index", ignore_index))
        keep = (t != ignore_index).astype(np.float64)  # (M,)
        w = keep if w is None else w * keep
    counted = None if w is None else w != 0  # (M,) bool
    _in_range("targets", t, V, counted)
    if counted is not None:
        t = np.where(counted, t, 0)  # uncounted positions: any valid index, weight 0
    overwrite_logits = _validate.flag("overwrite_logits", overwrite_logits)
    if w is not None and reduction == "mean" and w.size and w.max() > 0:
        w = w / w.max()  # the same mean, with a sum and its reciprocal in range
    total = float(M) if w is None else float(w.sum())
    scale = 1.0 / total if reduction == "mean" and total > 0 else 1.0
    return _fused_cross_entropy(x, t, w, scale, overwrite_logits)


def _fused_cross_entropy(
    logits: Array, targets: Array, weights: Array | None, scale: float, overwrite: bool
) -> tuple[float, Array]:
    """The hot path: checked ``logits (M, V)``, ``targets (M,)`` in range, weights or None.

    Returns ``(scale * sum_m w_m * nll_m, dlogits (M, V))``; the gradient is
    ``logits`` itself with ``overwrite`` (when it can be written in place), else
    the one array of its size allocated.
    """
    kernels = _native.kernels_if_built()
    if kernels is None:
        return _numpy_cross_entropy(logits, targets, weights, scale)
    in_place = overwrite and _native.writable_in_place(logits)
    grad = logits if in_place else np.array(logits, order="C")  # (M, V)
    loss = kernels.cross_entropy(grad, targets, weights, scale)
    return float(loss), grad


def _numpy_cross_entropy(
    logits: Array, targets: Array, weights: Array | None, scale: float
) -> tuple[float, Array]:
    """:func:`_fused_cross_entropy` in NumPy: one temporary of the size of ``logits``,
    which becomes the gradient."""
    M = logits.shape[0]
    rows = np.arange(M)
    with np.errstate(all="ignore"):  # non-finite logits give a non-finite loss, quietly
        probs = logits - logits.max(axis=1, keepdims=True)  # (M, V) shifted, max 0 per row
        picked = probs[rows, targets].astype(np.float64)  # (M,) shifted target logits
        np.exp(probs, out=probs)
        sums = probs.sum(axis=1)  # (M,)
        nll = np.log(sums.astype(np.float64)) - picked  # (M,)
        probs /= sums[:, None]  # softmax
        probs[rows, targets] -= 1  # d(nll_m)/d(logits[m]) = p - onehot(targets[m])
        if weights is None:
            probs *= probs.dtype.type(scale)
            return float(nll.sum() * scale), probs
        counted = weights != 0  # (M,)
        probs *= (weights * scale).astype(probs.dtype)[:, None]
        probs[~counted] = 0  # exactly zero, even where the logits are not finite
        loss = float(np.dot(weights[counted], nll[counted]) * scale)
    return loss, probs
