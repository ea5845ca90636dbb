"""rnncore's min-char-rnn set-up against a transcription of Karpathy's min-char-rnn.py.

``loss_fun`` and ``sample`` below are the original's (BSD licence, 2015), with
the globals passed in. Starting from the same weights, rnncore's model
(``CharLM``, ``Adagrad``, ``clip_grad_value_``) must give the same loss (a sum
over the 25 steps), the same clipped gradients, the same parameters after every
Adagrad step and the same hidden state, to float64 rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.models import min_char_rnn
from rnncore.models.min_char_rnn import FROZEN

TEXT = (
    "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. "
    "how vexingly quick daft zebras jump! sphinx of black quartz, judge my vow. "
)
# Adagrad divides a gradient by sqrt(mem + 1e-8) >= 1e-4: at lr 0.1 a rounding
# difference of 1e-13 in a small gradient moves a parameter by up to 1e-10.
PARAM_ATOL = 1e-9
NAMES = {  # min-char-rnn's name -> rnncore's parameter
    "Wxh": "rnn.weight_ih_l0",
    "Whh": "rnn.weight_hh_l0",
    "Why": "head.weight",
    "bh": "rnn.bias_ih_l0",
    "by": "head.bias",
}


def loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by, clip=5):
    """inputs, targets are both list of integers; hprev is Hx1 array of initial hidden state.

    Returns the loss, gradients on model parameters, and last hidden state.
    """
    vocab_size = Why.shape[0]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -clip, clip, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def sample(h, seed_ix, n, Wxh, Whh, Why, bh, by, rng):
    """Sample a sequence of integers from the model; h is memory state, seed_ix the first
    letter. (``np.random.choice`` is ``rng.choice`` here.)"""
    vocab_size = Why.shape[0]
    x = np.zeros((vocab_size, 1))
    x[seed_ix] = 1
    ixes = []
    for _ in range(n):
        h = np.tanh(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        p = np.exp(y) / np.sum(np.exp(y))
        ix = rng.choice(vocab_size, p=p.ravel())
        x = np.zeros((vocab_size, 1))
        x[ix] = 1
        ixes.append(int(ix))
    return ixes


def assert_close(actual, expected, name, atol=0.0):
    """Equal to float64 rounding: relative 1e-10, and 1e-10 of the array's scale."""
    atol = max(atol, 1e-10 * float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=atol, err_msg=name)


def weights_of(setup):
    """The model's parameters as min-char-rnn's arrays (biases as columns)."""
    p = dict(setup.model.named_parameters())
    w = {k: p[v].copy() for k, v in NAMES.items()}
    w["bh"], w["by"] = w["bh"][:, None], w["by"][:, None]
    return w


@pytest.mark.parametrize(
    "hidden_size, clip, steps",
    [(100, 5.0, 4), (20, 0.02, 12)],
    ids=["original", "small_clip"],
)
def test_matches_min_char_rnn_step_for_step(hidden_size, clip, steps):
    """The original set-up is chaotic at lr 0.1: a relative change of 1e-15 in
    Whh (another summation order) grows to ~1e-10 in the parameters after 4 to 5
    steps and 1e-4 after 10, so it is followed for 4 steps. With strong clipping the
    trajectory is tame and is followed for 12 steps, across the wrap-around of the
    text (where min-char-rnn resets hprev)."""
    chars = sorted(set(TEXT))
    data = [chars.index(c) for c in TEXT]
    setup = min_char_rnn(len(chars), hidden_size=hidden_size, clip=clip, seed=3)
    T, lr = setup.seq_length, setup.optimizer.lr
    assert (T, lr, setup.model.config.cell) == (25, 0.1, "rnn_tanh")
    w = weights_of(setup)
    mem = {k: np.zeros_like(v) for k, v in w.items()}
    hprev, h = np.zeros((hidden_size, 1)), setup.initial_state()
    clipped = 0
    p = 0
    for _ in range(steps):
        if p + T + 1 >= len(data):
            p, hprev, h = 0, np.zeros((hidden_size, 1)), setup.initial_state()
        inputs, targets = data[p : p + T], data[p + 1 : p + T + 1]

        loss, dWxh, dWhh, dWhy, dbh, dby, hprev = loss_fun(inputs, targets, hprev, **w, clip=clip)
        grads = {"Wxh": dWxh, "Whh": dWhh, "Why": dWhy, "bh": dbh, "by": dby}
        for k in w:  # min-char-rnn's Adagrad update
            mem[k] += grads[k] * grads[k]
            w[k] += -lr * grads[k] / np.sqrt(mem[k] + 1e-8)
        ours, h = setup.train_step(inputs, targets, h)

        assert ours == pytest.approx(loss, rel=1e-10)
        for k, v in NAMES.items():
            expected = grads[k][:, 0] if k in ("bh", "by") else grads[k]
            assert_close(setup.model.grads[v], expected, k, atol=1e-10)
        got = weights_of(setup)
        for k in w:
            assert_close(got[k], w[k], k, atol=PARAM_ATOL)
        assert_close(h[0, 0], hprev[:, 0], "h")
        assert not setup.model.rnn.bias_hh_l0.any()  # frozen at zero
        clipped += sum(int((np.abs(g) == clip).sum()) for g in grads.values())
        p += T
    assert clipped > 0  # the clipping is exercised

    ours = setup.sample(h, data[0], 40, np.random.default_rng(0))
    theirs = sample(hprev, data[0], 40, **w, rng=np.random.default_rng(0))
    assert ours == theirs


def test_setup():
    setup = min_char_rnn(30, seed=0)
    params = dict(setup.model.named_parameters())
    assert params["rnn.weight_ih_l0"].shape == (100, 30)
    assert params["rnn.weight_ih_l0"].dtype == np.float64
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):
        assert abs(params[name].std() - 0.01) < 0.001  # randn * 0.01
    for name in ("rnn.bias_ih_l0", "rnn.bias_hh_l0", "head.bias"):
        assert not params[name].any()
    assert sorted(setup.optimizer.params) == sorted(set(params) - set(FROZEN))
    assert setup.optimizer.eps_inside_sqrt and setup.optimizer.eps == 1e-8
    assert (setup.seq_length, setup.clip) == (25, 5.0)
