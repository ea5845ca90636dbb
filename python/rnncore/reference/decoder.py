"""The teacher-forced attention decoder over a whole target sequence, in float64 NumPy.

Each step ``t`` of a decoder with a recurrent cell (``rnn_tanh``, ``rnn_relu``,
``lstm``, ``gru``, :mod:`.cells`) and attention (:mod:`.attention`) over the encoder
outputs ``memory (N, S, M)``::

    x_t = [y_t; context_{t-1}]                 (N, E + M)  input feeding, context_{-1} = context0
    h_t (, c_t) = cell(x_t, h_{t-1} (, c_{t-1}))
    context_t, weights_t = attend(h_t, memory)  (N, M), (N, S)
    output_t = [h_t; context_t]                (N, H + M)  what the head reads

``y (T, N, E)`` are the embedded target inputs (teacher forcing: the true previous
symbol). The key projection of the memory is computed once per call, not once per
step. Padded target steps are computed like the others: the loss masks them, so
their output gradient is zero.

Weights, by name: ``w_ih (G*H, E + M)``, ``w_hh (G*H, H)``, ``b_ih``, ``b_hh (G*H,)``
or both None, and the attention's ``w_query (A, H)``, ``w_key (A, M)``, ``v (A,)``
(those the kind has; :func:`rnncore.reference.attention.check_attention`).
"""

from __future__ import annotations

import numpy as np

from rnncore.errors import ArgumentError, ShapeError
from rnncore.reference.attention import (
    attend,
    attend_backward,
    check_attention,
    project_memory,
    project_memory_backward,
    source_mask,
)
from rnncore.reference.cells import gate_count
from rnncore.reference.sequence import _step, _step_backward

CELL_WEIGHTS = ("w_ih", "w_hh", "b_ih", "b_hh")
ATTENTION_WEIGHTS = ("w_query", "w_key", "v")


