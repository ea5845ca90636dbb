"""rnncore.decode.beam_search.

With a beam as wide as the search space, beam search must return exactly the
ranking of an exhaustive enumeration of every allowed sequence, scored one step
at a time (with and without EOS, minimum length, length penalty, n-gram blocking
and a prime; LSTM, GRU and an ensemble). Beam width 1 is greedy; n-gram blocking
never lets an n-gram repeat; every hypothesis's log-probability is what
``score`` gives its ids; bad arguments name themselves.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnncore import decode
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig


def lm(V, cell="lstm", seed=0, scale=3.0, **kw):
    """A tiny float64 language model in eval mode, weights scaled for peaked outputs."""
    kw = {"hidden_size": 5, "num_layers": 2, "dtype": "float64", "seed": seed, **kw}
    model = CharLM(LMConfig(vocab_size=V, cell=cell, **kw))
    model.load_state_dict({k: p * scale for k, p in model.state_dict().items()})
    return model.eval()


class Bigram:
    """A model whose next symbol depends on the last one only, through a ``(V, V)``
    table of probabilities. It has no ``forward``: primes go through ``step``."""

    def __init__(self, table):
        self.log_table = np.log(np.asarray(table, dtype=np.float64))  # (V, V)
        self.vocab_size = len(table)

    def initial_state(self, N):
        return np.zeros((1, N, 1))  # (L, N, H): the last id, unused before the first

    def step(self, ids, state):
        ids = np.asarray(ids)
        return self.log_table[ids], ids[None, :, None].astype(np.float64)


def make_model(kind, V):
    if kind == "lstm":
        return lm(V, "lstm", seed=1)
    if kind == "gru":
        return lm(V, "gru", seed=2, num_layers=1, hidden_size=4)
    return decode.Ensemble([lm(V, "lstm", seed=3), lm(V, "gru", seed=4, hidden_size=3)])


def log_prob_by_steps(model, V, prime, seq):
    """Oracle: ``log P(seq | prime)`` one step at a time; no prime: a uniform first symbol."""
    state, log_probs = model.initial_state(1), np.full(V, -np.log(V))
    for i in prime:
        out, state = model.step(np.array([i]), state)
        log_probs = out[0]
    total = 0.0
    for i in seq:
        total += log_probs[i]
        out, state = model.step(np.array([i]), state)
        log_probs = out[0]
    return total


def repeats_ngram(seq, n):
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


def exhaustive(model, V, prime, max_length, eos, min_length, alpha, ngram):
    """Every sequence beam search may return, best score first."""
    found = []
    for length in range(1, max_length + 1):
        for seq in itertools.product(range(V), repeat=length):
            if eos is None:
                ok = length == max_length
            else:
                body, ended = seq[:-1], seq[-1] == eos
                ok = eos not in body and (
                    (ended and len(body) >= min_length) or (not ended and length == max_length)
                )
            if ok and ngram and repeats_ngram(seq, ngram):
                ok = False
            if ok:
                log_prob = log_prob_by_steps(model, V, prime, seq)
                found.append((list(seq), log_prob / ((5 + length) / 6) ** alpha, log_prob))
    found.sort(key=lambda f: -f[1])
    return found


CASES = [  # V, prime, max_length, eos, min_length, alpha, ngram
    (3, [1, 0], 4, None, 0, 0.0, 0),
    (3, None, 4, None, 0, 0.0, 0),
    (4, [2], 3, 3, 0, 0.0, 0),
    (4, [2], 3, 3, 0, 1.0, 0),
    (3, [1], 4, 0, 1, 0.6, 0),
    (3, [0, 1], 4, 2, 0, -0.5, 0),
    (3, None, 4, 1, 2, 0.8, 0),
    (3, [1], 4, None, 0, 0.0, 2),
    (3, [2], 4, 0, 0, 0.5, 2),
]


@pytest.mark.parametrize("kind", ["lstm", "gru", "ensemble"])
@pytest.mark.parametrize("case", CASES)
def test_full_width_beam_is_exhaustive_enumeration(kind, case):
    V, prime, max_length, eos, min_length, alpha, ngram = case
    model = make_model(kind, V)
    want = exhaustive(model, V, prime or [], max_length, eos, min_length, alpha, ngram)
    options = {
        "prime_ids": prime,
        "beam_size": V**max_length,
        "max_length": max_length,
        "min_length": min_length,
        "eos_id": eos,
        "length_penalty": alpha,
        "no_repeat_ngram_size": ngram,
    }
    for n_best in (len(want), 3, 1):  # everything, and early stops after the best 3 or 1
        found = decode.beam_search(model, n_best=n_best, **options)
        assert [h.ids for h in found] == [w[0] for w in want[:n_best]]
        np.testing.assert_allclose([h.score for h in found], [w[1] for w in want[:n_best]])
        np.testing.assert_allclose([h.log_prob for h in found], [w[2] for w in want[:n_best]])


def test_beam_width_one_is_greedy():
    for cell, seed, prime in (("lstm", 0, [1, 2]), ("gru", 5, [0]), ("rnn_tanh", 9, None)):
        model = lm(5, cell, seed=seed)
        greedy = decode.greedy(model, prime_ids=prime, length=12)
        (best,) = decode.beam_search(model, prime_ids=prime, beam_size=1, max_length=12)
        assert best.ids == greedy
        eos = greedy[4]
        stopped = decode.greedy(model, prime_ids=prime, length=12, stop_id=eos)
        (best,) = decode.beam_search(model, prime_ids=prime, beam_size=1, max_length=12, eos_id=eos)
        assert best.ids == stopped and stopped[-1] == eos


def test_beam_by_hand_on_a_bigram_model():
    """0 is EOS. From the prime 3: a=1 (.5), b=2 (.29), EOS (.2), c=3 (.01); two beams."""
    model = Bigram(
        [
            [0.25, 0.25, 0.25, 0.25],
            [0.9, 0.05, 0.04, 0.01],  # after a: EOS is likely
            [0.1, 0.1, 0.1, 0.7],  # after b: c
            [0.2, 0.5, 0.29, 0.01],  # after c
        ]
    )
    found = decode.beam_search(model, prime_ids=[3], beam_size=2, max_length=3, eos_id=0, n_best=2)
    # step 1 keeps [a] .5 and [b] .29; [EOS] .2 ranks third, outside the beam, so it is
    # not kept. Step 2 finishes [a, EOS] .45 (best of all) and keeps [b, c] .203 and
    # [b, a] .029 (tied with [b, b]: the lower id). Step 3 ranks [b, c, a] .1015 and
    # [b, c, b] .0589 first, and they end at max_length.
    assert [h.ids for h in found] == [[1, 0], [2, 3, 1]]
    np.testing.assert_allclose(
        [h.log_prob for h in found], np.log([0.5 * 0.9, 0.29 * 0.7 * 0.5]), rtol=1e-12
    )
    assert [h.score for h in found] == [h.log_prob for h in found]  # alpha 0


def test_length_penalty_can_prefer_a_longer_hypothesis():
    """[EOS] has .6 but [1, 1, 1, 1] has .4 and, at alpha 3, the better score:
    the search must not stop once [EOS] is found."""
    tiny = 1e-12
    model = Bigram([[1 / 3] * 3, [tiny, 1 - 2 * tiny, tiny], [0.6, 0.4 - tiny, tiny]])
    run = {"prime_ids": [2], "beam_size": 2, "max_length": 4, "eos_id": 0}
    (best,) = decode.beam_search(model, length_penalty=3.0, **run)
    assert best.ids == [1, 1, 1, 1]
    assert best.score == pytest.approx(np.log(0.4) / 1.5**3)
    (best,) = decode.beam_search(model, length_penalty=0.0, **run)
    assert best.ids == [0] and best.log_prob == pytest.approx(np.log(0.6))


@pytest.mark.parametrize("n, max_length", [(1, 4), (2, 12), (3, 16)])
def test_no_repeat_ngram_blocking(n, max_length):
    model = lm(4, "gru", seed=6)
    run = {"prime_ids": [1], "beam_size": 3, "max_length": max_length, "n_best": 3}
    assert repeats_ngram(decode.beam_search(model, **run)[0].ids, n)  # the test can fail
    found = decode.beam_search(model, no_repeat_ngram_size=n, **run)
    assert len(found) == 3
    for h in found:
        assert not repeats_ngram(h.ids, n), h.ids
        assert h.log_prob == pytest.approx(decode.score(model, h.ids, prime_ids=[1]).log_prob)


def test_a_beam_with_nothing_left_to_emit_ends_early():
    model = lm(3, "lstm", seed=2)
    found = decode.beam_search(
        model, prime_ids=[0], beam_size=2, max_length=6, no_repeat_ngram_size=1, n_best=2
    )
    assert [len(h.ids) for h in found] == [3, 3]  # all 3 symbols used, nothing may follow
    assert all(sorted(h.ids) == [0, 1, 2] for h in found)


def test_hypotheses_are_scored_consistently():
    model = lm(5, "lstm", seed=12, scale=1.5)
    for prime in ([2, 4], None):
        found = decode.beam_search(
            model,
            prime_ids=prime,
            beam_size=6,
            max_length=9,
            min_length=2,
            eos_id=0,
            length_penalty=0.7,
            n_best=6,
        )
        assert len(found) == 6
        assert [h.score for h in found] == sorted((h.score for h in found), reverse=True)
        for h in found:
            assert 0 not in h.ids[:-1] and 3 <= len(h.ids) <= 9
            assert h.ids[-1] == 0 or len(h.ids) == 9
            if prime is None:  # uniform first symbol, then the first symbol is context
                want = -np.log(5) + decode.score(model, h.ids).log_prob
            else:
                want = decode.score(model, h.ids, prime_ids=prime).log_prob
            assert h.log_prob == pytest.approx(want)
            assert h.score == pytest.approx(h.log_prob / decode.length_penalty(len(h.ids), 0.7))
    assert model.beam_search(beam_size=6, max_length=9, prime_ids=[2, 4]) == decode.beam_search(
        model, beam_size=6, max_length=9, prime_ids=[2, 4]
    )


def test_beam_search_runs_in_eval_mode():
    model = lm(4, seed=3, dropout=0.5)
    want = decode.beam_search(model, prime_ids=[1], beam_size=3, max_length=8, n_best=3)
    model.train()
    assert decode.beam_search(model, prime_ids=[1], beam_size=3, max_length=8, n_best=3) == want
    assert model.training


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"beam_size": 0}, "beam_size"),
        ({"beam_size": 2.0}, "beam_size"),
        ({"max_length": 0}, "max_length"),
        ({"min_length": 6}, "min_length"),
        ({"min_length": -1}, "min_length"),
        ({"eos_id": 4}, "eos_id"),
        ({"n_best": 3}, "n_best"),
        ({"n_best": 0}, "n_best"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size"),
        ({"length_penalty": float("nan")}, "length_penalty"),
        ({"prime_ids": [4]}, "prime_ids"),
    ],
)
def test_bad_beam_arguments_name_the_argument(kwargs, words):
    run = {"beam_size": 2, "max_length": 5, **kwargs}
    with pytest.raises(ArgumentError, match=words):
        decode.beam_search(lm(4), **run)
