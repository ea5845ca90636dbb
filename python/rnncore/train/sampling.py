"""Text from a trained language model, one symbol at a time (a thin layer over
:mod:`rnncore.decode`).

:func:`sample` returns the prime followed by the drawn symbols, as text. Each
symbol is chosen by a *picker*, ``(log_probs (V,), rng) -> id``;
:func:`temperature_picker` is the usual one. For batches of samples, top-k,
top-p, stop symbols, beam search and ensembles use :mod:`rnncore.decode`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnncore.decode import pick as pick_rows
from rnncore.decode import sample_with
from rnncore.decode.sampling import check_rule
from rnncore.nn._base import Array

__all__ = ["Picker", "sample", "sample_ids", "temperature_picker"]

Picker = Callable[[np.ndarray, np.random.Generator], int]  # (log_probs (V,), rng) -> id


def temperature_picker(temperature: float = 1.0) -> Picker:
    """Draw from ``softmax(log_probs / temperature)``; ``temperature == 0`` takes
    the most likely symbol (greedy)."""
    temperature = check_rule(temperature, None, None)[0]

    def pick(log_probs: np.ndarray, rng: np.random.Generator) -> int:
        return int(pick_rows(np.asarray(log_probs)[None, :], rng, temperature=temperature)[0])

    return pick


def sample_ids(
    model: Any,
    prime_ids: np.ndarray,
    length: int,
    pick: Picker,
    rng: np.random.Generator,
) -> list[int]:
    """``length`` ids drawn after warming the state up on ``prime_ids (P,)``.

    With an empty prime the first symbol is picked from the uniform distribution
    (it is part of the returned ids).
    """

    def rule(log_probs: Array) -> Array:
        return np.array([pick(row, rng) for row in log_probs], dtype=np.int64)  # (1,)

    return sample_with(model, rule, prime_ids=prime_ids, length=length)[0]


def sample(
    model: Any,
    vocab: Any,
    length: int = 500,
    prime: str = "",
    pick: Picker | None = None,
    rng: np.random.Generator | None = None,
) -> str:
    """The prime followed by ``length`` drawn symbols, as text.

    Args:
        model: a language model with ``initial_state``, ``step`` and ``config``
            (in eval mode while sampling, then back).
        vocab: its vocabulary (``encode``/``decode``).
        length: symbols to draw after the prime.
        prime: text that warms up the state; with a word vocabulary it comes
            back as its tokens.
        pick: the rule that picks each symbol (default: temperature 1).
        rng: the generator for the draws (default: fresh entropy).
    """
    pick = pick or temperature_picker(1.0)
    rng = rng if rng is not None else np.random.default_rng()
    prime_ids = vocab.encode(prime) if prime else np.zeros(0, dtype=np.int64)
    drawn = sample_ids(model, prime_ids, length, pick, rng)
    return vocab.decode([*prime_ids.tolist(), *drawn])
