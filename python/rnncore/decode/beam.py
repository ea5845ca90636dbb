"""Beam search: the most likely continuations of a prime, ``beam_size`` at a time.

All live hypotheses (beams) advance as one batch through ``model.step``. At each
step every beam is extended by every symbol, the ``(B, V)`` candidates are ranked
by their log-probability, and the best ``beam_size`` that do not end in EOS
become the next beams; the state rows are gathered to follow them. A candidate
ending in EOS that ranks within the best ``beam_size`` is finished and set
aside. Hypotheses are ranked by the GNMT score::

    score = log_prob / lp(len),    lp(len) = ((5 + len) / 6) ** length_penalty

where ``len`` counts the hypothesis's symbols, EOS included. Search stops at
``max_length`` symbols, or as soon as no live beam can still reach a score above
the ``n_best``-th finished one (log-probabilities only fall as a beam grows, so
this never changes the result). With a beam as wide as the whole search space
nothing is pruned and the result is the exact top of all sequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rnncore import _validate
from rnncore.decode._model import (
    advance,
    check_id_sequence,
    check_symbol,
    eval_mode,
    nonnegative_int,
    real,
    vocab_size,
    warm_up,
)
from rnncore.decode.compiled import compiled, step_rows
from rnncore.errors import ArgumentError
from rnncore.nn._base import Array

__all__ = ["Hypothesis", "beam_search", "beam_search_groups", "length_penalty"]


@dataclass
class Hypothesis:
    """One result of :func:`beam_search`."""

    ids: list[int]  # symbols after the prime; the last is eos_id if it was emitted
    score: float  # log_prob / length_penalty(len(ids), alpha): what the results are sorted by
    log_prob: float  # log P(ids | prime), natural log


def length_penalty(length: Any, alpha: float) -> Any:
    """GNMT's ``((5 + length) / 6) ** alpha`` (``length`` a number or an array)."""
    return ((5.0 + np.asarray(length, dtype=np.float64)) / 6.0) ** alpha


_PENALTY_RANGE = (1e-200, 1e200)


def _penalties(alpha: float, max_length: int) -> Array:
    """``length_penalty(len, alpha)`` for ``len`` in ``0..max_length``: ``(max_length + 1,)``.

    Refuses an ``alpha`` whose penalty leaves ``[1e-200, 1e200]`` within
    ``max_length`` symbols: there the scores would overflow to -inf or collapse
    to -0.0 and no longer rank the hypotheses.
    """
    with np.errstate(over="ignore", under="ignore"):
        penalty = length_penalty(np.arange(max_length + 1), alpha)
    low, high = _PENALTY_RANGE
    if not ((penalty >= low) & (penalty <= high)).all():
        limit = np.log(high) / max(-np.log(5.0 / 6.0), np.log((5.0 + max_length) / 6.0))
        raise ArgumentError(
            f"length_penalty={alpha} makes the penalty over {max_length} symbols leave "
            f"[{low:g}, {high:g}], where scores cannot be ranked; use |length_penalty| "
            f"<= {np.floor(limit * 100) / 100:g} for max_length={max_length}"
        )
    return penalty


def _block_repeats(cand: Array, seqs: Array, n: int) -> None:
    """Set ``cand (B, V)`` to -inf wherever that symbol would complete an n-gram
    its row of ``seqs (B, t)`` already holds."""
    t = seqs.shape[1]
    if t < n:
        return  # no complete n-gram yet
    windows = sliding_window_view(seqs, n, axis=1)  # (B, t - n + 1, n) every n-gram
    tail = seqs[:, t - n + 1 :]  # (B, n - 1) what the next symbol extends
    match = (windows[:, :, :-1] == tail[:, None, :]).all(axis=2)  # (B, t - n + 1)
    rows, at = np.nonzero(match)
    cand[rows, windows[rows, at, -1]] = -np.inf


def _best_first(flat: Array, k: int) -> Array:
    """Indices of the ``k`` largest of ``flat (M,)`` (more on ties), largest first.

    The same as the head of a stable descending sort (ties: lower index first),
    without sorting all ``M`` values.
    """
    if k < flat.size:
        cut = -np.partition(-flat, k - 1)[k - 1]  # the k-th largest value
        idx = np.flatnonzero(flat >= cut)  # every value tied with it too, in index order
    else:
        idx = np.arange(flat.size)
    return idx[np.argsort(-flat[idx], kind="stable")]


