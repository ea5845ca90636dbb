"""``rnncore.nn.AttentionDecoder``: the layer on the compiled kernels against the same
layer on the float64 reference, step-by-step runs against one whole-sequence run,
parameter names, gradients into ``grads`` and named errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import nn, reference
from rnncore.errors import ArgumentError, DTypeError, ShapeError, StateError


def pair(mode, attention, E=3, H=5, M=4, **kwargs):
    """The layer on the compiled kernels and the same weights on the reference."""
    M = H if attention == "dot" else M
    ours = nn.AttentionDecoder(E, H, M, mode, attention, dtype=np.float64, seed=1, **kwargs)
    ref = nn.AttentionDecoder(
        E, H, M, mode, attention, dtype=np.float64, seed=1, backend=reference, **kwargs
    )
    return ours, ref


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("attention", ["additive", "general", "dot"])
def test_layer_matches_reference_backend(mode, attention, rng):
    ours, ref = pair(mode, attention)
    T, N, S = 4, 3, 6
    y = rng.standard_normal((T, N, ours.input_size))
    memory = rng.standard_normal((N, S, ours.memory_size))
    lengths = np.array([6, 2, 4])
    results = []
    d_output = rng.standard_normal((T, N, ours.hidden_size + ours.memory_size))
    for layer in (ours, ref):
        out, weights, _hx, context = layer(y, memory, lengths)
        dy, dmemory, _dhx, dcontext0 = layer.backward(d_output)
        results.append((out, weights, context, dy, dmemory, dcontext0, layer.grads))
    for a, b in zip(results[0][:6], results[1][:6]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for name in ours.grads:
        np.testing.assert_allclose(results[0][6][name], results[1][6][name], rtol=1e-10, atol=1e-12)
    assert np.all(results[0][1][:, 1, 2:] == 0.0)


def test_parameter_names_and_shapes():
    layer = nn.AttentionDecoder(3, 5, 8, "lstm", "additive", attention_size=7)
    shapes = {name: p.shape for name, p in layer.named_parameters()}
    assert shapes == {
        "weight_ih": (20, 11),
        "weight_hh": (20, 5),
        "bias_ih": (20,),
        "bias_hh": (20,),
        "attention_weight_query": (7, 5),
        "attention_weight_key": (7, 8),
        "attention_v": (7,),
    }
    general = nn.AttentionDecoder(3, 5, 8, "gru", "general", bias=False)
    assert {n: p.shape for n, p in general.named_parameters()} == {
        "weight_ih": (15, 11),
        "weight_hh": (15, 5),
        "attention_weight_key": (5, 8),
    }
    assert layer.weight_ih.dtype == np.float32


def test_steps_one_at_a_time_equal_one_call(rng):
    layer = nn.AttentionDecoder(2, 4, 3, "lstm", "additive", dtype=np.float64, seed=0)
    y = rng.standard_normal((5, 2, 2))
    memory = rng.standard_normal((2, 4, 3))
    lengths = np.array([4, 3])
    whole, weights, (h, _c), context = layer(y, memory, lengths)
    hx, ctx = None, None
    for t in range(5):
        out, w_t, hx, ctx = layer(y[t : t + 1], memory, lengths, hx, ctx)
        np.testing.assert_allclose(out[0], whole[t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(w_t[0], weights[t], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hx[0], h, rtol=1e-12)
    np.testing.assert_allclose(ctx, context, rtol=1e-12)


def test_float32_layer_returns_float32(rng):
    layer = nn.AttentionDecoder(2, 4, 3, "gru", "general", seed=0)
    y = rng.standard_normal((3, 2, 2)).astype(np.float32)
    memory = rng.standard_normal((2, 5, 3)).astype(np.float32)
    out, weights, h, context = layer(y, memory)
    assert out.dtype == weights.dtype == h.dtype == context.dtype == np.float32
    dy, dmemory, _dh0, _dcontext0 = layer.backward(np.ones_like(out))
    assert dy.dtype == dmemory.dtype == np.float32
    assert layer.grads["attention_weight_key"].any()


def test_bad_input_raises_named_errors(rng):
    layer = nn.AttentionDecoder(2, 4, 3, "lstm", "additive", dtype=np.float64)
    y = rng.standard_normal((3, 2, 2))
    memory = rng.standard_normal((2, 5, 3))
    with pytest.raises(ShapeError, match="memory"):
        layer(y, memory[:1])
    with pytest.raises(ShapeError, match="memory"):
        layer(y, rng.standard_normal((2, 5, 4)))
    with pytest.raises(ShapeError, match="y"):
        layer(rng.standard_normal((3, 2, 5)), memory)
    with pytest.raises(ArgumentError, match="lengths"):
        layer(y, memory, np.array([6, 1]))
    with pytest.raises(DTypeError, match="y"):
        layer(y.astype(np.float32), memory)
    with pytest.raises(ShapeError, match="context0"):
        layer(y, memory, context0=np.zeros((2, 4)))
    with pytest.raises(StateError):
        nn.AttentionDecoder(2, 4, 3).backward(np.zeros((1, 1, 7), np.float32))
    out, *_ = layer(y, memory)
    with pytest.raises(ShapeError, match="d_output"):
        layer.backward(out[:2])
    with pytest.raises(ShapeError, match="dot"):
        nn.AttentionDecoder(2, 4, 3, attention="dot")
    with pytest.raises(ArgumentError, match="attention"):
        nn.AttentionDecoder(2, 4, 3, attention="cosine")


@pytest.mark.parametrize("attention", ["additive", "general", "dot"])
def test_keys_projected_once_give_the_same_steps(attention, rng):
    """decoder.keys(memory) passed to every step equals projecting in each call,
    on the compiled kernels and on the reference."""
    M = 5 if attention == "dot" else 4
    fast, slow = pair("lstm", attention, M=M)
    y, memory = rng.standard_normal((3, 2, 3)), rng.standard_normal((2, 4, M))
    lengths = np.array([4, 2])
    for layer in (fast, slow):
        keys = layer.keys(memory)
        assert keys.shape == (2, 4, layer.attention_size)
        own = layer(y, memory, lengths)
        given = layer(y, memory, lengths, keys=keys)
        for a, b in zip(own, given):
            for u, v in zip(
                a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)
            ):
                np.testing.assert_array_equal(u, v)
    np.testing.assert_allclose(fast.keys(memory), slow.keys(memory), rtol=1e-12)
    with pytest.raises(ShapeError, match="keys"):
        fast(y, memory, lengths, keys=np.zeros((2, 3, fast.attention_size)))


@pytest.mark.parametrize("N", [5, 40])  # panels for a few rows; the packed GEMM
def test_bitwise_equal_at_1_2_and_4_threads(N, rng):
    import rnncore

    layer = nn.AttentionDecoder(7, 260, 9, "lstm", "additive", seed=2)
    y = rng.standard_normal((4, N, 7), dtype=np.float32)
    memory = rng.standard_normal((N, 6, 9), dtype=np.float32)
    d_out = rng.standard_normal((4, N, 269), dtype=np.float32)
    runs = []
    try:
        for threads in (1, 2, 4):
            rnncore.set_num_threads(threads)
            out, weights, _, _ = layer(y, memory)
            dy, dmemory, _, _ = layer.backward(d_out)
            runs.append([out, weights, dy, dmemory, *(g.copy() for g in layer.grads.values())])
            layer.zero_grad()
    finally:
        rnncore.set_num_threads(None)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prepared_weights_give_the_same_steps(mode, dtype, rng):
    """forward(prepared=decoder.prepare()) step by step equals the plain calls (to
    rounding: the products run over panels instead of the GEMM)."""
    layer = nn.AttentionDecoder(3, 5, 4, mode, "additive", dtype=dtype, seed=1)
    memory = rng.standard_normal((6, 3, 4)).astype(dtype)
    prepared = layer.prepare()
    hx = ctx = None
    hx_p = ctx_p = None
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for _ in range(4):
        y = rng.standard_normal((1, 6, 3)).astype(dtype)
        out, w, hx, ctx = layer(y, memory, None, hx, ctx)
        out_p, w_p, hx_p, ctx_p = layer(y, memory, None, hx_p, ctx_p, prepared=prepared)
        np.testing.assert_allclose(out_p, out, rtol=tol, atol=tol)
        np.testing.assert_allclose(w_p, w, rtol=tol, atol=tol)
    other = nn.AttentionDecoder(3, 5, 4, "gru" if mode != "gru" else "lstm", dtype=dtype)
    with pytest.raises(ArgumentError, match="prepared"):
        other(rng.standard_normal((1, 6, 3)).astype(dtype), memory, prepared=prepared)
    wide = nn.AttentionDecoder(3, 7, 4, mode, dtype=dtype)
    with pytest.raises(ShapeError, match="prepared"):
        wide(rng.standard_normal((1, 6, 3)).astype(dtype), memory, prepared=prepared)
    flip = np.float32 if dtype == np.float64 else np.float64
    same_other_dtype = nn.AttentionDecoder(3, 5, 4, mode, dtype=flip)
    with pytest.raises(DTypeError, match="prepared"):
        same_other_dtype(
            rng.standard_normal((1, 6, 3)).astype(flip), memory.astype(flip), prepared=prepared
        )
    assert nn.AttentionDecoder(3, 5, 4, mode, backend=reference).prepare() is None
