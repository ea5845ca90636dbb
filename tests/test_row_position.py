"""A row's result does not depend on its position in the batch: permuting the
sequences of a batch permutes the outputs, final states and input gradients
bitwise, on every path the kernels take (batch shards, panels for a few rows,
the packed GEMM for many, steps split across threads for large H)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import nn

LAYERS = {
    "lstm": lambda D, H: nn.LSTM(D, H, seed=3),
    "gru": lambda D, H: nn.GRU(D, H, seed=3),
    "rnn_tanh": lambda D, H: nn.RNN(D, H, seed=3),
    "lstm_peephole": lambda D, H: nn.LSTM(D, H, peephole=True, seed=3),
}


def _run(layer, x, lengths, d_out):
    out, hx = layer(x, lengths=lengths)
    dx, dhx = layer.backward(d_out)
    layer.zero_grad()
    h_n = hx[0] if isinstance(hx, tuple) else hx
    dh0 = dhx[0] if isinstance(dhx, tuple) else dhx
    return out, h_n, dx, dh0


@settings(max_examples=12, deadline=None)
@given(
    cell=st.sampled_from(sorted(LAYERS)),
    N=st.sampled_from([2, 5, 17, 33, 40]),
    H=st.sampled_from([3, 16, 260]),
    seed=st.integers(0, 2**16),
)
def test_permuting_the_batch_permutes_every_result_bitwise(cell, N, H, seed):
    rng = np.random.default_rng(seed)
    T, D = 4, 5
    layer = LAYERS[cell](D, H)
    x = rng.standard_normal((T, N, D), dtype=np.float32)
    lengths = rng.integers(1, T + 1, N)
    d_out = rng.standard_normal((T, N, H), dtype=np.float32)
    perm = rng.permutation(N)
    base = _run(layer, x, lengths, d_out)
    moved = _run(layer, x[:, perm], lengths[perm], d_out[:, perm])
    for name, a, b in zip(("output", "h_n", "dx", "dh0"), base, moved):
        np.testing.assert_array_equal(a[:, perm], b, err_msg=f"{cell} N={N} H={H}: {name}")


@pytest.mark.parametrize("N", [3, 40])
def test_a_row_repeated_gives_the_same_bits_in_every_place(N, rng):
    """The same sequence in every row of a batch gives the same bits in every row."""
    layer = nn.LSTM(6, 260, seed=1)
    x = np.repeat(rng.standard_normal((5, 1, 6), dtype=np.float32), N, axis=1)
    out, (h_n, _) = layer(x)
    assert all(np.array_equal(out[:, 0], out[:, r]) for r in range(N))
    assert all(np.array_equal(h_n[0, 0], h_n[0, r]) for r in range(N))
