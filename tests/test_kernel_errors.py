"""Bad input to the compiled kernels: a precise exception naming the argument,
never a crash or a ``PanicException``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_cases import make_case

from rnncore import _rnncore
from rnncore.errors import (
    ArgumentError,
    DTypeError,
    NonFiniteError,
    RnnCoreError,
    ShapeError,
)

FORWARD_ARGS = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")


def forward_kwargs(case, **override):
    kw = {
        "mode": case.mode,
        **{name: getattr(case, name) for name in FORWARD_ARGS},
        "lengths": case.lengths,
        "reverse": case.reverse,
    }
    kw.update(override)
    return kw


@pytest.fixture
def case():
    return make_case("lstm", 4, 3, 5, 6, lengths=[4, 1, 2])


@pytest.mark.parametrize("name", FORWARD_ARGS)
def test_wrong_dtype_names_the_argument(case, name):
    bad = getattr(case, name).astype(np.float32 if name != "x" else np.int32)
    with pytest.raises(DTypeError, match=name) as info:
        _rnncore.forward(**forward_kwargs(case, **{name: bad}))
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize("name", FORWARD_ARGS)
def test_not_an_array_names_the_argument(case, name):
    with pytest.raises(DTypeError, match=name):
        _rnncore.forward(**forward_kwargs(case, **{name: getattr(case, name).tolist()}))


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("x", (4, 3)),
        ("x", (4, 3, 5, 1)),
        ("h0", (2, 6)),
        ("h0", (3, 6, 1)),
        ("c0", (3, 5)),
        ("w_ih", (24, 4)),
        ("w_hh", (24, 5)),
        ("w_hh", (20, 6)),
        ("b_ih", (23,)),
        ("b_hh", (24, 1)),
    ],
)
def test_wrong_shape_names_the_argument(case, name, shape):
    with pytest.raises(ShapeError, match=name) as info:
        _rnncore.forward(**forward_kwargs(case, **{name: np.zeros(shape)}))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", FORWARD_ARGS)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_names_the_argument(case, name, value):
    bad = getattr(case, name).copy()
    bad.flat[bad.size // 2] = value
    with pytest.raises(NonFiniteError, match=name):
        _rnncore.forward(**forward_kwargs(case, **{name: bad}))


@pytest.mark.parametrize(
    ("lengths", "error"),
    [
        ([0, 1, 2], ArgumentError),
        ([5, 1, 2], ArgumentError),
        ([-1, 1, 2], ArgumentError),
        ([1, 2], ShapeError),
        ([[1, 2, 3]], ShapeError),
        ([1.0, 2.0, 3.0], DTypeError),
        ([True, True, True], DTypeError),
    ],
)
def test_bad_lengths(case, lengths, error):
    with pytest.raises(error, match="lengths"):
        _rnncore.forward(**forward_kwargs(case, lengths=np.asarray(lengths)))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.int64])
def test_lengths_of_any_integer_dtype(case, dtype):
    want = _rnncore.forward(**forward_kwargs(case))[0]
    got = _rnncore.forward(**forward_kwargs(case, lengths=case.lengths.astype(dtype)))[0]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("name", "shape", "what"),
    [("x", (0, 3, 5), "time"), ("x", (4, 0, 5), "batch"), ("x", (4, 3, 0), "input")],
)
def test_empty_dimensions(case, name, shape, what):
    kw = forward_kwargs(case, lengths=None)
    kw[name] = np.zeros(shape)
    if what == "batch":
        kw.update(h0=np.zeros((0, 6)), c0=np.zeros((0, 6)))
    if what == "input":
        kw.update(w_ih=np.zeros((24, 0)))
    with pytest.raises(ShapeError, match=rf"x.*{what}"):
        _rnncore.forward(**kw)


def test_empty_hidden_size():
    case = make_case("gru", 2, 2, 3, 1)
    kw = forward_kwargs(case, h0=np.zeros((2, 0)), w_ih=np.zeros((0, 3)), w_hh=np.zeros((0, 0)))
    kw.update(b_ih=np.zeros(0), b_hh=np.zeros(0))
    with pytest.raises(ShapeError, match="h0"):
        _rnncore.forward(**kw)


def test_mode_and_state_mismatches(case):
    with pytest.raises(ArgumentError, match="mode"):
        _rnncore.forward(**forward_kwargs(case, mode="LSTM"))
    with pytest.raises(ArgumentError, match="c0"):
        _rnncore.forward(**forward_kwargs(case, c0=None))
    gru = make_case("gru", 2, 2, 3, 4)
    with pytest.raises(ArgumentError, match="c0"):
        _rnncore.forward(**forward_kwargs(gru, c0=np.zeros((2, 4))))
    with pytest.raises(ArgumentError, match="b_hh"):
        _rnncore.forward(**forward_kwargs(case, b_hh=None))


def test_mixed_dtypes(case):
    with pytest.raises(DTypeError, match=r"h0.*float64"):
        _rnncore.forward(**forward_kwargs(case, h0=case.h0.astype(np.float32)))
    f32 = {name: getattr(case, name).astype(np.float32) for name in FORWARD_ARGS}
    with pytest.raises(DTypeError, match=r"w_hh.*float32"):
        _rnncore.forward(**forward_kwargs(case, **{**f32, "w_hh": case.w_hh}))


def test_non_contiguous_and_read_only_inputs_are_accepted(case):
    want = case.run(_rnncore)
    x_f = np.asfortranarray(case.x)
    w_strided = np.repeat(case.w_hh, 2, axis=1)[:, ::2]
    assert not x_f.flags.c_contiguous and not w_strided.flags.c_contiguous
    ro = case.h0.copy()
    ro.flags.writeable = False
    case.x, case.w_hh, case.h0 = x_f, w_strided, ro
    for g, w in zip(case.run(_rnncore), want):
        if w is not None:
            np.testing.assert_array_equal(g, w)


def test_backward_checks_its_arguments(case):
    _, _, _, cache = case.forward(_rnncore)
    args = dict(
        mode=case.mode, x=case.x, w_ih=case.w_ih, w_hh=case.w_hh, b_ih=case.b_ih,
        b_hh=case.b_hh, lengths=case.lengths, reverse=case.reverse, cache=cache,
        d_output=case.d_output, d_h_n=case.d_h_n, d_c_n=case.d_c_n,
    )  # fmt: skip
    _rnncore.backward(**args)
    bad_dy = case.d_output.copy()
    bad_dy[0, 0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="d_output"):
        _rnncore.backward(**{**args, "d_output": bad_dy})
    with pytest.raises(ShapeError, match="d_output"):
        _rnncore.backward(**{**args, "d_output": case.d_output[:2]})
    with pytest.raises(ShapeError, match="d_h_n"):
        _rnncore.backward(**{**args, "d_h_n": case.d_h_n[:, :2]})
    with pytest.raises(ArgumentError, match=r"cache.*cells"):
        _rnncore.backward(**{**args, "cache": {k: v for k, v in cache.items() if k != "cells"}})
    with pytest.raises(ShapeError, match=r"cache\['gates'\]"):
        _rnncore.backward(**{**args, "cache": {**cache, "gates": cache["gates"][:1]}})
    with pytest.raises(DTypeError, match="cache"):
        _rnncore.backward(**{**args, "cache": [cache["gates"]]})
    with pytest.raises(ArgumentError, match="d_c_n"):
        gru = make_case("gru", 2, 2, 3, 4)
        _, _, _, gcache = gru.forward(_rnncore)
        _rnncore.backward(
            "gru", gru.x, gru.w_ih, gru.w_hh, gru.b_ih, gru.b_hh, None, False, gcache,
            gru.d_output, None, np.zeros((2, 4)),
        )  # fmt: skip


# Random garbage for every argument: whatever happens, it is an ordinary
# exception (never PanicException, which derives from BaseException) or a result.
garbage = st.one_of(
    st.none(),
    st.integers(-3, 3),
    st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda s: np.ones(s)),
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)).map(
        lambda s: np.full(s, 0.5, dtype=np.float32)
    ),
    st.integers(0, 4).map(lambda n: np.arange(n)),
    st.just(np.array(np.nan)),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["lstm", "gru", "rnn_tanh", "bogus"]),
    st.lists(garbage, min_size=8, max_size=8),
    st.booleans(),
)
def test_no_panic_escapes_forward(mode, arrays, reverse):
    try:
        _rnncore.forward(mode, *arrays, reverse)
    except (RnnCoreError, TypeError):
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(garbage, min_size=9, max_size=9), st.booleans())
def test_no_panic_escapes_backward(arrays, use_real_cache):
    case = make_case("gru", 2, 2, 3, 3)
    cache = case.forward(_rnncore)[3] if use_real_cache else arrays[7]
    try:
        _rnncore.backward("gru", *arrays[:6], False, cache, *arrays[6:])
    except (RnnCoreError, TypeError):
        pass
