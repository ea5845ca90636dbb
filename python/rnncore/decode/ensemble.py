"""Several language models over one vocabulary, decoded as one model.

The members may differ in cell, size, depth and dtype; they must share the
vocabulary size. Each step feeds the same ids to every member and averages the
``M`` next-symbol distributions with weights ``w`` (summing to one):

- ``mode="prob"``: the mixture ``p = sum_m w_m p_m``, so ``log p =
  logsumexp_m(log w_m + log p_m)``;
- ``mode="logprob"``: the normalised geometric mean ``log p = log_softmax(sum_m
  w_m log p_m)`` (a product of experts: symbols any member finds unlikely are
  pushed down harder).

The ensemble's state is the tuple of the members' states, so the decoders can
select beam rows of it like any other state.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.decode._model import advance, vocab_size
from rnncore.errors import ArgumentError
from rnncore.nn._base import Array, State
from rnncore.nn.functional import log_softmax

__all__ = ["Ensemble"]

MODES = ("prob", "logprob")


def _weights(weights: Any, M: int) -> Array:
    """``(M,)`` float64 weights summing to one; None gives equal weights."""
    if weights is None:
        return np.full(M, 1.0 / M)
    if not isinstance(weights, (Sequence, np.ndarray)) or not all(
        isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights
    ):
        raise ArgumentError(f"weights must be None or a sequence of {M} numbers, got {weights!r}")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (M,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ArgumentError(
            f"weights must be {M} finite numbers >= 0, one per model, with a positive "
            f"sum; got {weights!r}"
        )
    return w / w.sum()


class Ensemble:
    """Models advanced together; their next-symbol distributions averaged.

    Args:
        models: the members (``CharLM`` or anything decodable, even ensembles),
            all with the same vocabulary size V.
        mode: ``"prob"`` (mean of probabilities) or ``"logprob"`` (normalised
            mean of log-probabilities).
        weights: ``(M,)`` non-negative weights, normalised to sum to one; None:
            equal weights.

    Example::

        >>> ens = Ensemble([lstm_lm, gru_lm], mode="prob")
        >>> log_probs, state = ens.step(np.array([3, 1]), ens.initial_state(2))  # (2, V)
        >>> rnncore.decode.sample(ens, prime_ids=ids, length=100, seed=0)
    """

    def __init__(self, models: Sequence[Any], mode: str = "prob", weights: Any = None) -> None:
        if isinstance(models, (str, bytes)) or not isinstance(models, Sequence):
            raise ArgumentError(f"models must be a list of models, got {type(models).__name__}")
        self.models = tuple(models)
        if not self.models:
            raise ArgumentError("models must hold at least one model")
        sizes = [vocab_size(m) for m in self.models]
        if len(set(sizes)) != 1:
            raise ArgumentError(f"models must share the vocabulary size, got sizes {sizes}")
        self.vocab_size = sizes[0]
        self.mode = _validate.choice("mode", mode, MODES)
        self.weights = _weights(weights, len(self.models))  # (M,) summing to one
        with np.errstate(divide="ignore"):
            self._log_weights = np.log(self.weights)  # (M,), -inf for a zero weight

    # ----------------------------------------------------------------- state

    def initial_state(self, N: int) -> tuple[State, ...]:
        """One initial state per member, each for ``N`` rows."""
        N = _validate.positive_int("N", N)
        return tuple(m.initial_state(N) for m in self.models)

    def _states(self, state: Any) -> tuple[State, ...]:
        """``state`` as one entry per member (None: each member's own default)."""
        if state is None:
            return (None,) * len(self.models)
        if not isinstance(state, tuple) or len(state) != len(self.models):
            raise ArgumentError(
                f"state must be a tuple of {len(self.models)} member states "
                "(as initial_state returns), or None"
            )
        return state

    # ----------------------------------------------------------------- averaging

    def _combine(self, parts: list[Any]) -> Array:
        """The members' log-probabilities ``M x (..., V)`` -> averaged ``(..., V)`` float64."""
        lp = np.stack([np.asarray(p, dtype=np.float64) for p in parts])  # (M, ..., V)
        shape = (-1,) + (1,) * (lp.ndim - 1)
        if self.mode == "prob":
            a = lp + self._log_weights.reshape(shape)  # (M, ..., V) log(w_m p_m)
            top = a.max(axis=0)  # (..., V) finite: some weight is positive
            return top + np.log(np.exp(a - top).sum(axis=0))
        return log_softmax((self.weights.reshape(shape) * lp).sum(axis=0))

    def step(self, ids: Any, state: Any = None) -> tuple[Array, tuple[State, ...]]:
        """``ids (N,)`` -> ``(log_probs (N, V) float64, state)``, state a tuple per member."""
        parts, states = [], []
        for m, s in zip(self.models, self._states(state)):
            log_probs, s = m.step(ids, s)  # (N, V)
            parts.append(log_probs)
            states.append(s)
        return self._combine(parts), tuple(states)

    def forward(self, ids: Any, state: Any = None) -> tuple[Array, tuple[State, ...]]:
        """``ids (N, T)`` -> ``(log_probs (N, T, V) float64, state)``: T steps in one call
        per member (members without ``forward`` step through T)."""
        ids = np.asarray(ids)
        _validate.ndim("ids", ids, (2,), "2-D (N, T)")
        parts, states = [], []
        for m, s in zip(self.models, self._states(state)):
            if s is None:
                s = m.initial_state(ids.shape[0])
            log_probs, s = advance(m, ids, s)  # (N, T, V)
            parts.append(log_probs)
            states.append(s)
        return self._combine(parts), tuple(states)

    # ----------------------------------------------------------------- modes

    @property
    def training(self) -> bool:
        """Whether any member is in training mode."""
        return any(bool(getattr(m, "training", False)) for m in self.models)

    def train(self, mode: bool = True) -> Ensemble:
        """Every member to training (or, with ``mode=False``, evaluation) mode; returns self."""
        mode = _validate.flag("train(mode)", mode)
        for m in self.models:
            if callable(getattr(m, "train", None)):
                m.train(mode)
        return self

    def eval(self) -> Ensemble:
        """Every member to evaluation mode (no dropout); returns self."""
        return self.train(False)

    def __repr__(self) -> str:
        names = ", ".join(type(m).__name__ for m in self.models)
        return f"Ensemble([{names}], mode={self.mode!r}, weights={self.weights.tolist()})"
