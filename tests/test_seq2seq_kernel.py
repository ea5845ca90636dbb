"""The compiled attention decoder (``rnncore._rnncore.decoder_forward`` and
``decoder_backward``) against the float64 reference of the same equations.

float64 must agree to 1e-10 for every cell, attention kind, bias or none, source
lengths and shapes drawn by hypothesis (sizes of 1 and sizes that are not a
multiple of any SIMD width included); float32 to float32 tolerances. Bad input is
a named error, never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import _rnncore, reference
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError

KINDS = ["additive", "general", "dot"]
MODES = ["rnn_tanh", "rnn_relu", "lstm", "gru"]


def make_decoder(mode, kind, T, N, S, E, H, M, A, rng, bias=True, dtype=np.float64):
    """Random arguments of ``decoder_forward`` (``M = H`` for dot, ``A = H`` for general)."""
    G = reference.gate_count(mode)
    weights = {
        "w_ih": rng.uniform(-0.7, 0.7, (G * H, E + M)),  # (G*H, E + M)
        "w_hh": rng.uniform(-0.7, 0.7, (G * H, H)),  # (G*H, H)
    }
    if bias:
        weights["b_ih"] = rng.uniform(-0.5, 0.5, G * H)  # (G*H,)
        weights["b_hh"] = rng.uniform(-0.5, 0.5, G * H)
    if kind == "additive":
        weights["w_query"] = rng.uniform(-1, 1, (A, H))  # (A, H)
        weights["w_key"] = rng.uniform(-1, 1, (A, M))  # (A, M)
        weights["v"] = rng.uniform(-1, 1, A)  # (A,)
    elif kind == "general":
        weights["w_key"] = rng.uniform(-1, 1, (H, M))  # (H, M)
    arrays = {
        "y": rng.standard_normal((T, N, E)),  # (T, N, E)
        "memory": rng.standard_normal((N, S, M)),  # (N, S, M)
        "h0": 0.5 * rng.standard_normal((N, H)),  # (N, H)
        "c0": rng.standard_normal((N, H)) if mode == "lstm" else None,
        "context0": 0.5 * rng.standard_normal((N, M)),  # (N, M)
    }
    cast = {k: None if a is None else a.astype(dtype) for k, a in arrays.items()}
    return cast, {k: a.astype(dtype) for k, a in weights.items()}


def run_both(mode, kind, arrays, weights, lengths, rng, with_state_grads=True):
    """Forward and backward of reference and kernel with the same upstream gradients."""
    results = []
    out_ref = reference.decoder_forward(mode, kind, **arrays, lengths=lengths, weights=weights)
    d_output = rng.standard_normal(out_ref[0].shape)
    d_weights = rng.standard_normal(out_ref[1].shape)
    d_h_n = rng.standard_normal(out_ref[2].shape) if with_state_grads else None
    d_c_n = rng.standard_normal(out_ref[2].shape) if with_state_grads and mode == "lstm" else None
    dtype = arrays["y"].dtype
    for impl in (reference, _rnncore):
        out = impl.decoder_forward(mode, kind, **arrays, lengths=lengths, weights=weights)
        grads = impl.decoder_backward(
            mode,
            kind,
            weights,
            out[4],
            d_output.astype(dtype),
            None if d_h_n is None else d_h_n.astype(dtype),
            None if d_c_n is None else d_c_n.astype(dtype),
            d_weights=d_weights.astype(dtype),
        )
        results.append((out[:4], grads))
    return results


def assert_agree(results, rtol, atol, relative_to_max=False):
    """Every output and gradient agrees; with ``relative_to_max`` the absolute
    tolerance is ``atol`` times the array's largest magnitude (float32 gradients)."""
    (out_ref, grads_ref), (out_rust, grads_rust) = results
    close = np.testing.assert_allclose

    def check(actual, desired, err_msg):
        scale = np.abs(desired).max(initial=1.0) if relative_to_max else 1.0
        close(actual, desired, rtol=rtol, atol=atol * scale, err_msg=err_msg)

    for name, a, b in zip(["output", "weights", "h_n", "c_n"], out_ref, out_rust):
        assert (a is None) == (b is None), name
        if a is not None:
            check(b, a, name)
    assert set(grads_rust) == set(grads_ref)
    for name, a in grads_ref.items():
        b = grads_rust[name]
        assert (a is None) == (b is None), name
        if a is not None:
            check(b, a, f"d{name}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", KINDS)
