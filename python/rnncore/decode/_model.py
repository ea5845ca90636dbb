"""What decoding asks of a model, and the recurrent-state plumbing around it.

A decodable model (a :class:`~rnncore.models.CharLM`, an
:class:`~rnncore.decode.Ensemble`, or anything shaped like them) offers:

- ``initial_state(N)``: the state of ``N`` fresh sequences: an array or a
  (nested) tuple of arrays, each with the batch on axis 1 (``(L, N, H)``);
- ``step(ids (N,), state) -> (log_probs (N, V), state)``: one symbol per row;
- its vocabulary size, as ``vocab_size`` or ``config.vocab_size``;
- optionally ``forward(ids (N, T), state) -> (scores (N, T, V), state)``, whose
  ``log_softmax`` over V is what ``step`` would return at each t: a prime or a
  scored text then runs in one call instead of T;
- optionally ``eval()``/``train()`` and ``training``: decoding runs with dropout
  off and puts the mode back afterwards.

Every decoder here touches the model only through these, so a faster model (a
compiled decoding step) slots in without changing them.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, DTypeError, ShapeError
from rnncore.nn._base import Array, State
from rnncore.nn.functional import log_softmax

__all__ = [
    "advance",
    "check_id_sequence",
    "check_symbol",
    "eval_mode",
    "make_rng",
    "nonnegative_int",
    "real",
    "repeat_rows",
    "take_rows",
    "vocab_size",
    "warm_up",
]


# ----------------------------------------------------------------- argument checks


def vocab_size(model: Any) -> int:
    """``V`` of a decodable model; ArgumentError if ``model`` is not one."""
    size = getattr(model, "vocab_size", None)
    if size is None:
        size = getattr(getattr(model, "config", None), "vocab_size", None)
    if (
        size is None
        or not callable(getattr(model, "step", None))
        or not callable(getattr(model, "initial_state", None))
    ):
        raise ArgumentError(
            "model must offer step(ids, state), initial_state(N) and a vocabulary size "
            f"(vocab_size or config.vocab_size), got {type(model).__name__}"
        )
    return int(size)


def nonnegative_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 0 (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def real(name: str, value: Any) -> float:
    """``value`` as a finite ``float`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ArgumentError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_id_sequence(name: str, value: Any, V: int) -> Array:
    """``value`` (None, a list or an array) as ``(T,)`` int64 ids in ``0..V-1``; T may be 0."""
    if value is None:
        return np.zeros(0, np.int64)
    arr = np.asarray(value)
    if arr.size == 0 and arr.ndim == 1:
        return np.zeros(0, np.int64)  # [] comes in as float64
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise DTypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be a 1-D sequence of ids (T,), got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= V:
        bad = arr[(arr < 0) | (arr >= V)][0]
        raise ArgumentError(f"{name} must lie in 0..{V - 1}, got {bad}")
    return arr.astype(np.int64)


def check_symbol(name: str, value: Any, V: int) -> int | None:
    """``value`` as one id in ``0..V-1``, or None."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be None or an integer id, got {value!r}")
    if not 0 <= value < V:
        raise ArgumentError(f"{name} must lie in 0..{V - 1}, got {value}")
    return int(value)


def make_rng(seed: Any, rng: Any) -> np.random.Generator:
    """``rng`` itself, or ``np.random.default_rng(seed)`` (not both)."""
    return _validate.generator(seed, rng)


# ----------------------------------------------------------------- modes


def _members(model: Any) -> list[Any]:
    """The models inside ``model`` (an ensemble's members, recursively), or ``[model]``."""
    inner = getattr(model, "models", None)
    if isinstance(inner, tuple):
        return [leaf for m in inner for leaf in _members(m)]
    return [model]


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Evaluation mode (no dropout) for the block; each member's mode is put back."""
    members = _members(model)
    was_training = [bool(getattr(m, "training", False)) for m in members]
    for m in members:
        if callable(getattr(m, "eval", None)):
            m.eval()
    try:
        yield
    finally:
        for m, was in zip(members, was_training):
            if was:
                m.train()


# ----------------------------------------------------------------- state rows


def _map_state(fn: Callable[[Array], Array], state: State) -> State:
    """``fn`` applied to every array of a (nested) tuple state."""
    if isinstance(state, tuple):
        return tuple(_map_state(fn, s) for s in state)
    return None if state is None else fn(state)


def take_rows(state: State, rows: Array) -> State:
    """The state of batch rows ``rows (R,)``: each ``(L, N, H)`` array -> ``(L, R, H)``.

    Rows may repeat (a beam that spawns several continuations).
    """
    return _map_state(lambda s: np.ascontiguousarray(s[:, rows]), state)


def repeat_rows(state: State, N: int) -> State:
    """A one-row state ``(L, 1, H)`` copied to ``N`` rows ``(L, N, H)``."""
    return _map_state(lambda s: np.repeat(s, N, axis=1), state)


# ----------------------------------------------------------------- running the model


def advance(model: Any, ids: Array, state: State) -> tuple[Array, State]:
    """``ids (N, T)`` through the model: ``(log_probs (N, T, V), state)``.

    One ``forward`` call if the model has one, else ``T`` calls of ``step``.
    """
    forward = getattr(model, "forward", None)
    if callable(forward):
        scores, state = forward(ids, state)  # (N, T, V)
        return log_softmax(np.asarray(scores)), state
    out = []
    for t in range(ids.shape[1]):
        log_probs, state = model.step(ids[:, t], state)  # (N, V)
        out.append(np.asarray(log_probs))
    return np.stack(out, axis=1), state  # (N, T, V)


def warm_up(model: Any, prime: Array, N: int, state: State = None) -> tuple[Array, State]:
    """The next-symbol log-probabilities ``(N, V)`` float64 and the state of ``N``
    rows after ``prime (P,)``, from ``state`` (one row; None: ``initial_state(1)``).

    The prime runs once, as a batch of one, and its state is copied to the ``N``
    rows. Without a prime the first symbol is uniform over the vocabulary (there
    is nothing to condition on) and the state is ``state`` copied to ``N`` rows,
    or ``initial_state(N)``.
    """
    V = vocab_size(model)
    if prime.size == 0:
        rows = model.initial_state(N) if state is None else repeat_rows(state, N)
        return np.full((N, V), -np.log(V)), rows
    start = model.initial_state(1) if state is None else state
    log_probs, state = advance(model, prime[None, :], start)  # (1, P, V)
    last = np.asarray(log_probs[:, -1], dtype=np.float64)  # (1, V)
    return np.repeat(last, N, axis=0), repeat_rows(state, N)
