"""Tests of the attention and attention-decoder reference (:mod:`rnncore.reference`).

1. Every gradient of :func:`reference.attention_backward` and
   :func:`reference.decoder_backward` against central finite differences of
   ``sum(R * outputs)``, for every attention kind and cell mode, with source lengths.
2. Masks: padded source steps get a weight of exactly 0, and what the memory holds
   there changes nothing; each sequence of a batch behaves as if run alone on its
   own source length.
3. Shapes drawn by hypothesis (sizes of 1 included), and bad shapes raise named
   errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import reference
from rnncore.errors import ArgumentError, ShapeError

KINDS = ["additive", "general", "dot"]
MODES = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def attention_weights(kind, Q, M, A, rng):
    """Random weights of one attention kind, by name (``A = Q`` for general)."""
    if kind == "additive":
        return {
            "w_query": rng.uniform(-1, 1, (A, Q)),  # (A, Q)
            "w_key": rng.uniform(-1, 1, (A, M)),  # (A, M)
            "v": rng.uniform(-1, 1, A),  # (A,)
        }
    if kind == "general":
        return {"w_key": rng.uniform(-1, 1, (Q, M))}  # (Q, M)
    return {}


def decoder_weights(mode, kind, E, H, M, A, rng, bias=True):
    """Random weights of an attention decoder, by name."""
    G = reference.gate_count(mode)
    weights = {
        "w_ih": rng.uniform(-0.7, 0.7, (G * H, E + M)),  # (G*H, E + M)
        "w_hh": rng.uniform(-0.7, 0.7, (G * H, H)),  # (G*H, H)
    }
    if bias:
        weights["b_ih"] = rng.uniform(-0.5, 0.5, G * H)  # (G*H,)
        weights["b_hh"] = rng.uniform(-0.5, 0.5, G * H)  # (G*H,)
    weights.update(attention_weights(kind, H, M, A, rng))
    return weights


def relative_error(analytic, numeric):
    """Largest difference relative to the largest magnitude (floored at 1e-3)."""
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0), 1e-3)
    return np.abs(analytic - numeric).max(initial=0) / scale


@pytest.mark.parametrize("kind", KINDS)
def test_attention_gradients_match_finite_differences(kind, rng):
    T, N, S, Q, A = 3, 3, 5, 4, 3
    M = Q if kind == "dot" else 2
    query = rng.standard_normal((T, N, Q))  # (T, N, Q)
    memory = rng.standard_normal((N, S, M))  # (N, S, M)
    lengths = np.array([5, 2, 1])
    weights = attention_weights(kind, Q, M, A, rng)
    context, attn, cache = reference.attention_forward(kind, query, memory, lengths, **weights)
    r_context = rng.standard_normal(context.shape)  # (T, N, M)
    r_weights = rng.standard_normal(attn.shape)  # (T, N, S)

    def loss():
        context, attn, _ = reference.attention_forward(kind, query, memory, lengths, **weights)
        return np.sum(r_context * context) + np.sum(r_weights * attn)

    dquery, dmemory, dw_query, dw_key, dv = reference.attention_backward(
        kind, memory, cache=cache, d_context=r_context, d_weights=r_weights, **_full(weights)
    )
    analytic = {"query": dquery, "memory": dmemory, "w_query": dw_query, "w_key": dw_key, "v": dv}
    arrays = {"query": query, "memory": memory, **weights}
    for name, array in arrays.items():
        error = relative_error(analytic[name], numeric_gradient(loss, array))
        assert error < 1e-7, (name, error)
    for name in set(analytic) - set(arrays):
        assert analytic[name] is None, name


def _full(weights):
    """The attention weights with None for those a kind does not have."""
    return {name: weights.get(name) for name in ("w_query", "w_key", "v")}


@pytest.mark.parametrize("kind", KINDS)
def test_padded_source_steps_get_zero_weight_and_change_nothing(kind, rng):
    T, N, S, Q = 2, 3, 6, 4
    query = rng.standard_normal((T, N, Q))
    memory = rng.standard_normal((N, S, Q))
    lengths = np.array([6, 3, 1])
    weights = attention_weights(kind, Q, Q, 5, rng)
    context, attn, _ = reference.attention_forward(kind, query, memory, lengths, **weights)
    padded = np.arange(S)[None, :] >= lengths[:, None]  # (N, S)
    assert np.all(attn[:, padded] == 0.0)
    assert np.all(attn[:, ~padded] > 0.0)
    np.testing.assert_allclose(attn.sum(axis=2), 1.0, rtol=1e-14)
    memory[padded] = 1e6 * rng.standard_normal((padded.sum(), Q))
    context2, attn2, _ = reference.attention_forward(kind, query, memory, lengths, **weights)
    np.testing.assert_array_equal(attn2, attn)
    np.testing.assert_array_equal(context2, context)


def test_dot_attention_is_softmax_of_inner_products(rng):
    query = rng.standard_normal((1, 2, 3))
    memory = rng.standard_normal((2, 4, 3))
    context, attn, _ = reference.attention_forward("dot", query, memory)
    scores = np.einsum("nsm,nm->ns", memory, query[0])
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(attn[0], expected, rtol=1e-13)
    np.testing.assert_allclose(context[0], np.einsum("ns,nsm->nm", expected, memory), rtol=1e-13)


def run_decoder(mode, kind, arrays, lengths, weights):
    c0 = arrays.get("c0") if mode == "lstm" else None
    return reference.decoder_forward(
        mode,
        kind,
        arrays["y"],
        arrays["memory"],
        lengths,
        arrays["h0"],
        c0,
        weights,
        context0=arrays.get("context0"),
    )


def decoder_arrays(mode, T, N, S, E, H, M, rng):
    arrays = {
        "y": rng.standard_normal((T, N, E)),  # (T, N, E)
        "memory": rng.standard_normal((N, S, M)),  # (N, S, M)
        "h0": 0.5 * rng.standard_normal((N, H)),  # (N, H)
        "context0": 0.5 * rng.standard_normal((N, M)),  # (N, M)
    }
    if mode == "lstm":
        arrays["c0"] = rng.standard_normal((N, H))  # (N, H)
    return arrays


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_decoder_gradients_match_finite_differences(mode, kind, rng):
    T, N, S, E, H, A = 3, 2, 4, 2, 3, 2
    M = H if kind == "dot" else 2
    arrays = decoder_arrays(mode, T, N, S, E, H, M, rng)
    weights = decoder_weights(mode, kind, E, H, M, A, rng)
    lengths = np.array([4, 2])
    output, attn, h_n, c_n, cache = run_decoder(mode, kind, arrays, lengths, weights)
    r0, r1, r3 = (rng.standard_normal(a.shape) for a in (output, h_n, attn))
    r2 = None if c_n is None else rng.standard_normal(c_n.shape)

    def loss():
        output, attn, h_n, c_n, _ = run_decoder(mode, kind, arrays, lengths, weights)
        total = np.sum(r0 * output) + np.sum(r1 * h_n) + np.sum(r3 * attn)
        return total if c_n is None else total + np.sum(r2 * c_n)

    grads = reference.decoder_backward(mode, kind, weights, cache, r0, r1, r2, d_weights=r3)
    for name, array in {**arrays, **weights}.items():
        error = relative_error(grads[name], numeric_gradient(loss, array))
        assert error < 1e-6, (name, error)
    assert (grads["c0"] is None) == (mode != "lstm")


@pytest.mark.parametrize("kind", KINDS)
def test_decoder_batch_equals_each_sequence_alone(kind, rng):
    mode, T, N, S, E, H = "lstm", 4, 3, 5, 2, 3
    M = H if kind == "dot" else 4
    arrays = decoder_arrays(mode, T, N, S, E, H, M, rng)
    weights = decoder_weights(mode, kind, E, H, M, 3, rng)
    lengths = np.array([5, 1, 3])
    output, attn, h_n, c_n, _ = run_decoder(mode, kind, arrays, lengths, weights)
    for b, length in enumerate(lengths):
        alone = {
            "y": arrays["y"][:, b : b + 1],
            "memory": arrays["memory"][b : b + 1, :length],
            "h0": arrays["h0"][b : b + 1],
            "c0": arrays["c0"][b : b + 1],
            "context0": arrays["context0"][b : b + 1],
        }
        out_b, attn_b, h_b, c_b, _ = run_decoder(mode, kind, alone, None, weights)
        np.testing.assert_allclose(output[:, b : b + 1], out_b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(attn[:, b : b + 1, :length], attn_b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h_n[b : b + 1], h_b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c_n[b : b + 1], c_b, rtol=1e-12, atol=1e-14)


def test_decoder_output_is_state_and_context(rng):
    mode, kind, T, N, S, E, H, M = "gru", "additive", 3, 2, 4, 2, 3, 5
    arrays = decoder_arrays(mode, T, N, S, E, H, M, rng)
    weights = decoder_weights(mode, kind, E, H, M, 4, rng)
    output, attn, h_n, _, _ = run_decoder(mode, kind, arrays, None, weights)
    np.testing.assert_array_equal(output[-1, :, :H], h_n)
    context = np.einsum("tns,nsm->tnm", attn, arrays["memory"])  # (T, N, M)
    np.testing.assert_allclose(output[:, :, H:], context, rtol=1e-13, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    kind=st.sampled_from(KINDS),
    T=st.integers(1, 3),
    N=st.integers(1, 3),
    S=st.integers(1, 4),
    E=st.integers(1, 3),
    H=st.integers(1, 3),
    M=st.integers(1, 3),
    A=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_decoder_gradients_over_shapes(mode, kind, T, N, S, E, H, M, A, seed):
    rng = np.random.default_rng(seed)
    M = H if kind == "dot" else M
    arrays = decoder_arrays(mode, T, N, S, E, H, M, rng)
    weights = decoder_weights(mode, kind, E, H, M, A, rng, bias=bool(seed % 2))
    lengths = rng.integers(1, S + 1, N)
    output, *_, cache = run_decoder(mode, kind, arrays, lengths, weights)
    r0 = rng.standard_normal(output.shape)

    def loss():
        return np.sum(r0 * run_decoder(mode, kind, arrays, lengths, weights)[0])

    grads = reference.decoder_backward(mode, kind, weights, cache, r0)
    attention_names = [name for name in ("w_query", "w_key", "v") if name in weights]
    for name in ["memory", "w_ih", *attention_names]:
        array = arrays[name] if name in arrays else weights[name]
        error = relative_error(grads[name], numeric_gradient(loss, array))
        assert error < 1e-5, (name, error)


@pytest.mark.parametrize(
    ("kind", "change", "error"),
    [
        ("cosine", {}, ArgumentError),
        ("dot", {"M": 3}, ShapeError),
        ("general", {"w_key": np.zeros((2, 2))}, ShapeError),
        ("additive", {"v": None}, ArgumentError),
        ("dot", {"w_key": np.zeros((4, 4))}, ArgumentError),
        ("additive", {"lengths": np.array([0, 2])}, ArgumentError),
        ("additive", {"lengths": np.array([1, 2, 3])}, ShapeError),
    ],
)
def test_bad_attention_arguments_raise_named_errors(kind, change, error, rng):
    M = change.get("M", 4)
    query = rng.standard_normal((1, 2, 4))
    memory = rng.standard_normal((2, 3, M))
    weights = attention_weights(kind if kind in KINDS else "dot", 4, M, 3, rng)
    weights.update({k: v for k, v in change.items() if k in ("w_query", "w_key", "v")})
    with pytest.raises(error):
        reference.attention_forward(kind, query, memory, change.get("lengths"), **weights)


def test_decoder_rejects_mismatched_sizes(rng):
    arrays = decoder_arrays("gru", 2, 2, 3, 2, 3, 4, rng)
    weights = decoder_weights("gru", "additive", 2, 3, 4, 3, rng)
    weights["w_ih"] = weights["w_ih"][:, :-1]  # input feeding needs E + M columns
    with pytest.raises(ShapeError, match="w_ih"):
        run_decoder("gru", "additive", arrays, None, weights)
    arrays["memory"] = arrays["memory"][:1]
    weights = decoder_weights("gru", "additive", 2, 3, 4, 3, rng)
    with pytest.raises(ShapeError, match="memory"):
        run_decoder("gru", "additive", arrays, None, weights)
