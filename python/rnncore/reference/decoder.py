"""The attention decoder over a whole target sequence, in float64 NumPy.

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

Scheduled sampling (Bengio et al. 2015; ``sampling``): at every step ``t >= 1``,
each row ``b`` independently with probability ``p`` is fed its own prediction,
``fed_t[b] = argmax(output_{t-1}[b] @ head_weight.T + head_bias)`` and
``y_t[b] = embedding[fed_t[b]]``, instead of the teacher's ``ids[t, b]``. The
coin flips are :func:`sampling_flips`; the choice is a constant for the backward,
so ``grads["y"]`` is the gradient of the inputs actually fed.

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
SAMPLING_INPUTS = ("p", "seed", "ids", "embedding", "head_weight", "head_bias")
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's output function on uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sampling_flips(seed: int, p: float, T: int, N: int) -> np.ndarray:
    """``(T, N)`` bool: whether row ``b`` samples its input at step ``t``.

    Row ``b`` draws from a splitmix64 generator whose state starts at
    ``mix(seed ^ mix(b + 1))``; step ``t >= 1`` uses its ``t``-th output ``u`` and
    samples when ``(u >> 11) * 2**-53 < p``. Step 0 never samples. The compiled
    kernel draws exactly these (``rust/src/seq2seq/sampling.rs``).
    """
    with np.errstate(over="ignore"):
        rows = np.arange(1, N + 1, dtype=np.uint64)  # (N,)
        state = _mix(np.uint64(seed) ^ _mix(rows))  # (N,)
        steps = np.arange(T, dtype=np.uint64)[:, None]  # (T, 1)
        u = _mix(state[None, :] + steps * np.uint64(_GOLDEN))  # (T, N)
    flips = (u >> np.uint64(11)).astype(np.float64) * 2.0**-53 < p
    flips[:1] = False
    return flips


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
    sampling: dict | None = None,
    keys: np.ndarray | None = None,
) -> tuple:
    """Run the attention decoder over ``T`` steps, in float64.

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
        sampling: None (teacher forcing), or scheduled sampling (module docstring):
            ``p`` in ``[0, 1]``, ``seed`` (``0..2**64-1``), ``ids (T, N)`` the teacher
            ids with ``y = embedding[ids]``, ``embedding (V, E)``, ``head_weight
            (V, H + M)``, ``head_bias (V,)`` or None.

    Returns:
        ``(output (T, N, H + M), attention weights (T, N, S), h_n (N, H),
        c_n (N, H) or None, cache)``; ``cache`` is for :func:`decoder_backward` only.
        With ``sampling``, also ``fed (T, N)`` int64, the ids fed at every step.
    """
    G = gate_count(mode)
    w = _weights(weights)
    y, memory, h0, c0 = (_f64(a) for a in (y, memory, h0, c0))
    T, N, E, H, M = _check_decoder(mode, attention, G, y, memory, h0, c0, w)
    S = memory.shape[1]
    mask = source_mask(lengths, N, S)  # (N, S)
    if keys is None:
        keys = project_memory(attention, memory, w["w_key"])  # (N, S, A) once per call
    else:
        keys = _f64(keys)
        A = M if attention == "dot" else w["w_key"].shape[0]
        _check_shape("keys", keys, (N, S, A))
    output = np.zeros((T, N, H + M))
    attention_weights = np.zeros((T, N, S))
    h, c, context = h0, c0, np.zeros((N, M))
    if context0 is not None:
        context = _f64(context0)
        _check_shape("context0", context, (N, M))
    if sampling is not None:
        flips, fed, table, head_w, head_b = _sampling(sampling, y, H + M)
    step_caches = []
    for t in range(T):
        y_t = y[t]  # (N, E)
        if sampling is not None and flips[t].any():
            logits = output[t - 1] @ head_w.T  # (N, V)
            if head_b is not None:
                logits = logits + head_b
            fed[t] = np.where(flips[t], logits.argmax(axis=1), fed[t])
            y_t = np.where(flips[t][:, None], table[fed[t]], y_t)  # (N, E)
        x = np.concatenate([y_t, context], axis=1)  # (N, E + M) input feeding
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
    if sampling is not None:
        return output, attention_weights, h, c, cache, fed
    return output, attention_weights, h, c, cache


def decoder_keys(attention: str, memory: np.ndarray, weights: dict) -> np.ndarray:
    """The keys ``(N, S, A)`` of ``memory (N, S, M)`` (``memory @ w_key^T``, or
    ``memory`` itself for dot), for :func:`decoder_forward`'s ``keys``."""
    return project_memory(attention, _f64(memory), _weights(weights)["w_key"])


def _sampling(sampling: dict, y: np.ndarray, HM: int) -> tuple:
    """``(flips (T, N), fed ids (T, N) int64, embedding, head_weight, head_bias)``
    of a checked ``sampling`` dict for ``y (T, N, E)``."""
    unknown = set(sampling) - set(SAMPLING_INPUTS)
    if unknown:
        raise ArgumentError(f"unknown sampling inputs {sorted(unknown)}")
    p, seed = float(sampling["p"]), int(sampling["seed"])
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"p must lie in [0, 1], got {p}")
    if not 0 <= seed < 2**64:
        raise ArgumentError(f"seed must lie in 0..2**64-1, got {seed}")
    T, N, E = y.shape
    table = _f64(sampling["embedding"])
    if table.ndim != 2 or table.shape[1] != E:
        raise ShapeError(f"embedding must be (V, {E}), got {table.shape}")
    V = table.shape[0]
    head_w, head_b = _f64(sampling["head_weight"]), _f64(sampling.get("head_bias"))
    _check_shape("head_weight", head_w, (V, HM))
    if head_b is not None:
        _check_shape("head_bias", head_b, (V,))
    ids = np.array(sampling["ids"], dtype=np.int64)
    _check_shape("ids", ids, (T, N))
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise ArgumentError(f"ids must lie in 0..{V - 1}")
    if not np.array_equal(table[ids], y):
        raise ArgumentError("y must be the embedding rows of ids")
    return sampling_flips(seed, p, T, N), ids, table, head_w, head_b


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
