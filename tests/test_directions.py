"""The two directions of a bidirectional layer run side by side on two cores:
the same bits as one after the other, and errors still reach the caller."""

from __future__ import annotations

import numpy as np
import pytest

import rnncore
import rnncore.nn._directions as directions
from rnncore import nn
from rnncore.errors import NonFiniteError


@pytest.fixture
def two_threads(monkeypatch):
    rnncore.set_num_threads(2)
    yield monkeypatch
    rnncore.set_num_threads(None)


def _step(layer, x, lengths):
    out, hx = layer(x, lengths=lengths)
    dx, dhx = layer.backward(np.ones_like(out))
    grads = {k: v.copy() for k, v in layer.grads.items()}
    layer.zero_grad()
    return [out, *hx, dx, *dhx, *grads.values()] if isinstance(hx, tuple) else [
        out, hx, dx, dhx, *grads.values(),
    ]  # fmt: skip


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_side_by_side_is_bitwise_one_after_the_other(cls, two_threads, rng):
    layer = cls(5, 24, num_layers=2, bidirectional=True, seed=0)
    x = rng.standard_normal((6, 9, 5), dtype=np.float32)
    lengths = rng.integers(1, 7, 9)
    two_threads.setattr(directions, "MIN_WORK", 10**18)
    apart = _step(layer, x, lengths)
    calls = []
    real = directions._worker

    def counted():
        calls.append(1)
        return real()

    two_threads.setattr(directions, "MIN_WORK", 0)
    two_threads.setattr(directions, "_worker", counted)
    together = _step(layer, x, lengths)
    assert len(calls) == 4  # two layers, forward and backward
    for a, b in zip(apart, together):
        np.testing.assert_array_equal(a, b)


def test_an_error_in_either_direction_reaches_the_caller(two_threads):
    two_threads.setattr(directions, "MIN_WORK", 0)

    def bad():
        raise NonFiniteError("reverse failed")

    with pytest.raises(NonFiniteError, match="reverse failed"):
        directions.both(lambda: 1, bad, 1, rnncore._native.kernels())
    with pytest.raises(NonFiniteError, match="forward failed"):
        directions.both(lambda: (_ for _ in ()).throw(NonFiniteError("forward failed")),
                        lambda: 2, 1, rnncore._native.kernels())  # fmt: skip
    assert directions.both(lambda: 1, lambda: 2, 1, rnncore._native.kernels()) == (1, 2)


def test_one_thread_or_the_reference_run_one_after_the_other(monkeypatch):
    monkeypatch.setattr(directions, "MIN_WORK", 0)
    monkeypatch.setattr(directions, "_worker", lambda: pytest.fail("no second thread"))
    rnncore.set_num_threads(1)
    try:
        assert directions.both(lambda: 1, lambda: 2, 10**9, rnncore._native.kernels()) == (1, 2)
    finally:
        rnncore.set_num_threads(None)
    assert directions.both(lambda: 1, lambda: 2, 10**9, rnncore.reference) == (1, 2)
