"""Attention over a batch of encoder outputs, forward and backward, in float64 NumPy.

A decoder state (the *query*) ``q (N, Q)`` attends over the encoder outputs (the
*memory*) ``m (N, S, M)`` of ``S`` source steps; sequence ``b`` has ``lengths[b]``
valid steps and the padded ones get a weight of exactly 0. Three scores:

- ``"additive"`` (Bahdanau): ``score(q, m_s) = v . tanh(W_q q + W_k m_s)``, with
  ``w_query (A, Q)``, ``w_key (A, M)``, ``v (A,)``;
- ``"general"`` (Luong): ``score(q, m_s) = q . (W_k m_s)``, ``w_key (Q, M)``;
- ``"dot"`` (Luong): ``score(q, m_s) = q . m_s``, which needs ``Q == M``.

Then ``weights = softmax_s(score)`` over the valid steps and
``context = sum_s weights_s m_s (N, M)``.

The key projection does not depend on the query, so it is computed once per source
sequence (:func:`project_memory`: ``keys (N, S, A)``, with ``A = Q`` for general and
``keys = memory`` for dot) and every decoder step reuses it (:func:`attend`). Each
backward sits right under its forward; :func:`attend_backward` returns the gradient
of ``keys`` and :func:`project_memory_backward` turns the sum over all steps of it
into ``dmemory`` and ``dw_key`` once.
"""

from __future__ import annotations

import numpy as np

from rnncore.errors import ArgumentError, DTypeError, ShapeError

KINDS = ("additive", "general", "dot")


def check_kind(kind: str) -> str:
    """``kind`` itself, or :class:`~rnncore.errors.ArgumentError` if it is not one of
    ``"additive"``, ``"general"``, ``"dot"``."""
    if kind not in KINDS:
        raise ArgumentError(f"attention must be one of {list(KINDS)}, got {kind!r}")
    return kind


def source_mask(lengths: np.ndarray | None, N: int, S: int) -> np.ndarray:
    """``(N, S)`` boolean mask, True at the valid steps ``s < lengths[b]``.

    ``lengths`` is ``(N,)`` integers in ``1..S``, or None (every step valid).
    """
    if lengths is None:
        return np.ones((N, S), dtype=bool)
    lengths = np.asarray(lengths)
    if lengths.shape != (N,):
        raise ShapeError(f"source lengths has shape {lengths.shape}, expected ({N},)")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise DTypeError(f"source lengths must be integers, got {lengths.dtype}")
    if N > 0 and (lengths.min() < 1 or lengths.max() > S):
        raise ArgumentError(f"source lengths must lie in 1..{S}, got {lengths.tolist()}")
    return np.arange(S)[None, :] < lengths[:, None]  # (N, S)


def project_memory(kind: str, memory: np.ndarray, w_key: np.ndarray | None) -> np.ndarray:
    """Keys of every source step, once per sequence: ``(N, S, M) -> (N, S, A)``.

    ``memory @ w_key.T`` for additive (``A`` attention units) and general (``A = Q``);
    ``memory`` itself for dot (``w_key`` None).
    """
    if check_kind(kind) == "dot":
        return memory
    return memory @ w_key.T  # (N, S, A)