class _Finished:
    """The finished hypotheses, and the n-best score so far."""

    def __init__(self, n_best: int) -> None:
        self.n_best = n_best
        self.items: list[Hypothesis] = []

    def add(self, seqs: Array, log_probs: Array, penalty: float) -> None:
        """Hypotheses ``seqs (R, t)``, log-probabilities ``(R,)``, one length penalty."""
        for ids, log_prob in zip(seqs.tolist(), log_probs.tolist()):
            self.items.append(Hypothesis(ids, log_prob / penalty, log_prob))

    def worst_kept(self) -> float:
        """The ``n_best``-th best score (-inf while there are fewer)."""
        if len(self.items) < self.n_best:
            return -np.inf
        scores = np.array([h.score for h in self.items])
        return float(-np.partition(-scores, self.n_best - 1)[self.n_best - 1])

    def best(self) -> list[Hypothesis]:
        """The ``n_best`` best, best first (ties: in the order they were found)."""
        return sorted(self.items, key=lambda h: -h.score)[: self.n_best]


def beam_search(
    model: Any,
    *,
    prime_ids: Any = None,
    beam_size: int,
    max_length: int,
    min_length: int = 0,
    eos_id: int | None = None,
    length_penalty: float = 0.0,
    n_best: int = 1,
    no_repeat_ngram_size: int = 0,
) -> list[Hypothesis]:
    """The ``n_best`` best continuations of ``prime_ids`` found by beam search.

    Args:
        model: a language model or :class:`~rnncore.decode.Ensemble` (in eval
            mode while searching, then back).
        prime_ids: ``(P,)`` ids that warm up the state. None or empty: the first
            symbol is uniform over the vocabulary (``log(1/V)`` for each).
        beam_size: B, the beams kept at each step.
        max_length: the most symbols of a hypothesis (EOS included).
        min_length: EOS is blocked until a hypothesis holds this many symbols
            (so a finished one has ``min_length`` symbols before its EOS).
        eos_id: the symbol that ends a hypothesis; None: all end at ``max_length``.
        length_penalty: GNMT's alpha; 0 ranks by log-probability alone, larger
            values favour longer hypotheses.
        n_best: how many hypotheses to return (``<= beam_size``).
        no_repeat_ngram_size: n > 0 blocks every symbol that would repeat an
            n-gram of the hypothesis (the prime is not looked at). A beam left
            with no allowed symbol ends where it is.

    Returns:
        Up to ``n_best`` :class:`Hypothesis`, best score first.
    """
    return beam_search_groups(
        model,
        groups=1,
        prime_ids=prime_ids,
        beam_size=beam_size,
        max_length=max_length,
        min_length=min_length,
        eos_id=eos_id,
        length_penalty=length_penalty,
        n_best=n_best,
        no_repeat_ngram_size=no_repeat_ngram_size,
    )[0]


def _start(model: Any, prime: Array, groups: int) -> tuple[Array, Any]:
    """``(next_lp (G, V), state of G rows)``: row ``g`` is ``initial_state(G)``'s
    row ``g`` after the prime (one group: the prime runs once, as a batch of one)."""
    if groups == 1:
        return warm_up(model, prime, 1)
    state = model.initial_state(groups)
    if prime.size == 0:
        return np.full((groups, vocab_size(model)), -np.log(vocab_size(model))), state
    log_probs, state = advance(model, np.repeat(prime[None, :], groups, axis=0), state)
    return np.asarray(log_probs[:, -1], dtype=np.float64), state  # (G, V)


