"""rnncore.decode: sampling and scoring.

The sampling rule against distributions computed by hand; the frequencies of
whole drawn sequences (with stop symbols, top-k, top-p, no prime) against their
exact probabilities from a one-step-at-a-time oracle; greedy against an argmax
loop over ``step``; ``score`` against summed ``step`` log-probabilities and
against ``CharLM.loss``; modes, seeds and bad arguments.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnncore import decode
from rnncore.data import CharVocab
from rnncore.decode import scoring
from rnncore.errors import ArgumentError, DTypeError, ShapeError
from rnncore.models import CharLM, LMConfig


def lm(V=3, cell="lstm", seed=0, scale=3.0, **kw):
    """A tiny float64 language model in eval mode, weights scaled for peaked outputs."""
    kw = {"hidden_size": 5, "num_layers": 2, "dtype": "float64", "seed": seed, **kw}
    model = CharLM(LMConfig(vocab_size=V, cell=cell, **kw))
    model.load_state_dict({k: p * scale for k, p in model.state_dict().items()})
    return model.eval()


def next_log_probs(model, prime):
    """Oracle: the state and ``(V,)`` log-probabilities after ``prime``, one step at a time."""
    V = model.config.vocab_size
    state, log_probs = model.initial_state(1), np.full(V, -np.log(V))
    for i in prime:
        out, state = model.step(np.array([i]), state)
        log_probs = out[0]
    return log_probs, state


def sequence_prob(model, prime, seq, **knobs):
    """Oracle: the probability that sampling with ``knobs`` draws ``seq`` after ``prime``."""
    log_probs, state = next_log_probs(model, prime)
    prob = 1.0
    for i in seq:
        dist = np.exp(decode.sampling_distribution(log_probs[None, :], **knobs)[0])
        prob *= dist[i]
        out, state = model.step(np.array([i]), state)
        log_probs = out[0]
    return prob


def log_prob_by_steps(model, prime, seq):
    """Oracle: ``sum log P(seq[t] | prime, seq[:t])`` from ``step`` alone."""
    log_probs, state = next_log_probs(model, prime)
    total = 0.0
    for i in seq:
        total += log_probs[i]
        out, state = model.step(np.array([i]), state)
        log_probs = out[0]
    return total


# ------------------------------------------------------------------ the sampling rule

P = np.array([0.5, 0.05, 0.3, 0.15])


def dist(probs=P, **knobs):
    return np.exp(decode.sampling_distribution(np.log(np.asarray(probs))[None, :], **knobs)[0])


def test_sampling_distribution_by_hand():
    np.testing.assert_allclose(dist(), P)
    np.testing.assert_allclose(dist(top_k=2), [0.5 / 0.8, 0, 0.3 / 0.8, 0])
    np.testing.assert_allclose(dist(top_k=9), P)
    np.testing.assert_allclose(dist(top_p=0.8), [0.5 / 0.8, 0, 0.3 / 0.8, 0])  # reaches p exactly
    np.testing.assert_allclose(dist(top_p=0.81), [0.5 / 0.95, 0, 0.3 / 0.95, 0.15 / 0.95])
    np.testing.assert_allclose(dist(top_p=0.5), [1, 0, 0, 0])
    np.testing.assert_allclose(dist(top_p=0.51), [0.5 / 0.8, 0, 0.3 / 0.8, 0])
    np.testing.assert_allclose(dist(top_p=1.0), P)
    np.testing.assert_allclose(dist(temperature=0.5), P**2 / (P**2).sum())
    np.testing.assert_allclose(dist(temperature=0), [1, 0, 0, 0])
    # temperature first, then top-k, then top-p on what top-k kept
    r = np.sqrt(P) * [1, 0, 1, 1]  # tau = 2, top 3
    r /= r.sum()
    assert r[0] < 0.6 < r[0] + r[2]
    np.testing.assert_allclose(
        dist(temperature=2, top_k=3, top_p=0.6), [r[0], 0, r[2], 0] / (r[0] + r[2])
    )
    np.testing.assert_allclose(dist([0.25] * 4, top_k=2), [0.5, 0.5, 0, 0])  # ties: lower ids
    rows = decode.sampling_distribution(np.log([P, P[::-1]]), top_k=1)
    np.testing.assert_array_equal(np.exp(rows), [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_pick_draws_from_the_distribution():
    n = 40000
    rows = np.log(np.tile(P, (n, 1)))
    for knobs in ({}, {"temperature": 0.7, "top_k": 3}, {"top_p": 0.9}):
        ids = decode.pick(rows, np.random.default_rng(1), **knobs)
        assert ids.shape == (n,) and ids.dtype == np.int64
        freq = np.bincount(ids, minlength=4) / n
        want = dist(**knobs)
        assert np.all(np.abs(freq - want) <= 5 * np.sqrt(want * (1 - want) / n)), knobs
    rng = np.random.default_rng(2)
    before = rng.bit_generator.state
    np.testing.assert_array_equal(decode.pick(np.log([P, P[::-1]]), rng, temperature=0), [0, 3])
    assert rng.bit_generator.state == before  # greedy draws nothing


# ------------------------------------------------------------------ whole sequences


def outcomes(V, length, stop):
    """Every distinct result of sampling ``length`` symbols with stop symbol ``stop``."""
    found = set()
    for seq in itertools.product(range(V), repeat=length):
        if stop is not None and stop in seq:
            seq = seq[: seq.index(stop) + 1]
        found.add(seq)
    return sorted(found)


@pytest.mark.parametrize(
    "cell, prime, length, stop, knobs",
    [
        ("lstm", [1, 2, 0], 2, None, {}),
        ("gru", [2], 3, 0, {"temperature": 0.8, "top_k": 2}),
        ("rnn_tanh", None, 3, 1, {"top_p": 0.7}),
        ("lstm", [0], 3, 2, {"temperature": 1.5}),
    ],
)
def test_sample_frequencies_match_sequence_probabilities(cell, prime, length, stop, knobs):
    model = lm(3, cell, seed=4)
    n = 20000
    drawn = decode.sample(
        model, prime_ids=prime, length=length, stop_id=stop, num_samples=n, seed=0, **knobs
    )
    counts: dict[tuple[int, ...], int] = {}
    for ids in drawn:
        counts[tuple(ids)] = counts.get(tuple(ids), 0) + 1
    expect = {
        seq: sequence_prob(model, prime or [], seq, **knobs) for seq in outcomes(3, length, stop)
    }
    assert sum(expect.values()) == pytest.approx(1.0)
    assert set(counts) <= {seq for seq, p in expect.items() if p > 0}
    for seq, p in expect.items():
        freq = counts.get(seq, 0) / n
        assert abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12, (seq, freq, p)


def test_sample_is_seeded_and_batched():
    model = lm(5, seed=2, scale=1.0)
    run = {"prime_ids": [1, 3], "length": 20, "num_samples": 4}
    first = decode.sample(model, seed=5, **run)
    assert first == decode.sample(model, seed=5, **run)
    assert first == decode.sample(model, rng=np.random.default_rng(5), **run)
    assert first != decode.sample(model, seed=6, **run)
    assert len(first) == 4 and all(len(ids) == 20 for ids in first)
    assert len({tuple(ids) for ids in first}) > 1  # independent samples
    assert model.sample(seed=5, **run) == first
    assert decode.sample(model, length=0, num_samples=3, seed=0) == [[], [], []]
    with pytest.raises(ArgumentError, match="not both"):
        decode.sample(model, length=3, seed=1, rng=np.random.default_rng(1))


def test_stop_symbol_ends_a_sample_and_is_included():
    model = lm(4, seed=3, scale=1.0)
    drawn = decode.sample(model, prime_ids=[2], length=12, stop_id=1, num_samples=200, seed=3)
    lengths = {len(ids) for ids in drawn}
    assert len(lengths) > 2 and max(lengths) == 12
    for ids in drawn:
        assert 1 not in ids[:-1]
        assert ids[-1] == 1 or len(ids) == 12


def test_greedy_is_the_argmax_of_each_step():
    for cell, prime in (("lstm", [1, 0, 2]), ("gru", [3]), ("rnn_relu", None)):
        model = lm(4, cell, seed=7)
        log_probs, state = next_log_probs(model, prime or [])
        want = []
        for _ in range(15):
            want.append(int(np.argmax(log_probs)))
            out, state = model.step(np.array(want[-1:]), state)
            log_probs = out[0]
        assert decode.greedy(model, prime_ids=prime, length=15) == want
        assert model.greedy(prime_ids=prime, length=15) == want
        for knobs in ({"temperature": 0}, {"top_k": 1, "temperature": 1.3}, {"top_p": 1e-6}):
            drawn = decode.sample(model, prime_ids=prime, length=15, num_samples=3, **knobs)
            assert drawn == [want] * 3
        stop = want[6]
        cut = want[: want.index(stop) + 1]
        assert decode.greedy(model, prime_ids=prime, length=15, stop_id=stop) == cut
    assert decode.greedy(lm(4), length=1) == [0]  # no prime: uniform, ties to the lower id


def test_decoding_runs_in_eval_mode_and_restores_the_mode():
    model = lm(4, seed=1, dropout=0.5)
    want = decode.greedy(model, prime_ids=[1, 2], length=30)
    model.train()
    assert decode.greedy(model, prime_ids=[1, 2], length=30) == want
    assert model.training
    assert decode.score(model, [1, 2, 3, 0]) == decode.score(model.eval(), [1, 2, 3, 0])
    assert not model.training


def test_sample_text_is_sample_on_text():
    model = lm(4, seed=5)
    vocab = CharVocab.from_text("abcd")
    prime = vocab.encode("ba")
    for knobs in ({"temperature": 0.0}, {"temperature": 0.7, "top_k": 3, "seed": 4}):
        ids = decode.sample(model, prime_ids=prime, length=12, **knobs)[0]
        text = decode.sample_text(model, vocab, prime="ba", length=12, **knobs)
        assert text == vocab.decode([*prime, *ids])
    assert decode.sample_text(model, vocab, prime="b", length=9, temperature=0) == vocab.decode(
        [1, *decode.greedy(model, prime_ids=[1], length=9)]
    )
    with pytest.raises(ArgumentError, match="temperature"):
        decode.sample_text(model, vocab, length=3, temperature=-1)


def test_a_given_state_is_where_the_prime_starts():
    model = lm(4, seed=6, cell="gru")
    _, state = model.forward(np.array([[2, 3, 1]]), None)  # (L, 1, H) after 2, 3, 1
    for how in ({"temperature": 0}, {"seed": 9}):
        want = decode.sample(model, prime_ids=[2, 3, 1, 0], length=8, **how)
        assert decode.sample(model, prime_ids=[0], length=8, state=state, **how) == want
    assert decode.greedy(model, prime_ids=[0], length=5, state=state) == decode.greedy(
        model, prime_ids=[2, 3, 1, 0], length=5
    )


# ------------------------------------------------------------------ scoring


def test_score_agrees_with_step_and_with_loss(monkeypatch):
    model = CharLM(LMConfig(vocab_size=6, hidden_size=8, num_layers=2, seed=3)).eval()  # float32
    ids = np.random.default_rng(0).integers(0, 6, 40)
    log_prob, per_symbol = decode.score(model, ids)
    assert log_prob == pytest.approx(log_prob_by_steps(model, ids[:1], ids[1:]), rel=1e-5)
    loss, _ = model.loss(ids[None, :-1], ids[None, 1:])
    assert per_symbol == pytest.approx(loss, rel=1e-5)
    assert per_symbol == pytest.approx(-log_prob / 39)
    prime = [5, 0, 1]
    primed = decode.score(model, ids, prime_ids=prime)
    assert primed.log_prob == pytest.approx(log_prob_by_steps(model, prime, ids), rel=1e-5)
    assert primed.per_symbol_loss == pytest.approx(-primed.log_prob / 40)
    assert model.score(ids, prime_ids=prime) == primed
    exact = lm(4, seed=8)
    long_ids = np.random.default_rng(1).integers(0, 4, 50)
    whole = decode.score(exact, long_ids, prime_ids=[1, 2, 3, 0, 1])
    monkeypatch.setattr(scoring, "SCORE_CHUNK", 3)  # many chunks, the prime split too
    chunked = decode.score(exact, long_ids, prime_ids=[1, 2, 3, 0, 1])
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)
    assert whole.log_prob == pytest.approx(log_prob_by_steps(exact, [1, 2, 3, 0, 1], long_ids))


def test_score_runs_the_compiled_model(monkeypatch):
    model = lm(5, seed=2)
    ids = np.random.default_rng(3).integers(0, 5, 30)
    want = decode.score(model, ids, prime_ids=[4, 1])
    calls = []
    forward = decode.CompiledLM.forward
    monkeypatch.setattr(
        decode.CompiledLM, "forward", lambda self, *a: calls.append(1) or forward(self, *a)
    )
    assert decode.score(model, ids, prime_ids=[4, 1]) == want
    assert calls  # the chunks went through the compiled decoder
    assert want.log_prob == pytest.approx(log_prob_by_steps(model, [4, 1], ids), rel=1e-10)


def test_score_rejects_bad_ids():
    model = lm(3)
    with pytest.raises(ArgumentError, match="at least 2"):
        decode.score(model, [1])
    with pytest.raises(ArgumentError, match="at least 1"):
        decode.score(model, [], prime_ids=[1])
    with pytest.raises(ArgumentError, match=r"ids must lie in 0\.\.2"):
        decode.score(model, [0, 3])
    with pytest.raises(DTypeError, match="ids"):
        decode.score(model, [0.0, 1.0])
    with pytest.raises(ShapeError, match="ids"):
        decode.score(model, [[0, 1]])
    with pytest.raises(ArgumentError, match="prime_ids"):
        decode.score(model, [0, 1], prime_ids=[-1])


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"prime_ids": [0, 9]}, "prime_ids"),
        ({"temperature": -1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"stop_id": 3}, "stop_id"),
        ({"stop_id": 1.0}, "stop_id"),
        ({"num_samples": 0}, "num_samples"),
        ({"length": -1}, "length"),
    ],
)
def test_bad_sampling_arguments_name_the_argument(kwargs, words):
    run = {"length": 3, **kwargs}
    with pytest.raises(ArgumentError, match=words):
        decode.sample(lm(3), **run)


def test_a_non_model_is_refused():
    with pytest.raises(ArgumentError, match="model must offer"):
        decode.sample(object(), length=3)
