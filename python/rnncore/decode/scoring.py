"""The log-probability of a given sequence under a language model (or ensemble)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from rnncore.decode._model import advance, check_id_sequence, eval_mode, vocab_size
from rnncore.decode.compiled import compiled
from rnncore.errors import ArgumentError

__all__ = ["SCORE_CHUNK", "Score", "score"]

# Time steps per model call: bounds the memory of a long text to SCORE_CHUNK * V
# log-probabilities, while each call still runs many steps at once.
SCORE_CHUNK = 1024


class Score(NamedTuple):
    """What :func:`score` returns; unpacks as ``log_prob, per_symbol_loss``."""

    log_prob: float  # natural log of the probability of the scored symbols
    per_symbol_loss: float  # -log_prob / their number: mean cross-entropy in nats


def score(model: Any, ids: Any, *, prime_ids: Any = None) -> Score:
    """How likely the model finds ``ids``.

    Without a prime the first symbol is context and the rest is scored,
    ``log P(ids[1:] | ids[0])``: exactly what ``model.loss(ids[None, :-1],
    ids[None, 1:])`` averages. With a prime every symbol is scored,
    ``log P(ids | prime_ids)``.

    Args:
        model: a language model or :class:`~rnncore.decode.Ensemble` (in eval
            mode while scoring, then back; compiled like every decoder, see
            :func:`~rnncore.decode.compiled`).
        ids: ``(T,)`` the ids to score (at least 2 without a prime, 1 with one).
        prime_ids: ``(P,)`` context ids, not scored.

    Returns:
        :class:`Score` ``(log_prob, per_symbol_loss)``; nats, divide by ``ln 2``
        for bits.
    """
    V = vocab_size(model)
    ids = check_id_sequence("ids", ids, V)
    prime = check_id_sequence("prime_ids", prime_ids, V)
    context, targets = (ids[:1], ids[1:]) if prime.size == 0 else (prime, ids)
    if targets.size == 0:
        need = "2 ids without prime_ids" if prime.size == 0 else "1 id"
        raise ArgumentError(f"ids must hold at least {need} to score, got {ids.size}")
    inputs = np.concatenate([context[-1:], targets[:-1]])  # (T,) inputs[t] predicts targets[t]
    chunk = SCORE_CHUNK
    total = 0.0
    with eval_mode(model):
        model = compiled(model)  # a CharLM: one Rust call per chunk, GIL released
        state = model.initial_state(1)
        head = context[:-1]  # (P - 1,) the context before its last id: only its state counts
        for start in range(0, head.size, chunk):
            _, state = advance(model, head[None, start : start + chunk], state)
        for start in range(0, inputs.size, chunk):
            log_probs, state = advance(model, inputs[None, start : start + chunk], state)
            tgt = targets[start : start + chunk, None]  # (c, 1); log_probs (1, c, V)
            total += float(np.take_along_axis(log_probs[0], tgt, axis=1).sum(dtype=np.float64))
    return Score(total, -total / targets.size)
