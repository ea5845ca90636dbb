"""Traces of states and gates (``layer.trace``, ``CharLM.trace``).

The compiled kernels' traces against the float64 reference's own per-step
intermediates (the ``step_caches`` of :func:`rnncore.reference.forward`), over
shapes drawn by hypothesis; chunked traces against one pass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import nn, reference
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig

CLASSES = {"rnn_tanh": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def reference_intermediates(mode, x, layer, k, h0, c0):
    """``{name: (T, N, H)}`` of layer ``k`` from the reference's step caches."""
    w = [layer._params.get(f"{n}_l{k}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    out, _, _, cache = reference.forward(mode, x, h0, c0, *w)
    steps = cache["step_caches"]
    res = {"h": out}
    if mode == "lstm":
        res["c"] = np.stack([f * c_prev + i * g for (_, c_prev, i, f, g, _, _) in steps])
        for j, name in enumerate("ifgo"):
            res[name] = np.stack([s[2 + j] for s in steps])
    if mode == "gru":
        for j, name in enumerate("rzn"):
            res[name] = np.stack([s[1 + j] for s in steps])
    return res, out


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(sorted(CLASSES)),
    T=st.integers(1, 9),
    N=st.integers(1, 5),
    D=st.integers(1, 7),
    H=st.integers(1, 19),
    L=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_trace_matches_reference_intermediates(mode, T, N, D, H, L, seed):
    rng = np.random.default_rng(seed)
    layer = CLASSES[mode](D, H, num_layers=L, dtype=np.float64, seed=seed)
    x = rng.standard_normal((T, N, D))
    arrays, _ = layer.trace(x)
    expected_names = {"h"} | ({"c", "i", "f", "g", "o"} if mode == "lstm" else set())
    expected_names |= {"r", "z", "n"} if mode == "gru" else set()
    assert set(arrays) == expected_names
    inp = x
    for k in range(L):
        h0 = np.zeros((N, H))
        c0 = np.zeros((N, H)) if mode == "lstm" else None
        ref, inp = reference_intermediates(mode, inp, layer, k, h0, c0)
        for name, want in ref.items():
            assert arrays[name].shape == (L, T, N, H)
            np.testing.assert_allclose(arrays[name][k], want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", sorted(CLASSES))
def test_trace_float32_and_reference_backend_agree(mode, rng):
    kw = {"num_layers": 2, "bidirectional": True, "seed": 3}
    fast = CLASSES[mode](4, 9, **kw)
    slow = CLASSES[mode](4, 9, **kw, backend=reference)
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    a, h_a = fast.trace(x)
    b, h_b = slow.trace(x)
    assert a["h"].shape == (4, 6, 3, 9) and a["h"].dtype == np.float32
    for got, want in zip(
        h_a if isinstance(h_a, tuple) else (h_a,), h_b if isinstance(h_b, tuple) else (h_b,)
    ):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=2e-4, atol=2e-5)
    out, _ = fast(x)
    np.testing.assert_allclose(out[..., :9], a["h"][2], rtol=0, atol=0)  # forward direction
    np.testing.assert_allclose(out[..., 9:], a["h"][3], rtol=0, atol=0)  # reverse direction


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_tanh"])
def test_lm_trace_in_chunks_equals_one_pass(cell, rng):
    model = CharLM(LMConfig(vocab_size=11, cell=cell, hidden_size=13, num_layers=2, seed=1))
    model.eval()
    ids = rng.integers(0, 11, size=(2, 37))
    whole = model.trace(ids, chunk_size=1000)
    chunked = model.trace(ids, chunk_size=5)
    for name, arr in whole.arrays.items():
        assert arr.shape == (2, 37, 2, 13)
        np.testing.assert_allclose(chunked.arrays[name], arr, rtol=1e-5, atol=1e-6)
    logits, _ = model(ids)  # (N, T, V)
    lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(whole.log_probs, lp.transpose(1, 0, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "layer",
    [
        lambda: nn.GRU(3, 4, reset_after=False),
        lambda: nn.LSTM(3, 4, cifg=True),
        lambda: nn.LSTM(3, 4, peephole=True),
        lambda: nn.MUT3(3, 4),
    ],
)
def test_trace_refuses_cell_variants_it_does_not_cover(layer):
    with pytest.raises(ArgumentError, match="traces cover"):
        layer().trace(np.zeros((2, 1, 3), dtype=np.float32))
