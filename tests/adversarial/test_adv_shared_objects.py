"""Concurrency probes: one layer or model used from two threads at once.

Forward and backward of one object are serialised by its lock, and a
backward whose forward ran in another thread raises :class:`StateError`:
every ``dx`` returned is the right one, never another thread's.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

from rnncore import nn
from rnncore.errors import StateError
from rnncore.models import CharLM, LMConfig

ROUNDS = 40


def expected_dx(layer, xs, d):
    """Each input's dx, one thread, one call after the other."""
    out = []
    for x in xs:
        layer(x)
        dx, _ = layer.backward(d)
        out.append(dx.copy())
    return out


@pytest.mark.parametrize("make", [nn.LSTM, nn.GRU, nn.RNN], ids=["lstm", "gru", "rnn"])
def test_two_threads_on_one_layer_get_their_own_gradient_or_an_error(make):
    layer = make(6, 64, num_layers=2, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((40, 16, 6)) for _ in range(2)]
    d = rng.standard_normal((40, 16, 64))
    want = expected_dx(layer, xs, d)
    results: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def work(k):
        start.wait()
        for _ in range(ROUNDS):
            try:
                layer(xs[k])
                dx, _ = layer.backward(d)
            except StateError:
                results[k].append("refused")
                continue
            results[k].append("right" if np.array_equal(dx, want[k]) else "WRONG")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert all(r == "right" or r == "refused" for rs in results for r in rs), results
    assert sum(r == "right" for rs in results for r in rs) > 0  # it is not refusing everything


def test_backward_of_another_threads_forward_is_refused():
    """The interleaving that gave a wrong dx, made certain: this thread's forward,
    then another thread's, then this thread's backward."""
    layer = nn.LSTM(3, 4, dtype="float64", seed=0)
    mine, theirs = np.ones((5, 2, 3)), np.full((5, 2, 3), -2.0)
    layer(mine)
    t = threading.Thread(target=lambda: layer(theirs))
    t.start()
    t.join()
    with pytest.raises(StateError, match="another thread"):
        layer.backward(np.ones((5, 2, 4)))
    y, _ = layer(mine)  # a forward in this thread makes it usable here again
    layer.backward(np.ones_like(y))


def test_a_model_from_two_threads():
    model = CharLM(LMConfig(vocab_size=9, hidden_size=16, num_layers=2, seed=0, dtype="float64"))
    rng = np.random.default_rng(1)
    data = [(rng.integers(0, 9, (4, 10)), rng.integers(0, 9, (4, 10))) for _ in range(2)]
    want = []
    for x, y in data:
        model.zero_grad()
        model.loss(x, y)
        model.backward()
        want.append({k: g.copy() for k, g in model.grads.items()})
    outcomes = []
    lock = threading.Lock()  # the test's own: one thread's grads read at a time

    def work(k):
        x, y = data[k]
        for _ in range(15):
            with lock:
                model.zero_grad()
                model.loss(x, y)
                try:
                    model.backward()
                except StateError:
                    outcomes.append("refused")
                    continue
                same = all(np.array_equal(model.grads[n], want[k][n]) for n in want[k])
                outcomes.append("right" if same else "WRONG")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes) <= {"right", "refused"}, outcomes


def test_a_new_thread_with_a_reused_ident_is_still_another_thread():
    """Thread identifiers are reused once a thread ends; the check is not fooled."""
    layer = nn.LSTM(3, 4, dtype="float64", seed=0)
    x = np.ones((5, 2, 3))
    seen = []

    def forward_only():
        seen.append(threading.get_ident())
        layer(x)

    def backward_only():
        seen.append(threading.get_ident())
        try:
            layer.backward(np.ones((5, 2, 4)))
            seen.append("returned")
        except StateError:
            seen.append("refused")

    for target in (forward_only, backward_only):
        t = threading.Thread(target=target)
        t.start()
        t.join()
    assert seen[-1] == "refused", seen  # (whether or not the ident was reused)