def beam_search_groups(
    model: Any,
    *,
    groups: int,
    prime_ids: Any = None,
    beam_size: int,
    max_length: int,
    min_length: int = 0,
    eos_id: int | None = None,
    length_penalty: float = 0.0,
    n_best: int = 1,
    no_repeat_ngram_size: int = 0,
) -> list[list[Hypothesis]]:
    """:func:`beam_search` for ``groups`` independent searches at once: group ``g``
    starts from row ``g`` of ``model.initial_state(groups)`` (e.g. a decoder bound
    to ``G`` different sources, :class:`~rnncore.decode.seq2seq.SourceModel`), and
    the live beams of every group advance as one batch through ``model.step``.
    Each group ranks, finishes and stops on its own, exactly as alone; the others
    do not change its result. Returns each group's hypotheses, best first.
    """
    G = _validate.positive_int("groups", groups)
    V = vocab_size(model)
    B = _validate.positive_int("beam_size", beam_size)
    max_length = _validate.positive_int("max_length", max_length)
    _validate.buffer_len("groups * beam_size * max_length", G, B, max_length + 1)
    min_length = nonnegative_int("min_length", min_length)
    if min_length > max_length:
        raise ArgumentError(f"min_length ({min_length}) must be <= max_length ({max_length})")
    eos = check_symbol("eos_id", eos_id, V)
    alpha = real("length_penalty", length_penalty)
    n_best = _validate.positive_int("n_best", n_best)
    if n_best > B:
        raise ArgumentError(f"n_best ({n_best}) must be <= beam_size ({B})")
    ngram = nonnegative_int("no_repeat_ngram_size", no_repeat_ngram_size)
    prime = check_id_sequence("prime_ids", prime_ids, V)

    penalty = _penalties(alpha, max_length)  # (max_length + 1,) by length
    finished = [_Finished(n_best) for _ in range(G)]
    with eval_mode(model):
        model = compiled(model)
        next_lp, state = _start(model, prime, G)  # (G, V); per group the empty hypothesis
        seqs = np.zeros((G, 0), dtype=np.int64)  # (R, t) the live beams, grouped in order
        total = np.zeros(G)  # (R,) log P(seqs | prime)
        group = np.arange(G)  # (R,) the group of each live beam
        for t in range(max_length):
            cand = total[:, None] + next_lp  # (R, V) log P of each extension
            if eos is not None and t < min_length:
                cand[:, eos] = -np.inf
            if ngram:
                _block_repeats(cand, seqs, ngram)
            stuck = ~(cand > -np.inf).any(axis=1)  # (R,) beams with no allowed symbol
            keep_rows, keep_tok, keep_total = [], [], []
            bounds = np.flatnonzero(np.diff(group, prepend=-1, append=G))  # group starts
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                done_g = finished[int(group[lo])]
                if stuck[lo:hi].any():
                    rows = np.flatnonzero(stuck[lo:hi]) + lo
                    done_g.add(seqs[rows], total[rows], penalty[t])
                flat = cand[lo:hi].ravel()  # (b * V,) this group's candidates
                # EOS is one symbol per beam: the best 2B hold the best B of the others
                order = _best_first(flat, 2 * B)  # ties: lower beam, then lower id
                order = order[flat[order] > -np.inf]
                beam, tok = np.divmod(order, V)  # (c,) each
                if eos is not None:
                    ends = tok == eos  # (c,)
                    top = np.flatnonzero(ends[:B])  # EOS candidates among the best B
                    ended = np.concatenate([seqs[lo + beam[top]], tok[top, None]], axis=1)
                    done_g.add(ended, flat[order[top]], penalty[t + 1])
                    beam, tok, order = beam[~ends], tok[~ends], order[~ends]
                beam, tok, order = beam[:B], tok[:B], order[:B]
                if beam.size == 0:
                    continue
                if t + 1 == max_length:  # these beams are as long as allowed
                    grown = np.concatenate([seqs[lo + beam], tok[:, None]], axis=1)
                    done_g.add(grown, flat[order], penalty[max_length])
                    continue
                # A live beam ends with t + 1 to max_length symbols, and its
                # log-probability only falls: its score stays below total / penalty
                # at one end or the other.
                best, worst = flat[order].max(), done_g.worst_kept()
                if worst > -np.inf and worst >= max(
                    best / penalty[t + 1], best / penalty[max_length]
                ):
                    continue  # nothing left can enter this group's n-best
                keep_rows.append(lo + beam)
                keep_tok.append(tok)
                keep_total.append(flat[order])
            if not keep_rows:
                break
            rows = np.concatenate(keep_rows)  # (R',) rows followed, grouped in order
            tok = np.concatenate(keep_tok)
            seqs = np.concatenate([seqs[rows], tok[:, None]], axis=1)  # (R', t + 1)
            total = np.concatenate(keep_total)
            group = group[rows]
            next_lp, state = step_rows(model, tok, state, rows)  # (R', V)
            next_lp = np.asarray(next_lp, dtype=np.float64)
    return [f.best() for f in finished]