def project_memory_backward(
    kind: str, dkeys: np.ndarray, memory: np.ndarray, w_key: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Backward of :func:`project_memory`: ``dkeys (N, S, A)`` ->
    ``(dmemory (N, S, M), dw_key (A, M) or None for dot)``."""
    if kind == "dot":
        return dkeys, None
    return dkeys @ w_key, np.einsum("nsa,nsm->am", dkeys, memory)


def attend(
    kind: str,
    query: np.ndarray,
    keys: np.ndarray,
    memory: np.ndarray,
    mask: np.ndarray,
    w_query: np.ndarray | None = None,
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One attention step of ``N`` queries over their own source sequences.

    Args:
        kind: ``"additive"``, ``"general"`` or ``"dot"``.
        query: ``(N, Q)`` decoder states.
        keys: ``(N, S, A)`` from :func:`project_memory`.
        memory: ``(N, S, M)`` encoder outputs (the values).
        mask: ``(N, S)`` from :func:`source_mask`.
        w_query: ``(A, Q)`` and v: ``(A,)``, additive only.

    Returns:
        ``(context (N, M), weights (N, S), step_cache)``; ``weights`` is 0 exactly
        where ``mask`` is False and sums to 1 over each row.
    """
    if kind == "additive":
        e = np.tanh((query @ w_query.T)[:, None, :] + keys)  # (N, S, A)
        score = e @ v  # (N, S)
    else:
        e = None
        score = np.einsum("nsa,na->ns", keys, query)  # (N, S)
    score = np.where(mask, score, -np.inf)  # (N, S)
    exp = np.where(mask, np.exp(score - score.max(axis=1, keepdims=True)), 0.0)  # (N, S)
    weights = exp / exp.sum(axis=1, keepdims=True)  # (N, S)
    context = np.einsum("ns,nsm->nm", weights, memory)  # (N, M)
    return context, weights, (query, e, weights)


def attend_backward(
    kind: str,
    dcontext: np.ndarray,
    dweights: np.ndarray | None,
    step_cache: tuple,
    keys: np.ndarray,
    memory: np.ndarray,
    w_query: np.ndarray | None = None,
    v: np.ndarray | None = None,
) -> tuple:
    """Backward of :func:`attend`.

    Args:
        dcontext: ``(N, M)`` gradient of the context.
        dweights: ``(N, S)`` gradient of the weights, or None (zero).
        step_cache: what :func:`attend` returned; keys, memory, w_query, v as given.

    Returns:
        ``(dquery (N, Q), dkeys (N, S, A), dmemory (N, S, M), dw_query (A, Q) or None,
        dv (A,) or None)``; ``dmemory`` is the gradient through the values only (the
        keys' share comes from :func:`project_memory_backward`).
    """
    query, e, weights = step_cache
    dmemory = weights[:, :, None] * dcontext[:, None, :]  # (N, S, M)
    dw = np.einsum("nsm,nm->ns", memory, dcontext)  # (N, S) gradient of the weights
    if dweights is not None:
        dw = dw + dweights
    dscore = weights * (dw - np.sum(weights * dw, axis=1, keepdims=True))  # (N, S)
    if kind != "additive":
        dquery = np.einsum("ns,nsa->na", dscore, keys)  # (N, Q)
        dkeys = dscore[:, :, None] * query[:, None, :]  # (N, S, Q)
        return dquery, dkeys, dmemory, None, None
    dv = np.einsum("ns,nsa->a", dscore, e)  # (A,)
    dpre = dscore[:, :, None] * v * (1.0 - e**2)  # (N, S, A) gradient of W_q q + keys
    dquery_proj = dpre.sum(axis=1)  # (N, A)
    return dquery_proj @ w_query, dpre, dmemory, dquery_proj.T @ query, dv


def attention_forward(
    kind: str,
    query: np.ndarray,
    memory: np.ndarray,
    lengths: np.ndarray | None = None,
    w_query: np.ndarray | None = None,
    w_key: np.ndarray | None = None,
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Attention of ``T`` query steps over one memory, in float64.

    Args:
        kind: ``"additive"``, ``"general"`` or ``"dot"``.
        query: ``(T, N, Q)`` queries.
        memory: ``(N, S, M)`` encoder outputs.
        lengths: ``(N,)`` source lengths in ``1..S``, or None (all ``S``).
        w_query: ``(A, Q)``, v: ``(A,)`` (additive); w_key: ``(A, M)`` (additive,
            general with ``A = Q``); None where the kind has no such weight.

    Returns:
        ``(context (T, N, M), weights (T, N, S), cache)``.
    """
    query, memory, w_query, w_key, v = _float64(query, memory, w_query, w_key, v)
    T, N, _ = check_attention(kind, query, memory, w_query, w_key, v)
    mask = source_mask(lengths, N, memory.shape[1])
    keys = project_memory(kind, memory, w_key)  # (N, S, A)
    context = np.zeros((T, N, memory.shape[2]))
    weights = np.zeros((T, N, memory.shape[1]))
    step_caches = []
    for t in range(T):
        context[t], weights[t], step_cache = attend(kind, query[t], keys, memory, mask, w_query, v)
        step_caches.append(step_cache)
    return context, weights, {"keys": keys, "query": query, "step_caches": step_caches}


def attention_backward(
    kind: str,
    memory: np.ndarray,
    w_query: np.ndarray | None,
    w_key: np.ndarray | None,
    v: np.ndarray | None,
    cache: dict,
    d_context: np.ndarray,
    d_weights: np.ndarray | None = None,
) -> tuple:
    """Backward of :func:`attention_forward`.

    Args:
        memory, w_query, w_key, v: as given to :func:`attention_forward`.
        cache: what it returned.
        d_context: ``(T, N, M)``; d_weights: ``(T, N, S)`` or None (zero).

    Returns:
        ``(dquery (T, N, Q), dmemory (N, S, M), dw_query (A, Q) or None,
        dw_key (A, M) or None, dv (A,) or None)``.
    """
    memory, w_query, w_key, v = _float64(memory, w_query, w_key, v)
    d_context, d_weights = _float64(d_context, d_weights)
    keys = cache["keys"]
    T = len(cache["step_caches"])
    _check_shape("d_context", d_context, (T, *memory.shape[::2]))
    if d_weights is not None:
        _check_shape("d_weights", d_weights, (T, *memory.shape[:2]))
    dquery = np.zeros_like(cache["query"])  # (T, N, Q)
    dkeys = np.zeros_like(keys)
    dmemory = np.zeros_like(memory)
    dw_query = None if w_query is None else np.zeros_like(w_query)
    dv = None if v is None else np.zeros_like(v)
    for t in range(T):
        dweights_t = None if d_weights is None else d_weights[t]
        dq, dk, dm, dwq, dv_t = attend_backward(
            kind, d_context[t], dweights_t, cache["step_caches"][t], keys, memory, w_query, v
        )
        dquery[t] = dq
        dkeys += dk
        dmemory += dm
        if dwq is not None:
            dw_query += dwq
            dv += dv_t
    dmemory_keys, dw_key = project_memory_backward(kind, dkeys, memory, w_key)
    return dquery, dmemory + dmemory_keys, dw_query, dw_key, dv


def check_attention(kind, query, memory, w_query, w_key, v) -> tuple[int, int, int]:
    """Check the shapes of an attention call (``query (..., N, Q)``) and return
    ``(T, N, A)`` (``T`` 1 for a single step)."""
    check_kind(kind)
    if memory.ndim != 3:
        raise ShapeError(f"memory must be (N, S, M), got shape {memory.shape}")
    N, S, M = memory.shape
    if S < 1:
        raise ShapeError(f"memory must have at least one source step, got shape {memory.shape}")
    if query.ndim not in (2, 3) or query.shape[-2] != N:
        raise ShapeError(f"query must be (T, {N}, Q) or ({N}, Q), got shape {query.shape}")
    Q = query.shape[-1]
    T = query.shape[0] if query.ndim == 3 else 1
    present = {"w_query": w_query is not None, "w_key": w_key is not None, "v": v is not None}
    wanted = {"additive": ("w_query", "w_key", "v"), "general": ("w_key",), "dot": ()}[kind]
    for name, given in present.items():
        if given != (name in wanted):
            state = "needs" if name in wanted else "takes no"
            raise ArgumentError(f"{kind} attention {state} {name}")
    if kind == "dot":
        if Q != M:
            raise ShapeError(f"dot attention needs query size == memory size, got {Q} and {M}")
        return T, N, M
    if w_key.ndim != 2 or w_key.shape[1] != M:
        raise ShapeError(f"w_key must be (A, {M}), got shape {w_key.shape}")
    A = w_key.shape[0]
    if kind == "general":
        _check_shape("w_key", w_key, (Q, M))
        return T, N, A
    _check_shape("w_query", w_query, (A, Q))
    _check_shape("v", v, (A,))
    return T, N, A


def _float64(*arrays):
    """A float64 copy of each array (so nothing returned aliases an input); None stays None."""
    return [None if a is None else np.array(a, dtype=np.float64) for a in arrays]


def _check_shape(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != shape:
        raise ShapeError(f"{name} has shape {array.shape}, expected {shape}")
