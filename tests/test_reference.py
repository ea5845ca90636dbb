"""Tests of the NumPy reference (:mod:`rnncore.reference`), the oracle of the kernels.

1. Every gradient of :func:`reference.backward` (dx, dh0, dc0, dw_ih, dw_hh, db_ih,
   db_hh, and dw_peep of the peephole LSTM) against central finite differences of the scalar loss
   ``sum(R0 * output) + sum(R1 * h_n) [+ sum(R2 * c_n)]``, for every mode, with and
   without bias, with and without lengths, forward and reverse.
2. Semantics: padded outputs are 0, each sequence of a batch behaves as if run alone
   on its own length, reverse equals forward on the flipped input, single steps
   match PyTorch's equations written out by hand, ``d_output`` at padded steps is
   ignored.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from rnncore import reference
from rnncore.errors import ArgumentError, ShapeError
from rnncore.reference.cells import SQUARE_INPUT, weight_rows

MODES = [
    "rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before", "lstm_cifg", "lstm_peephole",
    "mut1", "mut2", "mut3",
]  # fmt: skip
CELL_STATE = ("lstm", "lstm_cifg", "lstm_peephole")
# The order backward returns them; w_peep (lstm_peephole only) comes last.
GRADIENT_OF = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_peep"]


def make_layer(mode, T, N, D, H, rng, bias=True):
    """Random float64 arguments of :func:`reference.forward`, by name; ``D`` is ``H``
    for mut1 and mut2, which add x itself."""
    D = H if mode in SQUARE_INPUT else D
    IH, HH = weight_rows(mode, H)  # G*H each, fewer for the MUTs
    return {
        "x": rng.standard_normal((T, N, D)),  # (T, N, D)
        "h0": 0.5 * rng.standard_normal((N, H)),  # (N, H)
        "c0": rng.standard_normal((N, H)) if mode in CELL_STATE else None,  # (N, H)
        "w_ih": rng.uniform(-1, 1, (IH, D)),  # (G*H, D)
        "w_hh": rng.uniform(-1, 1, (HH, H)),  # (G*H, H)
        "b_ih": rng.uniform(-1, 1, IH) if bias else None,  # (G*H,)
        "b_hh": rng.uniform(-1, 1, HH) if bias else None,  # (G*H,)
        "w_peep": rng.uniform(-1, 1, 3 * H) if mode == "lstm_peephole" else None,  # (3H,)
    }


def run_forward(mode, layer, lengths=None, reverse=False):
    return reference.forward(mode, **layer, lengths=lengths, reverse=reverse)


def run_backward(mode, layer, lengths, reverse, cache, d_output, d_h_n, d_c_n):
    weights = {k: layer[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_peep")}
    grads = reference.backward(
        mode,
        layer["x"],
        **weights,
        lengths=lengths,
        reverse=reverse,
        cache=cache,
        d_output=d_output,
        d_h_n=d_h_n,
        d_c_n=d_c_n,
    )
    names = GRADIENT_OF if layer["w_peep"] is not None else GRADIENT_OF[:-1]
    return {"w_peep": None, **dict(zip(names, grads, strict=True))}


def relative_error(analytic, numeric):
    """Largest difference relative to the largest magnitude (floored at 1e-3)."""
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0), 1e-3)
    return np.abs(analytic - numeric).max(initial=0) / scale


def gradient_errors(mode, layer, lengths, reverse, rng, run_backward=run_backward):
    """Relative error of each analytic gradient against finite differences."""
    output, h_n, c_n, cache = run_forward(mode, layer, lengths, reverse)
    r0 = rng.standard_normal(output.shape)  # (T, N, H)
    r1 = rng.standard_normal(h_n.shape)  # (N, H)
    r2 = None if c_n is None else rng.standard_normal(c_n.shape)  # (N, H)

    def loss():
        output, h_n, c_n, _ = run_forward(mode, layer, lengths, reverse)
        total = np.sum(r0 * output) + np.sum(r1 * h_n)
        return total if c_n is None else total + np.sum(r2 * c_n)

    analytic = run_backward(mode, layer, lengths, reverse, cache, r0, r1, r2)
    errors = {}
    for name in GRADIENT_OF:
        if layer[name] is None:
            assert analytic[name] is None, f"d{name} should be None"
            continue
        assert analytic[name].shape == layer[name].shape, f"d{name} has the wrong shape"
        assert analytic[name].dtype == np.float64
        errors[name] = relative_error(analytic[name], numeric_gradient(loss, layer[name]))
    return errors


def relu_preactivations(layer, lengths, reverse):
    """``(T, N, H)`` pre-activations of ``rnn_relu`` at active steps (NaN elsewhere),
    one sequence at a time and independently of the reference."""
    x, h0, w_ih, w_hh = layer["x"], layer["h0"], layer["w_ih"], layer["w_hh"]
    T, N, _ = x.shape
    bias = 0.0 if layer["b_ih"] is None else layer["b_ih"] + layer["b_hh"]  # (H,)
    pre = np.full((T, N, w_hh.shape[1]), np.nan)
    for n in range(N):
        length = T if lengths is None else lengths[n]
        h = h0[n]  # (H,)
        for t in reversed(range(length)) if reverse else range(length):
            pre[t, n] = w_ih @ x[t, n] + w_hh @ h + bias
            h = np.maximum(pre[t, n], 0.0)
    return pre


@st.composite
def layer_cases(draw):
    """``(T, N, D, H, lengths or None, seed)`` with every size in 1..5."""
    T, N, D, H = (draw(st.integers(1, 5)) for _ in range(4))
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=N, max_size=N))
    return T, N, D, H, lengths, draw(st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("mode", MODES)
@settings(deadline=None, max_examples=15)
@given(case=layer_cases())
@example(case=(5, 4, 3, 2, [3, 1, 5, 2], 0))  # unsorted, with a length of 1
@example(case=(4, 3, 2, 3, None, 1))
@example(case=(1, 1, 1, 1, [1], 2))
def test_gradients_match_finite_differences(mode, bias, reverse, case):
    T, N, D, H, lengths, seed = case
    rng = np.random.default_rng(seed)
    layer = make_layer(mode, T, N, D, H, rng, bias)
    lengths = None if lengths is None else np.array(lengths)
    if mode == "rnn_relu":  # finite differences are wrong across the kink at 0
        pre = relu_preactivations(layer, lengths, reverse)
        assume(np.nanmin(np.abs(pre)) > 1e-4)
    errors = gradient_errors(mode, layer, lengths, reverse, rng)
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_can_fail():
    """The check above rejects a backward that forgets the gradient of ``h_n``."""
    rng = np.random.default_rng(3)
    layer = make_layer("gru", 3, 2, 2, 3, rng)

    def backward_without_d_h_n(mode, layer, lengths, reverse, cache, d_output, d_h_n, d_c_n):
        return run_backward(mode, layer, lengths, reverse, cache, d_output, None, d_c_n)

    errors = gradient_errors("gru", layer, None, False, rng, backward_without_d_h_n)
    assert min(errors.values()) > 1e-3, errors


# --- semantics --------------------------------------------------------------------------

LENGTHS = np.array([3, 1, 4, 2])  # (N,) unsorted, with a length of 1 and a full one
SHAPE = {"T": 4, "N": 4, "D": 3, "H": 5}


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", MODES)
def test_output_is_zero_at_padded_steps(mode, reverse):
    layer = make_layer(mode, **SHAPE, rng=np.random.default_rng(4))
    output, _, _, _ = run_forward(mode, layer, LENGTHS, reverse)
    for n, length in enumerate(LENGTHS):
        assert np.all(output[length:, n] == 0.0)
        assert np.any(output[:length, n] != 0.0)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", MODES)
def test_each_sequence_matches_running_alone(mode, reverse):
    """With lengths, sequence n gives what it gives alone, truncated to its length."""
    layer = make_layer(mode, **SHAPE, rng=np.random.default_rng(5))
    output, h_n, c_n, _ = run_forward(mode, layer, LENGTHS, reverse)
    for n, length in enumerate(LENGTHS):
        alone = dict(layer, x=layer["x"][:length, n : n + 1], h0=layer["h0"][n : n + 1])
        if mode in CELL_STATE:
            alone["c0"] = layer["c0"][n : n + 1]
        output_n, h_n_n, c_n_n, _ = run_forward(mode, alone, reverse=reverse)
        np.testing.assert_allclose(output[:length, n], output_n[:, 0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(h_n[n], h_n_n[0], rtol=1e-12, atol=1e-14)
        if mode in CELL_STATE:
            np.testing.assert_allclose(c_n[n], c_n_n[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_reverse_equals_forward_on_flipped_input(mode):
    rng = np.random.default_rng(6)
    layer = make_layer(mode, **SHAPE, rng=rng)
    flipped = dict(layer, x=layer["x"][::-1])  # (T, N, D) time-flipped
    full = np.full(SHAPE["N"], SHAPE["T"])  # (N,) every sequence full length
    out_r, h_n_r, c_n_r, cache_r = run_forward(mode, layer, full, reverse=True)
    out_f, h_n_f, c_n_f, cache_f = run_forward(mode, flipped)
    np.testing.assert_allclose(out_r, out_f[::-1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h_n_r, h_n_f, rtol=1e-12, atol=1e-14)
    if mode in CELL_STATE:
        np.testing.assert_allclose(c_n_r, c_n_f, rtol=1e-12, atol=1e-14)

    d_output = rng.standard_normal(out_r.shape)  # (T, N, H)
    d_h_n = rng.standard_normal(h_n_r.shape)  # (N, H)
    d_c_n = None if c_n_r is None else rng.standard_normal(c_n_r.shape)
    grads_r = run_backward(mode, layer, full, True, cache_r, d_output, d_h_n, d_c_n)
    grads_f = run_backward(mode, flipped, None, False, cache_f, d_output[::-1], d_h_n, d_c_n)
    grads_f["x"] = grads_f["x"][::-1]
    for name in GRADIENT_OF:
        if grads_r[name] is not None:
            np.testing.assert_allclose(grads_r[name], grads_f[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("mode", MODES)
def test_d_output_at_padded_steps_has_no_effect(mode, reverse):
    rng = np.random.default_rng(7)
    layer = make_layer(mode, **SHAPE, rng=rng)
    output, h_n, c_n, cache = run_forward(mode, layer, LENGTHS, reverse)
    d_output = rng.standard_normal(output.shape)  # (T, N, H)
    d_h_n = rng.standard_normal(h_n.shape)  # (N, H)
    d_c_n = None if c_n is None else rng.standard_normal(c_n.shape)
    padded = np.arange(SHAPE["T"])[:, None] >= LENGTHS  # (T, N)
    d_output_zeroed = np.where(padded[:, :, None], 0.0, d_output)  # (T, N, H)
    d_output_noisy = np.where(padded[:, :, None], 1e3, d_output)  # (T, N, H)
    a = run_backward(mode, layer, LENGTHS, reverse, cache, d_output_zeroed, d_h_n, d_c_n)
    b = run_backward(mode, layer, LENGTHS, reverse, cache, d_output_noisy, d_h_n, d_c_n)
    for name in GRADIENT_OF:
        if a[name] is not None:
            assert np.array_equal(a[name], b[name]), name


# --- one step against the equations written out -----------------------------------------


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def one_step(mode, seed, N=3, D=4, H=2):
    """A random one-step layer and what the reference gives for it: ``(layer, h_n, c_n)``."""
    layer = make_layer(mode, 1, N, D, H, np.random.default_rng(seed))
    output, h_n, c_n, _ = run_forward(mode, layer)
    assert np.array_equal(output[0], h_n)
    return layer, h_n, c_n


def test_lstm_step_by_hand():
    layer, h_n, c_n = one_step("lstm", seed=8)
    x, h, c = layer["x"][0], layer["h0"], layer["c0"]  # (N, D), (N, H), (N, H)
    w_ii, w_if, w_ig, w_io = np.split(layer["w_ih"], 4)  # each (H, D)
    w_hi, w_hf, w_hg, w_ho = np.split(layer["w_hh"], 4)  # each (H, H)
    b_ii, b_if, b_ig, b_io = np.split(layer["b_ih"], 4)  # each (H,)
    b_hi, b_hf, b_hg, b_ho = np.split(layer["b_hh"], 4)  # each (H,)
    i = sigmoid(x @ w_ii.T + b_ii + h @ w_hi.T + b_hi)
    f = sigmoid(x @ w_if.T + b_if + h @ w_hf.T + b_hf)
    g = np.tanh(x @ w_ig.T + b_ig + h @ w_hg.T + b_hg)
    o = sigmoid(x @ w_io.T + b_io + h @ w_ho.T + b_ho)
    c_next = f * c + i * g
    h_next = o * np.tanh(c_next)
    np.testing.assert_allclose(c_n, c_next, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


def test_lstm_peephole_step_by_hand():
    layer, h_n, c_n = one_step("lstm_peephole", seed=16)
    x, h, c = layer["x"][0], layer["h0"], layer["c0"]  # (N, D), (N, H), (N, H)
    a = x @ layer["w_ih"].T + layer["b_ih"] + h @ layer["w_hh"].T + layer["b_hh"]  # (N, 4H)
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # each (N, H)
    p_i, p_f, p_o = np.split(layer["w_peep"], 3)  # each (H,)
    i = sigmoid(a_i + p_i * c)
    f = sigmoid(a_f + p_f * c)
    g = np.tanh(a_g)
    c_next = f * c + i * g
    o = sigmoid(a_o + p_o * c_next)  # the output gate sees the new cell state
    h_next = o * np.tanh(c_next)
    np.testing.assert_allclose(c_n, c_next, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


def test_lstm_peephole_with_zero_peepholes_is_the_lstm():
    rng = np.random.default_rng(17)
    layer = make_layer("lstm_peephole", **SHAPE, rng=rng)
    layer["w_peep"] = np.zeros(3 * SHAPE["H"])
    plain = dict(layer, w_peep=None)
    got, want = run_forward("lstm_peephole", layer, LENGTHS), run_forward("lstm", plain, LENGTHS)
    for a, b in zip(got[:3], want[:3]):
        np.testing.assert_array_equal(a, b)
    d_output = rng.standard_normal(got[0].shape)  # (T, N, H)
    d_h_n, d_c_n = rng.standard_normal(got[1].shape), rng.standard_normal(got[2].shape)
    g = run_backward("lstm_peephole", layer, LENGTHS, False, got[3], d_output, d_h_n, d_c_n)
    w = run_backward("lstm", plain, LENGTHS, False, want[3], d_output, d_h_n, d_c_n)
    for name in GRADIENT_OF[:-1]:
        np.testing.assert_allclose(g[name], w[name], rtol=1e-13, atol=1e-15, err_msg=name)
    assert g["w_peep"].shape == (3 * SHAPE["H"],) and w["w_peep"] is None


def test_w_peep_is_for_lstm_peephole_only():
    rng = np.random.default_rng(18)
    layer = make_layer("lstm_peephole", 2, 2, 3, 4, rng)
    with pytest.raises(ArgumentError, match="w_peep"):
        run_forward("lstm_peephole", dict(layer, w_peep=None))
    with pytest.raises(ArgumentError, match="w_peep"):
        run_forward("lstm", layer)
    with pytest.raises(ShapeError, match="w_peep"):
        run_forward("lstm_peephole", dict(layer, w_peep=layer["w_peep"][:-1]))


def test_gru_step_by_hand():
    layer, h_n, c_n = one_step("gru", seed=9)
    x, h = layer["x"][0], layer["h0"]  # (N, D), (N, H)
    w_ir, w_iz, w_in = np.split(layer["w_ih"], 3)  # each (H, D)
    w_hr, w_hz, w_hn = np.split(layer["w_hh"], 3)  # each (H, H)
    b_ir, b_iz, b_in = np.split(layer["b_ih"], 3)  # each (H,)
    b_hr, b_hz, b_hn = np.split(layer["b_hh"], 3)  # each (H,)
    r = sigmoid(x @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
    z = sigmoid(x @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
    n = np.tanh(x @ w_in.T + b_in + r * (h @ w_hn.T + b_hn))
    h_next = (1 - z) * n + z * h
    assert c_n is None
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", ["rnn_tanh", "rnn_relu"])
def test_rnn_step_by_hand(mode):
    layer, h_n, c_n = one_step(mode, seed=10)
    x, h = layer["x"][0], layer["h0"]  # (N, D), (N, H)
    a = x @ layer["w_ih"].T + layer["b_ih"] + h @ layer["w_hh"].T + layer["b_hh"]  # (N, H)
    h_next = np.tanh(a) if mode == "rnn_tanh" else np.maximum(a, 0.0)
    assert c_n is None
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


# --- API details --------------------------------------------------------------------------


def test_gate_count():
    assert [reference.gate_count(m) for m in MODES] == [1, 1, 4, 3, 3, 3, 4, 3, 3, 3]


def test_unknown_mode_is_an_argument_error():
    layer = make_layer("gru", 2, 1, 1, 1, np.random.default_rng(11))
    with pytest.raises(ArgumentError):
        reference.gate_count("lstmp")
    with pytest.raises(ArgumentError):
        run_forward("GRU", layer)
    _, _, _, cache = run_forward("gru", layer)
    with pytest.raises(ArgumentError):
        run_backward("Gru", layer, None, False, cache, np.zeros((2, 1, 1)), None, None)


@pytest.mark.parametrize("lengths", [[0, 2], [3, 2]])
def test_lengths_outside_1_to_T_are_rejected(lengths):
    layer = make_layer("rnn_tanh", 2, 2, 1, 1, np.random.default_rng(12))
    with pytest.raises(ArgumentError):
        run_forward("rnn_tanh", layer, np.array(lengths))


def test_shape_errors():
    layer = make_layer("lstm", 2, 2, 3, 4, np.random.default_rng(13))
    with pytest.raises(ShapeError):
        run_forward("lstm", dict(layer, h0=layer["h0"][:1]))
    with pytest.raises(ShapeError):
        run_forward("gru", dict(layer, c0=None))  # lstm weights (4H, .) for a gru
    with pytest.raises(ShapeError):
        run_forward("lstm", dict(layer, w_ih=layer["w_ih"][:, :2]))


@pytest.mark.parametrize("mode", MODES)
def test_float32_in_float64_out_and_inputs_untouched(mode):
    layer32 = {
        k: None if v is None else v.astype(np.float32)
        for k, v in make_layer(mode, 3, 2, 3, 2, np.random.default_rng(14)).items()
    }
    before = {k: None if v is None else v.copy() for k, v in layer32.items()}
    layer64 = {k: None if v is None else v.astype(np.float64) for k, v in layer32.items()}
    output, h_n, _, cache = run_forward(mode, layer32, np.array([2, 3]), True)
    expected = run_forward(mode, layer64, np.array([2, 3]), True)
    assert output.dtype == h_n.dtype == np.float64
    np.testing.assert_array_equal(output, expected[0])
    d_output = np.ones(output.shape, np.float32)  # (T, N, H)
    grads = run_backward(mode, layer32, np.array([2, 3]), True, cache, d_output, None, None)
    assert all(g is None or g.dtype == np.float64 for g in grads.values())
    for k, v in layer32.items():
        assert v is None or np.array_equal(v, before[k]), k


@pytest.mark.parametrize("mode", MODES)
def test_no_bias_equals_zero_bias(mode):
    rng = np.random.default_rng(15)
    layer = make_layer(mode, 3, 2, 3, 2, rng, bias=False)
    IH, HH = weight_rows(mode, 2)
    zero = dict(layer, b_ih=np.zeros(IH), b_hh=np.zeros(HH))
    out, _, _, cache = run_forward(mode, layer)
    out_z, _, _, cache_z = run_forward(mode, zero)
    np.testing.assert_array_equal(out, out_z)
    d_output = rng.standard_normal(out.shape)  # (T, N, H)
    grads = run_backward(mode, layer, None, False, cache, d_output, None, None)
    grads_z = run_backward(mode, zero, None, False, cache_z, d_output, None, None)
    assert grads["b_ih"] is None and grads["b_hh"] is None
    assert grads_z["b_ih"].shape == (IH,) and grads_z["b_hh"].shape == (HH,)
    for name in ["x", "h0", "c0", "w_ih", "w_hh"]:
        if grads[name] is not None:
            np.testing.assert_array_equal(grads[name], grads_z[name])
