"""Drawing sequences from a language model: temperature, top-k, top-p, greedy.

All samples advance together as one batch through ``model.step``. At each step
the model's log-probabilities ``(n, V)`` of the ``n`` samples still running go
through a *rule* that returns one id per row; :func:`pick` is the usual rule,
built from three knobs applied in this order:

1. temperature ``tau``: ``p_i ∝ exp(log_p_i / tau)``; ``tau = 0`` is argmax;
2. top-k: keep the ``k`` most likely symbols (ties: the lower id first);
3. top-p (nucleus): keep the smallest set of most likely symbols whose
   probability (after 1 and 2) reaches ``p``;

then renormalise what is kept and draw from it. :func:`sample_with` runs the
same loop with any other rule, :func:`greedy` with the argmax, and
:func:`sample_text` is :func:`sample` from text to text.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.decode._model import (
    check_id_sequence,
    check_symbol,
    eval_mode,
    make_rng,
    nonnegative_int,
    take_rows,
    vocab_size,
    warm_up,
)
from rnncore.decode.compiled import compiled
from rnncore.errors import ArgumentError
from rnncore.nn._base import Array, State

__all__ = [
    "Rule",
    "check_rule",
    "greedy",
    "pick",
    "sample",
    "sample_text",
    "sample_with",
    "sampling_distribution",
]

Rule = Callable[[np.ndarray], np.ndarray]  # log_probs (n, V) -> ids (n,)

# A symbol is kept by top-p while the mass before it is below p by more than
# this: floating-point sums that "reach" p exactly still count as reaching it.
# The one definition: the Rust loop gets it through ``sample_loop``.
TOP_P_SLACK = 1e-9


def check_rule(temperature: Any, top_k: Any, top_p: Any) -> tuple[float, int | None, float | None]:
    """The sampling knobs, checked: temperature >= 0, top_k >= 1, top_p in (0, 1]."""
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not np.isfinite(temperature)
        or temperature < 0
    ):
        raise ArgumentError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None:
        top_k = _validate.positive_int("top_k", top_k)
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1:
            raise ArgumentError(f"top_p must be None or a number in (0, 1], got {top_p!r}")
        top_p = float(top_p)
    return float(temperature), top_k, top_p


def _log_probs_2d(log_probs: Any) -> Array:
    """``log_probs`` as a float64 ``(N, V)`` array."""
    lp = np.asarray(log_probs, dtype=np.float64)
    _validate.ndim("log_probs", lp, (2,), "2-D (N, V)")
    _validate.nonempty("log_probs", lp, [(1, "vocabulary", "V")])
    return lp


def sampling_distribution(
    log_probs: Any,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Array:
    """The distribution :func:`pick` draws from, as log-probabilities.

    Args:
        log_probs: ``(N, V)`` the model's next-symbol log-probabilities.
        temperature: ``>= 0``; 0 puts all mass on the most likely symbol.
        top_k: keep only the ``top_k`` most likely symbols (None, or a value
            of at least V: all of them).
        top_p: in ``(0, 1]``; keep the smallest set of most likely symbols whose
            probability reaches ``top_p`` (None or 1: all).

    Returns:
        ``(N, V)`` float64 log-probabilities that sum to one per row, ``-inf`` for
        the symbols left out.
    """
    temperature, top_k, top_p = check_rule(temperature, top_k, top_p)
    lp = _log_probs_2d(log_probs)
    N, V = lp.shape
    if temperature == 0:
        out = np.full((N, V), -np.inf)
        out[np.arange(N), lp.argmax(axis=1)] = 0.0
        return out
    order = np.argsort(-lp, axis=1, kind="stable")  # (N, V) most likely first
    lps = np.take_along_axis(lp, order, axis=1)  # (N, V) sorted, lps[:, 0] the largest
    keep = np.ones((N, V), dtype=bool)  # (N, V) in sorted order
    if top_k is not None:
        keep[:, top_k:] = False
    with np.errstate(over="ignore"):  # a tiny temperature sends the others to -inf
        p = np.exp((lps - lps[:, :1]) / temperature) * keep  # (N, V) unnormalised, <= 1
    p /= p.sum(axis=1, keepdims=True)
    if top_p is not None and top_p < 1:
        before = np.cumsum(p, axis=1) - p  # (N, V) mass of the more likely symbols
        keep[:, 1:] &= before[:, 1:] < top_p - TOP_P_SLACK  # the most likely always stays
        p *= keep
        p /= p.sum(axis=1, keepdims=True)
    out = np.empty((N, V))
    with np.errstate(divide="ignore"):
        np.put_along_axis(out, order, np.log(p), axis=1)  # back to id order
    return out


def _draw(log_dist: Array, rng: np.random.Generator) -> Array:
    """One id per row of ``log_dist (N, V)`` by inverse CDF, one uniform per row."""
    p = np.exp(log_dist)  # (N, V), 0 where -inf
    cdf = np.cumsum(p, axis=1)  # (N, V)
    u = rng.random(p.shape[0])[:, None] * cdf[:, -1:]  # (N, 1) in [0, total)
    ids = (cdf <= u).sum(axis=1)  # (N,) the first position whose cdf exceeds u
    last = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=1)  # (N,) last id with mass
    return np.minimum(ids, last).astype(np.int64)


def pick(
    log_probs: Any,
    rng: np.random.Generator,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Array:
    """Draw one id per row of ``log_probs (N, V)`` -> ``(N,)`` int64.

    The rows are drawn from :func:`sampling_distribution` with one uniform each
    from ``rng``; with ``temperature == 0`` the argmax is taken and ``rng`` is
    not used.
    """
    temperature, top_k, top_p = check_rule(temperature, top_k, top_p)
    if temperature == 0:
        return _log_probs_2d(log_probs).argmax(axis=1).astype(np.int64)
    dist = sampling_distribution(log_probs, temperature=temperature, top_k=top_k, top_p=top_p)
    return _draw(dist, rng)


def sample_with(
    model: Any,
    rule: Rule,
    *,
    prime_ids: Any = None,
    length: int,
    stop_id: int | None = None,
    num_samples: int = 1,
    state: State = None,
) -> list[list[int]]:
    """The sampling loop of :func:`sample` with any rule ``log_probs (n, V) -> ids (n,)``.

    See :func:`sample` for the arguments; ``rule`` replaces its knobs and its
    generator. A sample that draws ``stop_id`` leaves the batch (its rows of
    the state are dropped), so the rule sees only the samples still running.
    """
    return _run(
        model, rule, (1.0, None, None), None, prime_ids, length, stop_id, num_samples, state
    )


def sample(
    model: Any,
    *,
    prime_ids: Any = None,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    stop_id: int | None = None,
    num_samples: int = 1,
    seed: int | None = None,
    rng: np.random.Generator | None = None,
    state: State = None,
) -> list[list[int]]:
    """Draw ``num_samples`` independent continuations of ``prime_ids``, as one batch.

    Args:
        model: a language model or :class:`~rnncore.decode.Ensemble` (it is put
            in eval mode while sampling, then back).
        prime_ids: ``(P,)`` ids that warm up the state (one forward over the
            prime, shared by every sample). None or empty: the first symbol is
            drawn from the uniform distribution (after the knobs below).
        length: the most symbols to draw per sample (>= 0).
        temperature: ``>= 0``; 0 is greedy (argmax).
        top_k: keep the ``top_k`` most likely symbols at each step (None, or a
            value of at least V: all of them).
        top_p: nucleus sampling, in ``(0, 1]`` (None: all).
        stop_id: a sample ends when it draws this id, which is *included* as
            its last element; None: every sample has ``length`` symbols.
        num_samples: how many samples (N, the batch size).
        seed, rng: the random draws: a seed, or a ``numpy.random.Generator``
            (not both; neither: fresh entropy). The same seed gives the same
            samples.
        state: the state of one sequence (batch 1) before the prime; None:
            ``model.initial_state(1)``.

    Returns:
        ``num_samples`` lists of drawn ids (the prime is not repeated).
    """
    knobs = check_rule(temperature, top_k, top_p)
    gen = make_rng(seed, rng)
    return _run(model, None, knobs, gen, prime_ids, length, stop_id, num_samples, state)


def greedy(
    model: Any,
    *,
    prime_ids: Any = None,
    length: int,
    stop_id: int | None = None,
    state: State = None,
) -> list[int]:
    """The most likely symbol at every step (argmax decoding): one list of ids.

    Without a prime the first symbol is id 0 (every symbol is equally likely).
    """
    return _run(model, None, (0.0, None, None), None, prime_ids, length, stop_id, 1, state)[0]


def sample_text(
    model: Any,
    vocab: Any,
    *,
    length: int = 500,
    prime: str = "",
    **options: Any,
) -> str:
    """The prime followed by up to ``length`` drawn symbols, as text: :func:`sample`
    (one sample; ``options`` as there: ``temperature``, ``top_k``, ``top_p``,
    ``stop_id``, ``seed`` or ``rng``) with ``vocab``'s ``encode``/``decode``.
    ``rnncore sample`` prints the same text for the same seed."""
    prime_ids = vocab.encode(prime) if prime else np.zeros(0, dtype=np.int64)
    drawn = sample(model, prime_ids=prime_ids, length=length, **options)[0]
    return str(vocab.decode([*prime_ids.tolist(), *drawn]))


def _run(
    model: Any,
    rule: Rule | None,
    knobs: tuple[float, int | None, float | None],
    gen: np.random.Generator | None,
    prime_ids: Any,
    length: Any,
    stop_id: Any,
    num_samples: Any,
    state: State,
) -> list[list[int]]:
    """The one sampling loop: each step draws with ``rule``, or (None) with
    :func:`pick` and ``knobs``/``gen`` (``gen`` None only at temperature 0).

    Without a rule, a compiled model runs the whole loop in one Rust call
    (``sample_loop``) with the same draws, and ``gen`` is left where the Python
    loop would leave it: one uniform per running row per step.
    """
    V = vocab_size(model)
    length = nonnegative_int("length", length)
    N = _validate.positive_int("num_samples", num_samples)
    _validate.buffer_len("num_samples * length", N, length)  # (N, length) ids
    prime = check_id_sequence("prime_ids", prime_ids, V)
    stop = check_symbol("stop_id", stop_id, V)
    with eval_mode(model):
        fast = compiled(model)
        log_probs, state = warm_up(fast, prime, N, state)  # (N, V), state of N rows
        if rule is None and callable(getattr(fast, "sample_loop", None)):
            return _loop_in_one_call(fast, log_probs, state, gen, knobs, length, stop, N)
        if rule is None:
            temperature, top_k, top_p = knobs

            def rule(lp: Array) -> Array:
                return pick(lp, gen, temperature=temperature, top_k=top_k, top_p=top_p)  # type: ignore[arg-type]

        out = np.zeros((N, length), dtype=np.int64)  # (N, length) drawn ids
        ends = np.full(N, length)  # (N,) length of each sample
        rows = np.arange(N)  # (n,) the samples still running, in batch order
        for t in range(length):
            nxt = np.asarray(rule(log_probs), dtype=np.int64)  # (n,)
            if nxt.shape != rows.shape or nxt.min() < 0 or nxt.max() >= V:
                raise ArgumentError(
                    f"rule must return {rows.size} ids in 0..{V - 1}, got {nxt.shape} "
                    f"with values {nxt.min()}..{nxt.max()}"
                )
            out[rows, t] = nxt
            if stop is not None:
                going = nxt != stop  # (n,)
                if not going.all():
                    ends[rows[~going]] = t + 1
                    rows, nxt = rows[going], nxt[going]
                    if rows.size == 0:
                        break
                    state = take_rows(state, np.flatnonzero(going))
            if t + 1 < length:
                log_probs, state = fast.step(nxt, state)  # (n, V)
    return [out[i, : ends[i]].tolist() for i in range(N)]


def _loop_in_one_call(
    fast: Any,
    log_probs: Array,
    state: State,
    gen: np.random.Generator | None,
    knobs: tuple[float, int | None, float | None],
    length: int,
    stop: int | None,
    N: int,
) -> list[list[int]]:
    """:func:`_run`'s loop as one ``fast.sample_loop`` call (see there)."""
    uniforms = np.zeros(0)  # (length * N,) when drawing
    if knobs[0] > 0 and gen is not None:
        before = gen.bit_generator.state
        uniforms = gen.random(length * N)
    ids, ends = fast.sample_loop(
        log_probs,
        state,
        uniforms,
        length=length,
        temperature=knobs[0],
        top_k=knobs[1],
        top_p=knobs[2],
        stop_id=stop,
        top_p_slack=TOP_P_SLACK,
    )  # (N, length), (N,)
    if uniforms.size and gen is not None:  # one uniform per row per step it ran
        gen.bit_generator.state = before
        gen.random(int(ends.sum()))
    return [ids[i, : ends[i]].tolist() for i in range(N)]
