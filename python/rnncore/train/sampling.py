"""Draw text from a trained language model, one symbol at a time.

The prime text is fed through ``model.step`` to warm up the recurrent state;
then each step turns the model's log-probabilities ``(V,)`` into the next id
with a *picker*. :func:`temperature_picker` is the one picker today; other
rules (top-k, top-p, ...) are further functions of the same signature, and
:func:`sample` takes any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnncore.errors import ArgumentError

__all__ = ["Picker", "sample", "sample_ids", "temperature_picker"]

Picker = Callable[[np.ndarray, np.random.Generator], int]  # (log_probs (V,), rng) -> id


def temperature_picker(temperature: float = 1.0) -> Picker:
    """Draw from ``softmax(log_probs / temperature)``; ``temperature == 0`` takes
    the most likely symbol (greedy)."""
    if not temperature >= 0:
        raise ArgumentError(f"temperature must be >= 0, got {temperature!r}")

    def pick(log_probs: np.ndarray, rng: np.random.Generator) -> int:
        if temperature == 0:
            return int(np.argmax(log_probs))
        z = log_probs.astype(np.float64) / temperature  # (V,)
        p = np.exp(z - z.max())
        cdf = np.cumsum(p)  # (V,)
        return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), len(p) - 1))

    return pick


def sample_ids(
    model: Any,
    prime_ids: np.ndarray,
    length: int,
    pick: Picker,
    rng: np.random.Generator,
) -> list[int]:
    """``length`` ids drawn after warming the state up on ``prime_ids (P,)``.

    With an empty prime the first symbol is drawn uniformly at random (it is part
    of the returned ids).
    """
    if length < 0:
        raise ArgumentError(f"length must be >= 0, got {length}")
    state = model.initial_state(1)
    drawn: list[int] = []
    log_probs = None
    for i in np.asarray(prime_ids, dtype=np.int64):
        log_probs, state = model.step(np.array([i], dtype=np.int64), state)  # (1, V)
    for _ in range(length):
        if log_probs is None:
            nxt = int(rng.integers(model.config.vocab_size))
        else:
            nxt = pick(np.asarray(log_probs)[0], rng)
        drawn.append(nxt)
        log_probs, state = model.step(np.array([nxt], dtype=np.int64), state)
    return drawn


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
        model: a language model with ``initial_state``, ``step`` and ``config``.
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
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        drawn = sample_ids(model, prime_ids, length, pick, rng)
    finally:
        if was_training:
            model.train()
    return vocab.decode([*prime_ids.tolist(), *drawn])
