"""rnncore.decode.Ensemble.

An ensemble of one model is that model; two identical models are one; the two
averaging modes against hand computation from the members' own steps (members
of different cells, sizes and dtypes); forward against steps; nesting and
weights; decoding through an ensemble; modes; bad ensembles.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import decode
from rnncore.decode import Ensemble
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig

IDS = np.array([[1, 0, 3, 3, 2, 4, 0], [4, 4, 1, 0, 2, 2, 3]])  # (N, T) = (2, 7)


def lm(V=5, cell="lstm", seed=0, scale=2.0, **kw):
    """A tiny language model in eval mode, weights scaled for peaked outputs."""
    kw = {"hidden_size": 5, "num_layers": 2, "dtype": "float64", "seed": seed, **kw}
    model = CharLM(LMConfig(vocab_size=V, cell=cell, **kw))
    model.load_state_dict({k: p * scale for k, p in model.state_dict().items()})
    return model.eval()


def run_steps(model, ids=IDS):
    """``(N, T, V)`` log-probabilities and the final state, one ``step`` per column."""
    state = model.initial_state(ids.shape[0])
    out = []
    for t in range(ids.shape[1]):
        log_probs, state = model.step(ids[:, t], state)
        out.append(np.asarray(log_probs, dtype=np.float64))
    return np.stack(out, axis=1), state


def flat(state):
    """Every array of a nested tuple state, in order."""
    if isinstance(state, tuple):
        return [a for s in state for a in flat(s)]
    return [state]


@pytest.mark.parametrize("mode", ["prob", "logprob"])
def test_an_ensemble_of_one_is_the_model(mode):
    for model in (lm(), lm(cell="gru", seed=3, dtype="float32")):
        want, want_state = run_steps(model)
        got, state = run_steps(Ensemble([model], mode=mode))
        tol = 1e-12 if model.dtype == np.float64 else 1e-6  # float32 rows sum to 1 +- 1e-7
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        assert isinstance(state, tuple) and len(state) == 1
        for a, b in zip(flat(state), flat(want_state)):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["prob", "logprob"])
def test_two_identical_models_are_one(mode):
    want, _ = run_steps(lm(seed=4))
    got, _ = run_steps(Ensemble([lm(seed=4), lm(seed=4)], mode=mode))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_two_modes_by_hand():
    a = lm(cell="lstm", seed=1, hidden_size=6, dtype="float32")
    b = lm(cell="gru", seed=2, hidden_size=4, num_layers=1)
    lp_a, _ = run_steps(a)
    lp_b, _ = run_steps(b)
    mixture = np.log(0.25 * np.exp(lp_a) + 0.75 * np.exp(lp_b))
    z = 0.25 * lp_a + 0.75 * lp_b
    geometric = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    prob, state = run_steps(Ensemble([a, b], mode="prob", weights=[1, 3]))
    logprob, _ = run_steps(Ensemble([a, b], mode="logprob", weights=[2.0, 6.0]))
    np.testing.assert_allclose(prob, mixture, rtol=1e-10)
    np.testing.assert_allclose(logprob, geometric, rtol=1e-10)
    assert not np.allclose(prob, logprob, rtol=1e-3)
    for got in (prob, logprob):
        np.testing.assert_allclose(np.exp(got).sum(axis=-1), 1.0)
    # a mixture lies between its members; the normalised geometric mean need not
    assert np.all(prob >= np.minimum(lp_a, lp_b) - 1e-9)
    assert np.all(prob <= np.maximum(lp_a, lp_b) + 1e-9)
    assert len(state) == 2 and isinstance(state[0], tuple) and not isinstance(state[1], tuple)


def test_forward_equals_steps_and_nesting_reweights():
    members = [lm(seed=5), lm(cell="gru", seed=6, hidden_size=3), lm(cell="rnn_tanh", seed=7)]
    ens = Ensemble(members, mode="prob")
    steps, step_state = run_steps(ens)
    whole, state = ens.forward(IDS, ens.initial_state(2))
    np.testing.assert_allclose(whole, steps, rtol=1e-10, atol=1e-12)
    for x, y in zip(flat(state), flat(step_state)):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)
    nested = Ensemble([Ensemble(members[:2]), members[2]], mode="prob", weights=[2, 1])
    np.testing.assert_allclose(run_steps(nested)[0], steps, rtol=1e-10)
    zero = Ensemble(members, weights=[0, 1, 0])
    np.testing.assert_allclose(run_steps(zero)[0], run_steps(members[1])[0], rtol=1e-10)


def test_decoders_accept_an_ensemble():
    ens = Ensemble([lm(seed=8), lm(cell="gru", seed=9)], mode="logprob")
    ids = [2, 0, 4, 1, 1, 3]
    lp, _ = run_steps(ens, np.array([ids]))
    want = sum(lp[0, t, ids[t + 1]] for t in range(len(ids) - 1))
    assert decode.score(ens, ids).log_prob == pytest.approx(want, rel=1e-10)
    drawn = decode.sample(ens, prime_ids=[1], length=10, num_samples=3, seed=2)
    assert drawn == decode.sample(ens, prime_ids=[1], length=10, num_samples=3, seed=2)
    greedy = decode.greedy(ens, prime_ids=[1], length=6)
    argmax = []
    log_probs, state = ens.step(np.array([1]), ens.initial_state(1))
    for _ in range(6):
        argmax.append(int(np.argmax(log_probs[0])))
        log_probs, state = ens.step(np.array(argmax[-1:]), state)
    assert greedy == argmax


def test_decoding_puts_every_member_in_eval_mode_and_back():
    a, b = lm(seed=10, dropout=0.5), lm(cell="gru", seed=11, dropout=0.5)
    ens = Ensemble([a, b])
    want = decode.greedy(ens, prime_ids=[0, 1], length=20)
    ens.train()
    assert a.training and b.training and ens.training
    assert decode.greedy(ens, prime_ids=[0, 1], length=20) == want
    assert a.training and b.training
    assert not ens.eval().training and not a.training


@pytest.mark.parametrize(
    "models, kwargs, words",
    [
        (lambda: [lm(5), lm(6)], {}, "vocabulary size"),
        (lambda: [], {}, "at least one"),
        (lambda: lm(5), {}, "list of models"),
        (lambda: [lm(5), object()], {}, "model must offer"),
        (lambda: [lm(5)], {"mode": "mean"}, "mode"),
        (lambda: [lm(5), lm(5)], {"weights": [1]}, "weights"),
        (lambda: [lm(5), lm(5)], {"weights": [1, -1]}, "weights"),
        (lambda: [lm(5), lm(5)], {"weights": [0, 0]}, "weights"),
        (lambda: [lm(5), lm(5)], {"weights": [1, float("nan")]}, "weights"),
        (lambda: [lm(5), lm(5)], {"weights": "ab"}, "weights"),
    ],
)
def test_bad_ensembles_are_refused(models, kwargs, words):
    with pytest.raises(ArgumentError, match=words):
        Ensemble(models(), **kwargs)


def test_a_wrong_state_is_refused():
    ens = Ensemble([lm(), lm(seed=1)])
    with pytest.raises(ArgumentError, match="state must be a tuple of 2"):
        ens.step(np.array([0]), ens.initial_state(1)[:1])
    with pytest.raises(ArgumentError, match="ids must lie"):
        ens.step(np.array([5]), ens.initial_state(1))