def test_float64_matches_reference(mode, kind, rng):
    H = 5
    M = H if kind == "dot" else 7
    arrays, weights = make_decoder(mode, kind, 6, 4, 9, 3, H, M, 4, rng)
    lengths = np.array([9, 1, 4, 7])
    assert_agree(run_both(mode, kind, arrays, weights, lengths, rng), 1e-10, 1e-12)


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    kind=st.sampled_from(KINDS),
    T=st.integers(1, 5),
    N=st.integers(1, 5),
    S=st.integers(1, 9),
    E=st.integers(1, 9),
    H=st.integers(1, 17),
    M=st.integers(1, 9),
    A=st.integers(1, 9),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_float64_matches_reference_over_shapes(mode, kind, T, N, S, E, H, M, A, bias, seed):
    rng = np.random.default_rng(seed)
    M = H if kind == "dot" else M
    arrays, weights = make_decoder(mode, kind, T, N, S, E, H, M, A, rng, bias=bias)
    lengths = rng.integers(1, S + 1, N) if seed % 3 else None
    results = run_both(mode, kind, arrays, weights, lengths, rng, with_state_grads=bool(seed % 2))
    assert_agree(results, 1e-10, 1e-12)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("kind", KINDS)
def test_float32_is_close_to_reference(mode, kind, rng):
    H = 16
    M = H if kind == "dot" else 12
    arrays, weights = make_decoder(mode, kind, 7, 5, 11, 8, H, M, 10, rng, dtype=np.float32)
    results = run_both(mode, kind, arrays, weights, np.array([11, 3, 1, 8, 10]), rng)
    assert results[1][0][0].dtype == np.float32
    assert results[1][1]["w_ih"].dtype == np.float32
    assert_agree(results, 0.0, 2e-3, relative_to_max=True)


def test_padded_source_steps_get_exactly_zero_weight_and_gradient(rng):
    arrays, weights = make_decoder("gru", "additive", 3, 2, 6, 2, 4, 3, 5, rng)
    lengths = np.array([6, 2])
    output, attn, _, _, cache = _rnncore.decoder_forward(
        "gru", "additive", **arrays, lengths=lengths, weights=weights
    )
    assert np.all(attn[:, 1, 2:] == 0.0)
    np.testing.assert_allclose(attn.sum(axis=2), 1.0, rtol=1e-14)
    grads = _rnncore.decoder_backward("gru", "additive", weights, cache, np.ones_like(output))
    assert np.all(grads["memory"][1, 2:] == 0.0)


def base_call(rng, dtype=np.float64):
    arrays, weights = make_decoder("lstm", "additive", 2, 2, 3, 2, 3, 4, 2, rng, dtype=dtype)
    return arrays, weights


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"mode": "transformer"}, ArgumentError, "mode"),
        ({"attention": "cosine"}, ArgumentError, "attention"),
        ({"lengths": np.array([0, 3])}, ArgumentError, "lengths"),
        ({"lengths": np.array([4, 3])}, ArgumentError, "lengths"),
        ({"lengths": np.array([1, 2, 3])}, ShapeError, "lengths"),
        ({"memory": np.zeros((3, 3, 4))}, ShapeError, "memory"),
        ({"h0": np.zeros((2, 4))}, ShapeError, "h0"),
        ({"c0": None}, ArgumentError, "c0"),
        ({"y": np.zeros((2, 2, 2), dtype=np.float32)}, DTypeError, "dtype"),
        ({"y": np.zeros((2, 2), dtype=np.float64)}, ShapeError, "y"),
        ({"w_ih": np.zeros((12, 5))}, ShapeError, "w_ih"),
        ({"w_key": np.zeros((3, 4))}, ShapeError, "w_key"),
        ({"v": None}, ArgumentError, "v"),
        ({"w_hh": np.full((12, 3), np.nan)}, NonFiniteError, "w_hh"),
        ({"memory": np.full((2, 3, 4), np.inf)}, NonFiniteError, "memory"),
        ({"weights": {"w_ih": None, "bogus": 1}}, ArgumentError, "bogus"),
    ],
)
def test_bad_arguments_are_named_errors(change, error, name, rng):
    arrays, weights = base_call(rng)
    call = {"mode": "lstm", "attention": "additive", **arrays, "lengths": None}
    weights = dict(weights)
    for key, value in change.items():
        if key in weights and key not in call:
            if value is None:
                del weights[key]
            else:
                weights[key] = value
        elif key == "weights":
            weights.update(value)
        else:
            call[key] = value
    with pytest.raises(error, match=name):
        _rnncore.decoder_forward(**call, weights=weights)