def decoder_forward(
    mode: str,
    attention: str,
    y: np.ndarray,
    memory: np.ndarray,
    lengths: np.ndarray | None,
    h0: np.ndarray,
    c0: np.ndarray | None,
    weights: dict,
    context0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """Run the attention decoder over ``T`` teacher-forced steps, in float64.

    Args:
        mode: the cell, ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``.
        attention: ``"additive"``, ``"general"`` or ``"dot"``.
        y: ``(T, N, E)`` embedded target inputs.
        memory: ``(N, S, M)`` encoder outputs.
        lengths: ``(N,)`` source lengths in ``1..S``, or None (all ``S``).
        h0: ``(N, H)``; c0: ``(N, H)`` for lstm, None otherwise.
        weights: the arrays named in the module docstring (absent or None where the
            layer has none).
        context0: ``(N, M)`` the context fed into step 0, or None (zero); a decoder
            run one step at a time passes the previous step's context here.

    Returns:
        ``(output (T, N, H + M), attention weights (T, N, S), h_n (N, H),
        c_n (N, H) or None, cache)``; ``cache`` is for :func:`decoder_backward` only.
    """
    G = gate_count(mode)
    w = _weights(weights)
    y, memory, h0, c0 = (_f64(a) for a in (y, memory, h0, c0))
    T, N, E, H, M = _check_decoder(mode, attention, G, y, memory, h0, c0, w)
    S = memory.shape[1]
    mask = source_mask(lengths, N, S)  # (N, S)
    keys = project_memory(attention, memory, w["w_key"])  # (N, S, A) once per call
    output = np.zeros((T, N, H + M))
    attention_weights = np.zeros((T, N, S))
    h, c, context = h0, c0, np.zeros((N, M))
    if context0 is not None:
        context = _f64(context0)
        _check_shape("context0", context, (N, M))
    step_caches = []
    for t in range(T):
        x = np.concatenate([y[t], context], axis=1)  # (N, E + M) input feeding
        x_proj = x @ w["w_ih"].T  # (N, G*H)
        if w["b_ih"] is not None:
            x_proj = x_proj + w["b_ih"]
        h, c, cell_cache = _step(mode, x_proj, h, c, w["w_hh"], w["b_hh"])
        context, attention_weights[t], attend_cache = attend(
            attention, h, keys, memory, mask, w["w_query"], w["v"]
        )
        output[t] = np.concatenate([h, context], axis=1)  # (N, H + M)
        step_caches.append((x, cell_cache, attend_cache))
    cache = {"keys": keys, "memory": memory, "step_caches": step_caches, "E": E}
    return output, attention_weights, h, c, cache


def decoder_backward(
    mode: str,
    attention: str,
    weights: dict,
    cache: dict,
    d_output: np.ndarray,
    d_h_n: np.ndarray | None = None,
    d_c_n: np.ndarray | None = None,
    d_weights: np.ndarray | None = None,
) -> dict:
    """Backpropagation through time for one :func:`decoder_forward` call, in float64.

    Args:
        mode, attention, weights: as given to :func:`decoder_forward`.
        cache: what it returned.
        d_output: ``(T, N, H + M)`` gradient of the output.
        d_h_n, d_c_n: ``(N, H)`` gradients of the final states, or None (zero).
        d_weights: ``(T, N, S)`` gradient of the attention weights, or None (zero).

    Returns:
        A dict of gradients: ``y (T, N, E)``, ``memory (N, S, M)``, ``h0 (N, H)``,
        ``c0 (N, H)`` (lstm; None otherwise), ``context0 (N, M)`` and every weight
        by its name (None for the weights the layer does not have).
    """
    w = _weights(weights)
    keys, memory, step_caches, E = cache["keys"], cache["memory"], cache["step_caches"], cache["E"]
    T = len(step_caches)
    N, S, M = memory.shape
    H = w["w_hh"].shape[1]
    d_output = _f64(d_output)
    _check_shape("d_output", d_output, (T, N, H + M))
    if d_weights is not None:
        d_weights = _f64(d_weights)
        _check_shape("d_weights", d_weights, (T, N, S))
    dh = np.zeros((N, H)) if d_h_n is None else _f64(d_h_n)  # (N, H)
    _check_shape("d_h_n", dh, (N, H))
    dc = None
    if mode == "lstm":
        dc = np.zeros((N, H)) if d_c_n is None else _f64(d_c_n)  # (N, H)
        _check_shape("d_c_n", dc, (N, H))
    grads = {name: None if w[name] is None else np.zeros_like(w[name]) for name in w}
    dy = np.zeros((T, N, E))
    dkeys = np.zeros_like(keys)
    dmemory = np.zeros_like(memory)
    dcontext = np.zeros((N, M))  # gradient of context_t through step t+1's input
    for t in reversed(range(T)):
        x, cell_cache, attend_cache = step_caches[t]
        dcontext = dcontext + d_output[t][:, H:]  # (N, M)
        dweights_t = None if d_weights is None else d_weights[t]
        dquery, dk, dm, dw_query, dv = attend_backward(
            attention, dcontext, dweights_t, attend_cache, keys, memory, w["w_query"], w["v"]
        )
        dkeys += dk
        dmemory += dm
        if dw_query is not None:
            grads["w_query"] += dw_query
            grads["v"] += dv
        dh_next = dh + d_output[t][:, :H] + dquery  # (N, H)
        dx_proj, dh, dc, dw_hh, db_hh = _step_backward(mode, dh_next, dc, cell_cache, w["w_hh"])
        grads["w_hh"] += dw_hh
        grads["w_ih"] += dx_proj.T @ x  # (G*H, E + M)
        if w["b_ih"] is not None:
            grads["b_ih"] += dx_proj.sum(axis=0)
            grads["b_hh"] += db_hh
        dx = dx_proj @ w["w_ih"]  # (N, E + M)
        dy[t] = dx[:, :E]
        dcontext = dx[:, E:]  # (N, M) to context_{t-1}
    dmemory_keys, dw_key = project_memory_backward(attention, dkeys, memory, w["w_key"])
    if dw_key is not None:
        grads["w_key"] = dw_key
    grads.update({"y": dy, "memory": dmemory + dmemory_keys, "h0": dh, "c0": dc})
    grads["context0"] = dcontext  # (N, M)
    return grads


def _weights(weights: dict) -> dict:
    """Every weight name mapped to a float64 copy, or None where not given."""
    unknown = set(weights) - set(CELL_WEIGHTS + ATTENTION_WEIGHTS)
    if unknown:
        raise ArgumentError(f"unknown decoder weights {sorted(unknown)}")
    return {name: _f64(weights.get(name)) for name in CELL_WEIGHTS + ATTENTION_WEIGHTS}


def _check_decoder(mode, attention, G, y, memory, h0, c0, w) -> tuple[int, ...]:
    """Check the shapes of a decoder call and return ``(T, N, E, H, M)``."""
    if y.ndim != 3:
        raise ShapeError(f"y must be (T, N, E), got shape {y.shape}")
    T, N, E = y.shape
    w_hh = w["w_hh"]
    if w_hh is None or w_hh.ndim != 2 or w_hh.shape[0] != G * w_hh.shape[1]:
        shape = None if w_hh is None else w_hh.shape
        raise ShapeError(f"w_hh must be (G*H, H) with G={G} for {mode}, got {shape}")
    H = w_hh.shape[1]
    if memory.ndim != 3 or memory.shape[0] != N:
        raise ShapeError(f"memory must be ({N}, S, M) for y of batch {N}, got {memory.shape}")
    check_attention(attention, h0, memory, w["w_query"], w["w_key"], w["v"])
    M = memory.shape[2]
    _check_shape("w_ih", w["w_ih"], (G * H, E + M))
    _check_shape("h0", h0, (N, H))
    if (c0 is not None) != (mode == "lstm"):
        raise ArgumentError("c0 must be given for lstm and only for lstm")
    if c0 is not None:
        _check_shape("c0", c0, (N, H))
    if (w["b_ih"] is None) != (w["b_hh"] is None):
        raise ArgumentError("b_ih and b_hh must both be given or both be None")
    if w["b_ih"] is not None:
        _check_shape("b_ih", w["b_ih"], (G * H,))
        _check_shape("b_hh", w["b_hh"], (G * H,))
    return T, N, E, H, M


def _f64(a):
    """A float64 copy of ``a`` (nothing returned aliases an input); None stays None."""
    return None if a is None else np.array(a, dtype=np.float64)


def _check_shape(name: str, array, shape: tuple) -> None:
    if array is None or array.shape != shape:
        got = None if array is None else array.shape
        raise ShapeError(f"{name} has shape {got}, expected {shape}")
