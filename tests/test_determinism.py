"""Same seed, same numbers, at any thread count."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import rnncore
from rnncore import nn
from rnncore.errors import ArgumentError

LAYERS = {
    "lstm": nn.LSTM,
    "gru": nn.GRU,
    "gru_reset_before": functools.partial(nn.GRU, reset_after=False),
    "lstm_cifg": functools.partial(nn.LSTM, cifg=True),
    "lstm_peephole": functools.partial(nn.LSTM, peephole=True),
    "rnn": nn.RNN,
}


def run(cls, threads: int, dtype, hidden: int = 12):
    rnncore.set_num_threads(threads)
    try:
        layer = cls(7, hidden, num_layers=2, bidirectional=True, dtype=dtype, seed=3)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((9, 37, 7)).astype(dtype)  # N = 37: several batch shards
        lengths = rng.integers(1, 10, size=37)
        out, _ = layer(x, lengths=lengths)
        dx, _ = layer.backward(rng.standard_normal(out.shape).astype(dtype))
        return [out, dx, *(layer.grads[k] for k in sorted(layer.grads))]
    finally:
        rnncore.set_num_threads(None)


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hidden", [12, 256])  # batch shards; steps split across threads
def test_bitwise_equal_at_1_2_and_4_threads(cell, dtype, hidden):
    one = run(LAYERS[cell], 1, dtype, hidden)
    for threads in (2, 4):
        for a, b in zip(one, run(LAYERS[cell], threads, dtype, hidden)):
            np.testing.assert_array_equal(a, b)


def test_thread_count_api():
    rnncore.set_num_threads(3)
    assert rnncore.get_num_threads() == 3
    rnncore.set_num_threads(None)
    assert rnncore.get_num_threads() >= 1
    with pytest.raises(ArgumentError, match="n"):
        rnncore.set_num_threads(0)
    assert rnncore.simd_level() in {"scalar", "avx2+fma", "avx512"}
