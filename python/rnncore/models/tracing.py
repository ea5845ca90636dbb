"""Tracing a language model over a long text, chunk by chunk.

:func:`iter_trace` runs :class:`~rnncore.models.CharLM` over ``ids (N, T)`` in
chunks of ``chunk_size`` steps, carrying the recurrent state from chunk to
chunk, and yields for each chunk what the recurrent layers computed (read from
the kernels' forward cache, see :meth:`rnncore.nn.LSTM.trace`) and the
next-symbol log-probabilities. Memory is bounded by one chunk; :func:`trace`
concatenates the chunks for texts that fit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.models._base import check_ids
from rnncore.nn._base import Array, State
from rnncore.nn.functional import log_softmax

__all__ = ["LMTrace", "iter_trace", "trace"]


@dataclass
class LMTrace:
    """What a language model computed over ``T`` steps of ``N`` sequences."""

    arrays: dict[str, Array]  # "h", "c" (LSTM), gates: (num_layers, T, N, H) each
    log_probs: Array  # (T, N, V) log-probabilities of the next symbol after each step
    state: State  # the final state, to continue with


def iter_trace(
    model: Any, ids: Any, *, chunk_size: int = 512, state: State = None
) -> Iterator[LMTrace]:
    """Yield an :class:`LMTrace` per chunk of ``chunk_size`` steps of ``ids (N, T)``.

    The state is carried from chunk to chunk (starting from ``state``, or zeros),
    so the chunks together equal one pass over the whole sequence. Runs in the
    model's current mode: call ``model.eval()`` first to trace without dropout.
    """
    V = model.config.vocab_size
    ids = check_ids("ids", ids, V, 2, "(N, T)")
    chunk_size = _validate.positive_int("chunk_size", chunk_size)
    state = model._check_state(state, ids.shape[0])
    for t0 in range(0, ids.shape[1], chunk_size):
        chunk = ids[:, t0 : t0 + chunk_size].T  # (T', N) time-major
        x = model._encode(chunk, V, model.dtype)  # (T', N, D)
        arrays, state = model.rnn.trace(x, state)  # (L, T', N, H) each
        logits = model.head._forward(model.dropout._forward(arrays["h"][-1]))  # (T', N, V)
        yield LMTrace(arrays, log_softmax(logits), state)


def trace(model: Any, ids: Any, *, chunk_size: int = 512, state: State = None) -> LMTrace:
    """One :class:`LMTrace` of all of ``ids (N, T)``: :func:`iter_trace` concatenated."""
    parts = list(iter_trace(model, ids, chunk_size=chunk_size, state=state))
    arrays = {k: np.concatenate([p.arrays[k] for p in parts], axis=1) for k in parts[0].arrays}
    log_probs = np.concatenate([p.log_probs for p in parts], axis=0)
    return LMTrace(arrays, log_probs, parts[-1].state)
