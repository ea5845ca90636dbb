"""Scheduled sampling in the attention decoder (``decoder_forward(..., sampling=)``):
the compiled kernel against the float64 reference with the same coin flips, the
reference's gradients against finite differences with the flips fixed, ``p = 0``
bitwise teacher forcing, ``p = 1`` the greedy inputs, the same bits at any thread
count, a row that depends on its own inputs only, and named errors."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from hypothesis import given, settings
from hypothesis import strategies as st
from test_seq2seq_kernel import KINDS, MODES, assert_agree, make_decoder

import rnncore
from rnncore import _rnncore, reference
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError


def make_sampled(mode, kind, T, N, S, E, H, M, A, V, rng, p, seed=7, dtype=np.float64, **kw):
    """Random decoder arguments with ``y = embedding[ids]`` and the sampling dict."""
    arrays, weights = make_decoder(mode, kind, T, N, S, E, H, M, A, rng, dtype=dtype, **kw)
    ids = rng.integers(0, V, (T, N))  # (T, N)
    embedding = rng.standard_normal((V, E)).astype(dtype)  # (V, E)
    arrays["y"] = embedding[ids]  # (T, N, E)
    sampling = {
        "p": p,
        "seed": seed,
        "ids": ids,
        "embedding": embedding,
        "head_weight": 2.0 * rng.standard_normal((V, H + M)).astype(dtype),  # (V, H + M)
        "head_bias": rng.standard_normal(V).astype(dtype),  # (V,)
    }
    return arrays, weights, sampling


def run_both(mode, kind, arrays, weights, sampling, lengths, rng):
    """Forward and backward of reference and kernel; returns the results for
    :func:`assert_agree` and the fed ids of each."""
    out_ref = reference.decoder_forward(
        mode, kind, **arrays, lengths=lengths, weights=weights, sampling=sampling
    )
    d_output = rng.standard_normal(out_ref[0].shape)
    d_weights = rng.standard_normal(out_ref[1].shape)
    d_h_n = rng.standard_normal(out_ref[2].shape)
    d_c_n = d_h_n[::-1].copy() if mode == "lstm" else None
    dtype = arrays["y"].dtype
    results, fed = [], []
    for impl in (reference, _rnncore):
        out = impl.decoder_forward(
            mode, kind, **arrays, lengths=lengths, weights=weights, sampling=sampling
        )
        grads = impl.decoder_backward(
            mode, kind, weights, out[4], d_output.astype(dtype), d_h_n.astype(dtype),
            None if d_c_n is None else d_c_n.astype(dtype), d_weights=d_weights.astype(dtype),
        )  # fmt: skip
        results.append((out[:4], grads))
        fed.append(out[5])
    return results, fed


# ----------------------------------------------------------------- the coin flips


def test_flips_repeat_the_kernel_values():
    # The uniform draws of (seed 42, row 3) at steps 1..3, also asserted of the
    # Rust generator (rust/src/seq2seq/tests.rs): p just above a draw samples, p
    # equal to it does not.
    draws = [0.5461143526913933, 0.1441401747058797, 0.4130817709598591]
    for t, u in enumerate(draws, start=1):
        assert reference.sampling_flips(42, np.nextafter(u, 1.0), 4, 4)[t, 3]
        assert not reference.sampling_flips(42, u, 4, 4)[t, 3]
    assert reference.sampling_flips(2**64 - 1, 0.6640231223502574, 2, 2)[1, 1]


def test_flips_have_rate_p_and_do_not_depend_on_the_batch():
    flips = reference.sampling_flips(3, 0.3, 200, 50)  # (T, N)
    assert not flips[0].any()
    assert abs(flips[1:].mean() - 0.3) < 0.02
    np.testing.assert_array_equal(reference.sampling_flips(3, 0.3, 200, 7), flips[:, :7])
    np.testing.assert_array_equal(reference.sampling_flips(3, 0.3, 20, 50), flips[:20])
    assert not reference.sampling_flips(3, 0.0, 9, 9).any()
    assert reference.sampling_flips(3, 1.0, 9, 9)[1:].all()
    assert (
        reference.sampling_flips(4, 0.5, 50, 9) != reference.sampling_flips(3, 0.5, 50, 9)
    ).any()


# ----------------------------------------------------------------- kernel vs reference


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    kind=st.sampled_from(KINDS),
    T=st.integers(1, 5),
    N=st.integers(1, 5),
    S=st.integers(1, 7),
    E=st.integers(1, 9),
    H=st.integers(1, 17),
    M=st.integers(1, 9),
    A=st.integers(1, 9),
    V=st.integers(1, 9),
    p=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    bias=st.booleans(),
    head_bias=st.booleans(),
    seed=st.integers(0, 2**64 - 1),
)
def test_float64_sampled_matches_reference_over_shapes(
    mode, kind, T, N, S, E, H, M, A, V, p, bias, head_bias, seed
):
    rng = np.random.default_rng(seed % 2**32)
    M = H if kind == "dot" else M
    arrays, weights, sampling = make_sampled(
        mode, kind, T, N, S, E, H, M, A, V, rng, p, seed=seed, bias=bias
    )
    if not head_bias:
        sampling["head_bias"] = None
    lengths = rng.integers(1, S + 1, N) if seed % 3 else None
    results, (fed_ref, fed_rust) = run_both(mode, kind, arrays, weights, sampling, lengths, rng)
    assert fed_rust.dtype == np.int64 and fed_rust.shape == (T, N)
    np.testing.assert_array_equal(fed_rust, fed_ref)
    np.testing.assert_array_equal(fed_rust[0], sampling["ids"][0])
    assert_agree(results, 1e-10, 1e-12)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
@pytest.mark.parametrize("kind", KINDS)
def test_float32_sampled_is_close_to_reference(mode, kind, rng):
    H = 16
    M = H if kind == "dot" else 12
    arrays, weights, sampling = make_sampled(
        mode, kind, 7, 5, 11, 8, H, M, 10, 9, rng, 0.5, dtype=np.float32
    )
    lengths = np.array([11, 3, 1, 8, 10])
    results, (fed_ref, fed_rust) = run_both(mode, kind, arrays, weights, sampling, lengths, rng)
    np.testing.assert_array_equal(fed_rust, fed_ref)
    assert (fed_rust != sampling["ids"]).any(), "some rows are fed their prediction"
    assert results[1][1]["w_ih"].dtype == np.float32
    assert_agree(results, 0.0, 2e-3, relative_to_max=True)


@pytest.mark.parametrize(
    ("mode", "kind"), [("lstm", "additive"), ("gru", "general"), ("rnn_tanh", "dot")]
)
def test_reference_sampled_gradients_match_finite_differences(mode, kind, rng):
    # With the seed fixed the flips are fixed and the argmax is locally constant:
    # the gradient of the table is dy scattered into the rows actually fed, and the
    # head gets none through the choice.
    H = 3
    M = H if kind == "dot" else 2
    arrays, weights, sampling = make_sampled(mode, kind, 4, 3, 3, 2, H, M, 2, 5, rng, 0.6)
    lengths = np.array([3, 1, 2])
    table, ids = sampling["embedding"], sampling["ids"]
    out = reference.decoder_forward(
        mode, kind, **arrays, lengths=lengths, weights=weights, sampling=sampling
    )
    fed = out[5]
    assert (fed != ids).any()
    r_out, r_w = rng.standard_normal(out[0].shape), rng.standard_normal(out[1].shape)
    r_h = rng.standard_normal(out[2].shape)

    def loss():
        args = {**arrays, "y": table[ids]}
        o = reference.decoder_forward(
            mode, kind, **args, lengths=lengths, weights=weights, sampling=sampling
        )
        np.testing.assert_array_equal(o[5], fed)
        return np.sum(r_out * o[0]) + np.sum(r_w * o[1]) + np.sum(r_h * o[2])

    grads = reference.decoder_backward(mode, kind, weights, out[4], r_out, r_h, d_weights=r_w)
    d_table = np.zeros_like(table)
    np.add.at(d_table, fed.reshape(-1), grads["y"].reshape(-1, table.shape[1]))
    np.testing.assert_allclose(d_table, numeric_gradient(loss, table), atol=1e-7)
    for name, g in grads.items():
        array = weights.get(name, arrays.get(name))
        if g is not None and name != "y":
            np.testing.assert_allclose(g, numeric_gradient(loss, array), atol=1e-7, err_msg=name)
    np.testing.assert_allclose(numeric_gradient(loss, sampling["head_weight"]), 0.0, atol=1e-9)


# ----------------------------------------------------------------- p = 0, p = 1


def test_p_zero_is_teacher_forcing_bitwise(rng):
    arrays, weights, sampling = make_sampled("lstm", "additive", 6, 5, 7, 4, 9, 6, 5, 8, rng, 0.0)
    teacher = _rnncore.decoder_forward("lstm", "additive", **arrays, lengths=None, weights=weights)
    sampled = _rnncore.decoder_forward(
        "lstm", "additive", **arrays, lengths=None, weights=weights, sampling=sampling
    )
    np.testing.assert_array_equal(sampled[5], sampling["ids"])
    for a, b in zip(teacher[:4], sampled[:4]):
        np.testing.assert_array_equal(a, b)
    d = rng.standard_normal(teacher[0].shape)
    g_teacher = _rnncore.decoder_backward("lstm", "additive", weights, teacher[4], d)
    g_sampled = _rnncore.decoder_backward("lstm", "additive", weights, sampled[4], d)
    for name, g in g_teacher.items():
        if g is not None:
            np.testing.assert_array_equal(g_sampled[name], g, err_msg=name)


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_p_one_feeds_the_greedy_predictions(mode, rng):
    # The same decoder run one step at a time, each step fed the argmax of the last.
    T, N, H, M, V = 6, 4, 7, 5, 9
    arrays, weights, sampling = make_sampled(mode, "additive", T, N, 5, 3, H, M, 4, V, rng, 1.0)
    out = _rnncore.decoder_forward(
        mode, "additive", **arrays, lengths=None, weights=weights, sampling=sampling
    )
    table, head_w, head_b = sampling["embedding"], sampling["head_weight"], sampling["head_bias"]
    h, c, context = arrays["h0"], arrays["c0"], arrays["context0"]
    prev = sampling["ids"][0]
    for t in range(T):
        step = _rnncore.decoder_forward(
            mode, "additive", table[prev][None], arrays["memory"], None, h, c, weights, context
        )
        np.testing.assert_array_equal(out[5][t], prev)
        np.testing.assert_allclose(out[0][t], step[0][0], rtol=1e-12, atol=1e-13)
        h, c, context = step[2], step[3], step[0][0, :, H:]
        prev = (step[0][0] @ head_w.T + head_b).argmax(axis=1)


# ----------------------------------------------------------------- determinism


def test_same_seed_same_bits_at_any_thread_count(rng):
    arrays, weights, sampling = make_sampled("gru", "general", 5, 9, 8, 6, 33, 20, 33, 11, rng, 0.5)
    runs = []
    try:
        for threads in (1, 2):
            rnncore.set_num_threads(threads)
            out = _rnncore.decoder_forward(
                "gru", "general", **arrays, lengths=None, weights=weights, sampling=sampling
            )
            grads = _rnncore.decoder_backward("gru", "general", weights, out[4], out[0])
            runs.append((out[5], out[0], grads["y"], grads["w_ih"], grads["memory"]))
    finally:
        rnncore.set_num_threads(None)
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    other = _rnncore.decoder_forward(
        "gru", "general", **arrays, lengths=None, weights=weights,
        sampling={**sampling, "seed": 8},
    )  # fmt: skip
    assert (other[5] != runs[0][0]).any(), "another seed, other flips"


def test_a_row_depends_on_its_own_inputs_and_index_only(rng):
    # Row b's flips come from (seed, b): other rows' data and the batch size do not
    # change its choices or its results.
    T, N, S, E, H, M, V = 6, 5, 4, 3, 6, 5, 8
    arrays, weights, sampling = make_sampled("lstm", "additive", T, N, S, E, H, M, 4, V, rng, 0.5)
    lengths = np.array([4, 2, 3, 1, 4])
    full = _rnncore.decoder_forward(
        "lstm", "additive", **arrays, lengths=lengths, weights=weights, sampling=sampling
    )
    # Rows 0..2 alone (a smaller batch) and with rows 3..4 replaced by other data.
    part = {k: None if a is None else a[:, :3] if k == "y" else a[:3] for k, a in arrays.items()}
    small = _rnncore.decoder_forward(
        "lstm", "additive", **part, lengths=lengths[:3], weights=weights,
        sampling={**sampling, "ids": sampling["ids"][:, :3]},
    )  # fmt: skip
    ids = sampling["ids"].copy()
    ids[:, 3:] = rng.integers(0, V, (T, 2))
    changed = {k: None if a is None else a.copy() for k, a in arrays.items()}
    changed["y"] = sampling["embedding"][ids]
    for k in ("memory", "h0", "c0", "context0"):
        changed[k][3:] = rng.standard_normal(changed[k][3:].shape)
    mixed = _rnncore.decoder_forward(
        "lstm", "additive", **changed, lengths=lengths, weights=weights,
        sampling={**sampling, "ids": ids},
    )  # fmt: skip
    assert (full[5] != sampling["ids"]).any()
    for other, rows in ((small, slice(0, 3)), (mixed, slice(0, 3))):
        np.testing.assert_array_equal(other[5][:, :3], full[5][:, rows])
        np.testing.assert_allclose(other[0][:, :3], full[0][:, rows], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(other[1][:, :3], full[1][:, rows], rtol=1e-13, atol=1e-14)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"p": 1.5}, ArgumentError, "p"),
        ({"p": float("nan")}, ArgumentError, "p"),
        ({"p": "half"}, DTypeError, "p"),
        ({"seed": -1}, ArgumentError, "seed"),
        ({"seed": 2**64}, ArgumentError, "seed"),
        ({"ids": np.full((3, 2), 6)}, ArgumentError, "ids"),
        ({"ids": np.zeros((2, 3), dtype=np.int64)}, ShapeError, "ids"),
        ({"ids": np.zeros((3, 2))}, DTypeError, "ids"),
        ({"ids": None}, ArgumentError, "ids"),
        ({"embedding": np.zeros((6, 3))}, ShapeError, "embedding"),
        ({"embedding": np.zeros((6, 2), dtype=np.float32)}, DTypeError, "embedding"),
        ({"embedding": np.full((6, 2), np.inf)}, NonFiniteError, "embedding"),
        ({"head_weight": np.zeros((5, 7))}, ShapeError, "head_weight"),
        ({"head_weight": np.full((6, 7), np.nan)}, NonFiniteError, "head_weight"),
        ({"head_bias": np.zeros(5)}, ShapeError, "head_bias"),
        ({"bogus": 1}, ArgumentError, "bogus"),
    ],
)
def test_bad_sampling_inputs_are_named_errors(change, error, name, rng):
    arrays, weights, sampling = make_sampled("lstm", "additive", 3, 2, 3, 2, 3, 4, 2, 6, rng, 0.5)
    sampling = {**sampling, **change}
    if change.get("ids", 0) is None:
        del sampling["ids"]
    with pytest.raises(error, match=name):
        _rnncore.decoder_forward(
            "lstm", "additive", **arrays, lengths=None, weights=weights, sampling=sampling
        )


def test_y_must_be_the_embedding_of_ids(rng):
    arrays, weights, sampling = make_sampled("gru", "dot", 3, 2, 3, 2, 3, 3, 3, 6, rng, 0.5)
    arrays["y"] = arrays["y"] + 1e-3
    for impl in (_rnncore, reference):
        with pytest.raises(ArgumentError, match="y"):
            impl.decoder_forward(
                "gru", "dot", **arrays, lengths=None, weights=weights, sampling=sampling
            )
    with pytest.raises(DTypeError, match="sampling"):
        _rnncore.decoder_forward(
            "gru", "dot", **arrays, lengths=None, weights=weights, sampling=[1]
        )
