"""The compiled kernels against the float64 NumPy reference.

float64: every result and gradient within ~1e-10 of the reference, relative to
the array's scale. float32: the same inputs rounded to float32, compared with the
reference run in float64 on those rounded inputs (tolerances stated below).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import MODES, RESULT_NAMES, make_case, max_rel_error

from rnncore import _rnncore, reference
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError

F64_TOL = 1e-10
# float32 has 2^-24 ~ 6e-8 relative precision; errors grow with the number of
# steps and with the length of the dot products (D + H), hence a looser bound.
F32_TOL = 2e-4

# Sizes around the SIMD widths (8 floats for AVX2, 16 for AVX-512) and 1.
sizes = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 33])


@st.composite
def cases(draw, dtype, modes=MODES):
    mode = draw(st.sampled_from(modes))
    T = draw(st.integers(1, 12))
    N = draw(st.integers(1, 6))
    D, H = draw(sizes), draw(sizes)
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=N, max_size=N))
    return make_case(
        mode, T, N, D, H,
        dtype=dtype,
        lengths=lengths,
        reverse=draw(st.booleans()),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**31)),
    )  # fmt: skip


def compare(case, tol):
    got = case.run(_rnncore)
    want = case.run(reference)
    worst = 0.0
    for name, g, w in zip(RESULT_NAMES, got, want):
        assert (g is None) == (w is None), name
        if g is None:
            continue
        assert g.shape == w.shape, name
        assert g.dtype == case.x.dtype, name
        err = max_rel_error(g, w)
        assert err < tol, f"{case.mode} {name}: relative error {err:.3g}"
        worst = max(worst, err)
    return worst


@settings(max_examples=150, deadline=None)
@given(cases(np.float64))
def test_float64_matches_reference(case):
    compare(case, F64_TOL)


@settings(max_examples=100, deadline=None)
@given(cases(np.float32))
def test_float32_matches_reference(case):
    compare(case, F32_TOL)


MUT_MODES = ("mut1", "mut2", "mut3")  # (their own row layouts; mut1/mut2 force D = H)


@settings(max_examples=60, deadline=None)
@given(cases(np.float64, MUT_MODES))
def test_mut_float64_matches_reference(case):
    compare(case, F64_TOL)


@settings(max_examples=40, deadline=None)
@given(cases(np.float32, MUT_MODES))
def test_mut_float32_matches_reference(case):
    compare(case, F32_TOL)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reverse", [False, True])
def test_stacked_sizes_and_lengths_of_one(mode, reverse):
    """All sizes 1 and a batch whose sequences all have length 1."""
    compare(make_case(mode, 1, 1, 1, 1, reverse=reverse), F64_TOL)
    compare(make_case(mode, 6, 4, 5, 3, lengths=[1, 1, 1, 1], reverse=reverse), F64_TOL)


@pytest.mark.parametrize("mode", MODES)
def test_long_sequence_float32_tracks_float64(mode):
    """T=500: float32 output and gradients stay close to the float64 kernel."""
    lengths = [500, 321, 1, 77]
    case64 = make_case(mode, 500, 4, 16, 24, lengths=lengths, reverse=False, seed=3)
    case32 = make_case(mode, 500, 4, 16, 24, lengths=lengths, dtype=np.float32, seed=3)
    for name, g32, g64 in zip(RESULT_NAMES, case32.run(_rnncore), case64.run(_rnncore)):
        if g64 is None:
            continue
        assert max_rel_error(g32, g64) < 2e-3, name


def test_float32_inputs_give_float32_outputs():
    case = make_case("gru", 3, 2, 4, 5, dtype=np.float32)
    assert all(r is None or r.dtype == np.float32 for r in case.run(_rnncore))


def test_inputs_are_not_modified():
    case = make_case("lstm", 4, 3, 5, 6, lengths=[4, 2, 1], reverse=True)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(case).items()}
    case.run(_rnncore)
    for k, v in vars(case).items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_gate_count():
    assert [_rnncore.gate_count(m) for m in MODES] == [1, 1, 4, 3, 3, 3, 4, 4, 3, 3, 3, 3]


def test_the_rust_and_python_tables_of_modes_agree():
    from rnncore.models._base import CELLS
    from rnncore.nn._base import GATES

    assert {m: _rnncore.gate_count(m) for m in GATES} == GATES
    assert set(CELLS) == set(GATES) == set(MODES)
    with pytest.raises(ValueError, match="unknown cell mode"):
        _rnncore.gate_count("lstmp")  # nor does Rust know a mode Python lacks


@pytest.mark.parametrize("impl", [_rnncore, reference], ids=["rust", "reference"])
def test_cifg_is_an_lstm_whose_input_gate_mirrors_the_forget_gate(impl):
    """sigmoid(-a) = 1 - sigmoid(a): an LSTM with input-gate weights -W_f equals
    the CIFG LSTM with forget-gate weights W_f."""
    case = make_case("lstm_cifg", 7, 3, 4, 5, lengths=[7, 2, 5], seed=4)
    H = 5

    def as_lstm(w):  # (3H, ...) f|g|o -> (4H, ...) i|f|g|o with i = -f
        return np.concatenate([-w[:H], w])

    cifg = case.forward(impl)
    lstm = impl.forward(
        "lstm", case.x, case.h0, case.c0, as_lstm(case.w_ih), as_lstm(case.w_hh),
        as_lstm(case.b_ih), as_lstm(case.b_hh), case.lengths, False,
    )  # fmt: skip
    for a, b in zip(cifg[:3], lstm[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", [_rnncore, reference], ids=["rust", "reference"])
def test_peephole_lstm_with_zero_peepholes_is_the_lstm(impl):
    case = make_case("lstm_peephole", 7, 3, 4, 5, lengths=[7, 2, 5], reverse=True, seed=5)
    case.w_peep = np.zeros_like(case.w_peep)
    plain = make_case("lstm", 7, 3, 4, 5, lengths=[7, 2, 5], reverse=True, seed=5)
    for name in ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "d_output", "d_h_n", "d_c_n"):
        setattr(plain, name, getattr(case, name))
    got, want = case.run(impl), plain.run(impl)
    peep = RESULT_NAMES.index("dw_peep")
    for name, a, b in zip(RESULT_NAMES[:peep], got, want):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=name)
    assert got[peep].shape == (15,) and want[peep] is None


@pytest.mark.parametrize("impl", [_rnncore, reference], ids=["rust", "reference"])
def test_peephole_weights_change_the_result(impl):
    """Each block of w_peep reaches the output: p_i and p_f through c_prev, p_o
    through c_next."""
    case = make_case("lstm_peephole", 4, 2, 3, 5, seed=6)
    base = case.forward(impl)[0]
    for block in range(3):
        w = case.w_peep.copy()
        w[block * 5 : (block + 1) * 5] += 0.5
        moved = impl.forward(
            case.mode, case.x, case.h0, case.c0, case.w_ih, case.w_hh, case.b_ih, case.b_hh,
            case.lengths, case.reverse, w_peep=w,
        )[0]  # fmt: skip
        assert np.abs(moved - base).max() > 1e-3, block


def test_w_peep_is_checked_by_name():
    """Required by lstm_peephole, refused by the other modes, shape, dtype and NaN checked."""
    case = make_case("lstm_peephole", 3, 2, 3, 4, seed=7)
    with pytest.raises(ArgumentError, match="w_peep"):
        replace(case, w_peep=None).forward(_rnncore)
    lstm = make_case("lstm", 3, 2, 3, 4, seed=7)
    with pytest.raises(ArgumentError, match="w_peep"):
        replace(lstm, w_peep=case.w_peep).forward(_rnncore)
    for bad in (case.w_peep[:-1], case.w_peep.reshape(3, 4)):
        with pytest.raises(ShapeError, match="w_peep"):
            replace(case, w_peep=bad).forward(_rnncore)
    with pytest.raises(DTypeError, match="w_peep"):
        replace(case, w_peep=case.w_peep.astype(np.float32)).forward(_rnncore)
    nan = case.w_peep.copy()
    nan[2] = np.nan
    with pytest.raises(NonFiniteError, match="w_peep"):
        replace(case, w_peep=nan).forward(_rnncore)
    _, _, _, cache = case.forward(_rnncore)
    with pytest.raises(ArgumentError, match="w_peep"):
        replace(case, w_peep=None).backward(_rnncore, cache)


@pytest.mark.parametrize("impl", [_rnncore, reference], ids=["rust", "reference"])
@pytest.mark.parametrize("mode", ["mut1", "mut2"])
def test_mut1_and_mut2_refuse_an_input_size_other_than_h(impl, mode):
    case = make_case("mut3", 3, 2, 4, 5, seed=8)  # D = 4, H = 5
    ih, hh = (2, 2) if mode == "mut1" else (2, 3)
    bad = replace(
        case, mode=mode, w_ih=case.w_ih[: ih * 5], w_hh=case.w_hh[: hh * 5],
        b_ih=case.b_ih[: ih * 5], b_hh=case.b_hh[: hh * 5],
    )  # fmt: skip
    with pytest.raises(ArgumentError, match="x itself"):
        bad.forward(impl)


@pytest.mark.parametrize("mode", ["mut1", "mut2", "mut3"])
def test_mut_weights_of_another_layout_are_shape_errors(mode):
    """A MUT's weights have their own row counts: (G*H, .) rows of another
    layout, or biases of the other matrix's length, are refused by name."""
    case = make_case(mode, 3, 2, 4, 4, seed=9)
    H = 4
    wrong_ih = np.zeros((case.w_ih.shape[0] + H, 4), case.x.dtype)
    with pytest.raises(ShapeError, match="w_ih"):
        replace(case, w_ih=wrong_ih).forward(_rnncore)
    wrong_hh = np.zeros((case.w_hh.shape[0] - H, 4), case.x.dtype)
    with pytest.raises(ShapeError, match="w_hh"):
        replace(case, w_hh=wrong_hh).forward(_rnncore)
    if case.b_ih.shape != case.b_hh.shape:  # mut2: b_ih (2H,), b_hh (3H,)
        with pytest.raises(ShapeError, match="b_ih"):
            replace(case, b_ih=case.b_hh).forward(_rnncore)
    _, _, _, cache = case.forward(_rnncore)
    grads = case.backward(_rnncore, cache)
    assert [g.shape for g in grads[3:7]] == [
        case.w_ih.shape, case.w_hh.shape, case.b_ih.shape, case.b_hh.shape,
    ]  # fmt: skip
