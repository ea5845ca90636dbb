"""The compiled LSTM with projections (``lstm`` with ``w_hr``) against the float64
reference, across thread counts, and its argument errors.

float64 within ~1e-10 of the reference; float32 inputs compared with the
reference on the same rounded inputs (the tolerance of ``test_kernels``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import RESULT_NAMES, make_case, max_rel_error

import rnncore
from rnncore import _rnncore, reference
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError

F64_TOL = 1e-10
F32_TOL = 2e-4
sizes = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 33])  # around the SIMD widths


@st.composite
def cases(draw, dtype):
    T = draw(st.integers(1, 12))
    N = draw(st.integers(1, 6))
    D = draw(sizes)
    H = draw(sizes.filter(lambda h: h > 1))
    P = draw(st.sampled_from([1, 2, 3, 7, 8, 9, 16, 17, 32]).filter(lambda p: p < H))
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=N, max_size=N))
    return make_case(
        "lstm", T, N, D, H, dtype=dtype, lengths=lengths, reverse=draw(st.booleans()),
        bias=draw(st.booleans()), seed=draw(st.integers(0, 2**31)), proj=P,
    )  # fmt: skip


def compare(case, tol):
    got, want = case.run(_rnncore), case.run(reference)
    for name, g, w in zip(RESULT_NAMES, got, want, strict=True):
        assert (g is None) == (w is None), name
        if g is None:
            continue
        assert g.shape == w.shape and g.dtype == case.x.dtype, name
        err = max_rel_error(g, w)
        assert err < tol, f"{name}: relative error {err:.3g}"
    return got


@settings(max_examples=120, deadline=None)
@given(cases(np.float64))
def test_float64_matches_reference(case):
    got = compare(case, F64_TOL)
    P, H = case.w_hr.shape
    T, N, _ = case.x.shape
    assert got[0].shape == (T, N, P) and got[1].shape == (N, P) and got[2].shape == (N, H)
    assert got[RESULT_NAMES.index("dw_hr")].shape == (P, H)


@settings(max_examples=80, deadline=None)
@given(cases(np.float32))
def test_float32_matches_reference(case):
    compare(case, F32_TOL)


@pytest.mark.parametrize("reverse", [False, True])
def test_sizes_of_one_and_lengths_of_one(reverse):
    compare(make_case("lstm", 1, 1, 1, 2, reverse=reverse, proj=1), F64_TOL)
    case = make_case("lstm", 6, 4, 5, 3, lengths=[1, 1, 1, 1], reverse=reverse, proj=2)
    compare(case, F64_TOL)


@pytest.mark.parametrize(
    "N, H, P",
    [(35, 9, 4), (6, 256, 7), (20, 256, 100), (40, 256, 33)],
    ids=["shards", "wide-panels", "wide-panels-20", "wide-gemm"],
)
def test_bitwise_the_same_at_any_thread_count(N, H, P):
    """Several shards of the batch, and wide steps over panels and the GEMM."""
    T = 9
    lengths = [1 + (7 * b) % T for b in range(N)]
    case = make_case("lstm", T, N, 3, H, lengths=lengths, reverse=N % 2 == 0, seed=2, proj=P)
    runs = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            runs.append(case.run(_rnncore))
    finally:
        rnncore.set_num_threads(None)
    for other in runs[1:]:
        for name, a, b in zip(RESULT_NAMES, runs[0], other, strict=True):
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=name)
    compare(case, F64_TOL)


def test_w_hr_is_checked_by_name():
    case = make_case("lstm", 3, 2, 3, 5, seed=7, proj=2)
    _, _, _, cache = case.forward(_rnncore)
    for bad in (np.zeros((5, 5)), np.zeros((6, 5)), np.zeros((0, 5))):
        with pytest.raises((ArgumentError, ShapeError), match="w_hr"):
            replace(case, w_hr=bad).forward(_rnncore)
    with pytest.raises(ShapeError, match="w_hr"):
        replace(case, w_hr=case.w_hr.ravel()).forward(_rnncore)
    with pytest.raises(DTypeError, match="w_hr"):
        replace(case, w_hr=case.w_hr.astype(np.float32)).forward(_rnncore)
    nan = case.w_hr.copy()
    nan[1, 2] = np.nan
    with pytest.raises(NonFiniteError, match="w_hr"):
        replace(case, w_hr=nan).forward(_rnncore)
    for mode in ("gru", "lstm_cifg", "rnn_tanh"):
        with pytest.raises(ArgumentError, match="w_hr"):
            replace(case, mode=mode).forward(_rnncore)
    # h0 of width H, and a cache without its projection, are named.
    with pytest.raises(ShapeError, match="h0"):
        replace(case, h0=np.zeros((2, 5))).forward(_rnncore)
    with pytest.raises(ArgumentError, match="proj"):
        case.backward(_rnncore, {k: v for k, v in cache.items() if k != "proj"})
    with pytest.raises(ShapeError, match="d_output"):
        replace(case, d_output=np.zeros((3, 2, 5))).backward(_rnncore, cache)
    with pytest.raises(ShapeError, match="w_hh"):
        replace(case, w_hr=None).backward(_rnncore, cache)
