"""The compiled kernels against the float64 NumPy reference.

float64: every result and gradient within ~1e-10 of the reference, relative to
the array's scale. float32: the same inputs rounded to float32, compared with the
reference run in float64 on those rounded inputs (tolerances stated below).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import MODES, RESULT_NAMES, make_case, max_rel_error

from rnncore import _rnncore, reference

F64_TOL = 1e-10
# float32 has 2^-24 ~ 6e-8 relative precision; errors grow with the number of
# steps and with the length of the dot products (D + H), hence a looser bound.
F32_TOL = 2e-4

# Sizes around the SIMD widths (8 floats for AVX2, 16 for AVX-512) and 1.
sizes = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 33])


@st.composite
def cases(draw, dtype):
    mode = draw(st.sampled_from(MODES))
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
    assert [_rnncore.gate_count(m) for m in MODES] == [1, 1, 4, 3, 3, 3]


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
