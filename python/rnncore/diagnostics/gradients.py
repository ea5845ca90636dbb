"""Gradient flow through time, and the spectral radius of the recurrent weights.

:func:`layer_gradient_flow` measures ``||dL_T / dh_t||`` for a loss at the last
step ``T-1`` as a function of the distance ``d = T-1-t``, for every layer, with
the kernels' own backward: the state after step ``t`` (from a trace) starts a
sequence of the ``d`` remaining inputs, and all ``T-1`` such sequences run as
one batch; the backward returns ``dL/dh_0`` of each, which is ``dL/dh_t``.
A vanilla RNN's curve falls geometrically with ``d`` (vanishing gradients); an
LSTM's falls much more slowly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models._base import check_ids

__all__ = ["GradientFlow", "gradient_flow", "layer_gradient_flow", "spectral_radius"]

MAX_STEPS = 2000  # the batch of suffixes costs T^2/2 steps


@dataclass
class GradientFlow:
    """``norm[k, j]``: ``||dL_T/dh_t||`` of layer ``k`` at distance ``distance[j] = T-1-t``."""

    distance: np.ndarray  # (T-1,) 1 .. T-1
    norm: np.ndarray  # (num_layers, T-1), mean over the sequences


def layer_gradient_flow(rnn: Any, x: Any, d_last: Any) -> GradientFlow:
    """Gradient flow through a unidirectional recurrent layer.

    Args:
        rnn: an :class:`rnncore.nn.RNN`, ``LSTM`` or ``GRU`` (time-major, one direction).
        x: ``(T, N, D)`` inputs, ``2 <= T <= 2000``.
        d_last: ``(N, H)`` the gradient of the loss with respect to the top layer's
            output at the last step (for a linear head ``W``: ``W^T dL/dy``).

    Returns:
        :class:`GradientFlow` with the norms of ``dL/dh_t`` (the hidden state; the
        cell state's gradient is not included) averaged over the ``N`` sequences.
    """
    if rnn.bidirectional or rnn.batch_first:
        raise ArgumentError("gradient flow needs a unidirectional, time-major layer")
    x = _validate.float_array("x", x, rnn.dtype)
    _validate.ndim("x", x, (3,), "(T, N, D)")
    T, N, D = x.shape
    if not 2 <= T <= MAX_STEPS:
        raise ArgumentError(f"x must have 2..{MAX_STEPS} steps, got {T}")
    H, L = rnn.hidden_size, rnn.num_layers
    d_last = _validate.float_array("d_last", d_last, rnn.dtype)
    _validate.shape("d_last", d_last, (N, H), "(N, H)")
    training = rnn.training
    rnn.train(False)
    try:
        arrays, _ = rnn.trace(x)  # (L, T, N, H) each
        R = (T - 1) * N  # row (d-1)*N + n: sequence n from the state after step T-1-d
        xs = np.zeros((T - 1, R, D), rnn.dtype)  # zero after each row's d steps
        d_out = np.zeros((T - 1, R, H), rnn.dtype)
        starts = {k: np.empty((L, R, H), rnn.dtype) for k in ("h", "c") if k in arrays}
        for d in range(1, T):
            rows = slice((d - 1) * N, d * N)
            xs[:d, rows] = x[T - d :]  # (d, N, D)
            d_out[d - 1, rows] = d_last  # the loss at each row's last step
            for k, a in starts.items():
                a[:, rows] = arrays[k][:, T - 1 - d]  # (L, N, H)
        hx = (starts["h"], starts["c"]) if "c" in starts else starts["h"]
        rnn(xs, hx)
        _, d_hx = rnn.backward(d_out)
        rnn.clear_cache()
    finally:
        rnn.train(training)
    dh = d_hx[0] if isinstance(d_hx, tuple) else d_hx  # (L, R, H)
    norms = np.linalg.norm(dh.astype(np.float64), axis=-1).reshape(L, T - 1, N)
    return GradientFlow(np.arange(1, T), norms.mean(axis=2))


def gradient_flow(model: Any, ids: Any) -> GradientFlow:
    """Gradient flow of a :class:`~rnncore.models.CharLM` on one text.

    Args:
        model: the language model (its dropout is off during the measurement).
        ids: ``(T+1,)`` symbol ids, ``2 <= T <= 2000``: the loss is the
            cross-entropy of predicting ``ids[T]`` after reading ``ids[:T]``.

    Returns:
        :class:`GradientFlow`, ``norm (num_layers, T-1)``.
    """
    V = model.config.vocab_size
    ids = check_ids("ids", ids, V, 1, "(T+1,)")
    if ids.shape[0] < 3:
        raise ShapeError(f"ids must hold at least 3 symbols, got {ids.shape[0]}")
    x = model._encode(ids[:-1, None], V, model.dtype)  # (T, 1, D)
    rnn = model.rnn
    training = rnn.training
    rnn.train(False)
    try:
        arrays, _ = rnn.trace(x)  # (L, T, 1, H)
    finally:
        rnn.train(training)
    h_last = arrays["h"][-1, -1].astype(np.float64)  # (1, H) top layer, last step
    w, b = model.head.weight.astype(np.float64), model.head.bias.astype(np.float64)
    logits = h_last @ w.T + b  # (1, V)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[0, ids[-1]] -= 1.0  # dL/dlogits of the cross-entropy
    return layer_gradient_flow(rnn, x, (p @ w).astype(model.dtype))


def spectral_radius(model: Any) -> dict[str, np.ndarray]:
    """``{name: (G,)}``: the spectral radius of each gate's ``(H, H)`` block of every
    ``weight_hh`` parameter (gates in PyTorch's order: ``i, f, g, o`` for LSTM,
    ``r, z, n`` for GRU, one block for a vanilla RNN)."""
    out = {}
    for name, w in model.named_parameters():
        if "weight_hh" not in name:
            continue
        H = w.shape[1]
        blocks = w.astype(np.float64).reshape(-1, H, H)  # (G, H, H)
        out[name] = np.array([np.abs(np.linalg.eigvals(b)).max() for b in blocks])
    return out