def test_backward_checks_its_cache_and_gradients(rng):
    arrays, weights = base_call(rng)
    output, _, _, _, cache = _rnncore.decoder_forward(
        "lstm", "additive", **arrays, lengths=None, weights=weights
    )
    d = np.ones_like(output)
    with pytest.raises(DTypeError, match="cache"):
        _rnncore.decoder_backward("lstm", "additive", weights, {"gates": d}, d)
    with pytest.raises(ArgumentError, match="cache"):
        _rnncore.decoder_backward("gru", "additive", weights, cache, d)
    with pytest.raises(ShapeError, match="d_output"):
        _rnncore.decoder_backward("lstm", "additive", weights, cache, d[:1])
    with pytest.raises(ShapeError, match="w_ih"):
        _rnncore.decoder_backward("lstm", "additive", {**weights, "w_ih": d}, cache, d)
    with pytest.raises(NonFiniteError, match="d_output"):
        _rnncore.decoder_backward("lstm", "additive", weights, cache, d * np.nan)


@pytest.mark.parametrize(
    "mode, kind, N, S, H, M, A",
    [
        ("lstm", "additive", 9, 8, 33, 20, 17),
        # H >= 256 and N * S * (A + M) >= 2^16: each step's products and
        # attention rows, and the products after the loop, are shared among
        # the threads.
        ("lstm", "additive", 21, 30, 256, 64, 64),
        ("gru", "general", 21, 16, 256, 20, 256),
        ("rnn_tanh", "dot", 21, 16, 256, 256, 256),
    ],
)
def test_same_inputs_same_bits_at_any_thread_count(rng, mode, kind, N, S, H, M, A):
    import rnncore

    arrays, weights = make_decoder(mode, kind, 5, N, S, 6, H, M, A, rng)
    runs = []
    for threads in (1, 2, 3):
        rnncore.set_num_threads(threads)
        out = _rnncore.decoder_forward(mode, kind, **arrays, lengths=None, weights=weights)
        grads = _rnncore.decoder_backward(mode, kind, weights, out[-1], out[0])
        runs.append((out[0], out[1], *(grads[k] for k in sorted(grads))))
    rnncore.set_num_threads(None)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_padded_source_steps_cannot_reach_the_gradients(rng):
    # The backward recomputes e = tanh(w_query h + k) rather than keep it. At a
    # padded step, where the forward computed no e, tanh(inf - inf) must not
    # turn the zero weight into NaN gradients: the padded memory rows below
    # make their keys -inf while the queries' projections are +inf.
    T, N, S, E, H, M, A = 3, 2, 4, 3, 5, 6, 4
    arrays, weights = make_decoder("lstm", "additive", T, N, S, E, H, M, A, rng)
    weights["w_ih"][:] = 0.0
    weights["w_hh"][:] = 0.0
    weights["b_ih"][:] = 1.0  # every gate and g positive, so h > 0
    weights["b_hh"][:] = 0.0
    weights["w_query"][:] = 1e308  # w_query h overflows to +inf
    weights["w_key"][:] = -1e10
    arrays["h0"][:] = 0.5
    arrays["c0"][:] = 0.5
    arrays["context0"][:] = 0.0
    lengths = np.array([2, 3])
    memory = np.zeros((N, S, M))
    for b, n_valid in enumerate(lengths):
        memory[b, n_valid:] = 1e300  # keys -inf at the padded steps
    zeroed = np.zeros_like(memory)  # the same source without the padded values
    runs = []
    for mem in (memory, zeroed):
        out = _rnncore.decoder_forward(
            "lstm", "additive", **{**arrays, "memory": mem}, lengths=lengths, weights=weights
        )
        d_output = np.ones_like(out[0])
        grads = _rnncore.decoder_backward("lstm", "additive", weights, out[-1], d_output)
        runs.append((out[0], out[1], grads))
    for name, grad in runs[0][2].items():
        if grad is None:
            continue
        if name == "memory":  # its padded rows see the padded values; the rest must not
            for b, n_valid in enumerate(lengths):
                np.testing.assert_array_equal(grad[b, :n_valid], runs[1][2][name][b, :n_valid])
            continue
        assert np.isfinite(grad).all(), name
        np.testing.assert_array_equal(grad, runs[1][2][name], err_msg=name)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
