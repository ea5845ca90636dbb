"""The NumPy reference of the LSTM with projections (``lstm`` with ``w_hr``).

1. Every gradient (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr) against central
   finite differences of ``sum(R0 * output) + sum(R1 * h_n) + sum(R2 * c_n)``,
   with and without bias and lengths, forward and reverse.
2. Semantics: the projection is ``h = W_hr (o * tanh(c))`` (one step written out
   by hand), padded outputs are 0 and the state is frozen there.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient
from hypothesis import example, given, settings
from hypothesis import strategies as st
from kernel_cases import make_case

from rnncore import reference
from rnncore.errors import ArgumentError, ShapeError

# The order backward returns them with a projection: dw_hr is the eighth entry.
GRADIENT_OF = ["x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr"]


@st.composite
def proj_cases(draw):
    """``(T, N, D, H, P, lengths or None, seed)``, sizes in 1..5 and ``1 <= P < H``."""
    T, N, D = (draw(st.integers(1, 5)) for _ in range(3))
    H = draw(st.integers(2, 5))
    P = draw(st.integers(1, H - 1))
    lengths = draw(st.none() | st.lists(st.integers(1, T), min_size=N, max_size=N))
    return T, N, D, H, P, lengths, draw(st.integers(0, 2**32 - 1))


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@settings(deadline=None, max_examples=15)
@given(case=proj_cases())
@example(case=(5, 4, 3, 4, 3, [3, 1, 5, 2], 0))
@example(case=(1, 1, 1, 2, 1, [1], 2))
def test_gradients_match_finite_differences(bias, reverse, case):
    T, N, D, H, P, lengths, seed = case
    c = make_case(
        "lstm", T, N, D, H, lengths=lengths, reverse=reverse, bias=bias, seed=seed, proj=P
    )
    layer = {name: getattr(c, name) for name in GRADIENT_OF}
    r0, r1, r2 = c.d_output, c.d_h_n, c.d_c_n  # (T, N, P), (N, P), (N, H)

    def run():
        return reference.forward("lstm", **layer, lengths=c.lengths, reverse=reverse)

    def loss():
        output, h_n, c_n, _ = run()
        return np.sum(r0 * output) + np.sum(r1 * h_n) + np.sum(r2 * c_n)

    output, h_n, c_n, cache = run()
    assert output.shape == (T, N, P) and h_n.shape == (N, P) and c_n.shape == (N, H)
    weights = {k: layer[k] for k in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")}
    grads = reference.backward(
        "lstm", layer["x"], **weights, lengths=c.lengths, reverse=reverse, cache=cache,
        d_output=r0, d_h_n=r1, d_c_n=r2,
    )  # fmt: skip
    assert len(grads) == 8
    for name, g in zip(GRADIENT_OF, grads, strict=True):
        if layer[name] is None:
            assert g is None, name
            continue
        assert g.shape == layer[name].shape, name
        numeric = numeric_gradient(loss, layer[name])
        scale = max(np.abs(g).max(), np.abs(numeric).max(), 1e-3)
        assert np.abs(g - numeric).max() / scale < 1e-6, name


def test_one_step_is_the_lstm_followed_by_the_projection():
    c = make_case("lstm", 1, 3, 4, 5, seed=3, proj=2)
    output, h_n, c_n, _ = reference.forward(
        "lstm", c.x, c.h0, c.c0, c.w_ih, c.w_hh, c.b_ih, c.b_hh, w_hr=c.w_hr
    )
    a = c.x[0] @ c.w_ih.T + c.b_ih + c.h0 @ c.w_hh.T + c.b_hh  # (N, 4H)
    i, f, g, o = np.split(a, 4, axis=1)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c_next = sig(f) * c.c0 + sig(i) * np.tanh(g)  # (N, H)
    h_next = (sig(o) * np.tanh(c_next)) @ c.w_hr.T  # (N, P)
    np.testing.assert_allclose(c_n, c_next, rtol=1e-13)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13)
    np.testing.assert_allclose(output[0], h_next, rtol=1e-13)


@pytest.mark.parametrize("reverse", [False, True])
def test_padded_steps_are_zero_and_the_state_is_frozen(reverse):
    c = make_case("lstm", 4, 3, 2, 5, lengths=[4, 1, 2], reverse=reverse, seed=4, proj=3)
    args = ("lstm", c.x, c.h0, c.c0, c.w_ih, c.w_hh, c.b_ih, c.b_hh)
    output, h_n, c_n, _ = reference.forward(*args, c.lengths, reverse, w_hr=c.w_hr)
    for n, length in enumerate(c.lengths):
        assert np.all(output[length:, n] == 0.0)
        alone = reference.forward(
            "lstm", c.x[:length, n : n + 1], c.h0[n : n + 1], c.c0[n : n + 1],
            c.w_ih, c.w_hh, c.b_ih, c.b_hh, None, reverse, w_hr=c.w_hr,
        )  # fmt: skip
        np.testing.assert_allclose(h_n[n], alone[1][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c_n[n], alone[2][0], rtol=1e-12, atol=1e-14)


def test_bad_projections_are_refused():
    c = make_case("lstm", 2, 2, 3, 4, seed=5, proj=2)
    args = (c.x, c.h0, c.c0, c.w_ih, c.w_hh, c.b_ih, c.b_hh)
    with pytest.raises(ArgumentError, match="w_hr"):
        reference.forward("gru", *args, w_hr=c.w_hr)
    for bad in (np.zeros((4, 4)), np.zeros((0, 4)), np.zeros(8)):
        with pytest.raises(ShapeError, match="w_hr"):
            reference.forward("lstm", *args, w_hr=bad)
    with pytest.raises(ShapeError, match="w_hh"):
        reference.forward("lstm", *args)  # w_hh (4H, P) without its projection
