"""The MUT cells of the float64 reference (:mod:`rnncore.reference.mut_cells`)
against the equations of Jozefowicz, Zaremba & Sutskever (2015) written out by
hand, with the weight layouts the docs give; and their named errors. Their
gradients are checked against finite differences in ``test_reference.py``."""

from __future__ import annotations

import numpy as np
import pytest
from test_reference import make_layer, one_step, run_forward

from rnncore.errors import ArgumentError, ShapeError
from rnncore.reference.cells import sigmoid


def test_mut1_step_by_hand():
    layer, h_n, _ = one_step("mut1", seed=20, D=3, H=3)
    x, h = layer["x"][0], layer["h0"]  # (N, H) each
    w_xz, w_xr = np.split(layer["w_ih"], 2)  # each (H, D)
    w_hr, w_hh = np.split(layer["w_hh"], 2)  # each (H, H)
    b_xz, b_xr = np.split(layer["b_ih"], 2)
    b_hr, b_hh = np.split(layer["b_hh"], 2)
    z = sigmoid(x @ w_xz.T + b_xz)
    r = sigmoid(x @ w_xr.T + h @ w_hr.T + b_xr + b_hr)
    h_next = np.tanh((r * h) @ w_hh.T + np.tanh(x) + b_hh) * z + h * (1 - z)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


def test_mut2_step_by_hand():
    layer, h_n, _ = one_step("mut2", seed=21, D=4, H=4)
    x, h = layer["x"][0], layer["h0"]
    w_xz, w_xh = np.split(layer["w_ih"], 2)
    w_hz, w_hr, w_hh = np.split(layer["w_hh"], 3)
    b_xz, b_xh = np.split(layer["b_ih"], 2)
    b_hz, b_hr, b_hh = np.split(layer["b_hh"], 3)
    z = sigmoid(x @ w_xz.T + h @ w_hz.T + b_xz + b_hz)
    r = sigmoid(x + h @ w_hr.T + b_hr)
    h_next = np.tanh((r * h) @ w_hh.T + x @ w_xh.T + b_xh + b_hh) * z + h * (1 - z)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


def test_mut3_step_by_hand():
    layer, h_n, _ = one_step("mut3", seed=22, D=5, H=3)
    x, h = layer["x"][0], layer["h0"]  # (N, D), (N, H)
    w_xz, w_xr, w_xh = np.split(layer["w_ih"], 3)
    w_hz, w_hr, w_hh = np.split(layer["w_hh"], 3)
    b_xz, b_xr, b_xh = np.split(layer["b_ih"], 3)
    b_hz, b_hr, b_hh = np.split(layer["b_hh"], 3)
    z = sigmoid(x @ w_xz.T + np.tanh(h) @ w_hz.T + b_xz + b_hz)
    r = sigmoid(x @ w_xr.T + h @ w_hr.T + b_xr + b_hr)
    h_next = np.tanh((r * h) @ w_hh.T + x @ w_xh.T + b_xh + b_hh) * z + h * (1 - z)
    np.testing.assert_allclose(h_n, h_next, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("mode", ["mut1", "mut2"])
def test_mut1_and_mut2_need_input_size_h(mode):
    layer = make_layer(mode, 2, 2, 3, 3, np.random.default_rng(23))
    x = np.zeros((2, 2, 4))  # D = 4 != H = 3
    w_ih = np.zeros((layer["w_ih"].shape[0], 4))
    with pytest.raises(ArgumentError, match=f"{mode} adds x itself"):
        run_forward(mode, dict(layer, x=x, w_ih=w_ih))


def test_mut_weights_have_their_own_row_counts():
    layer = make_layer("mut1", 2, 2, 3, 3, np.random.default_rng(24))
    assert layer["w_ih"].shape == (6, 3) and layer["w_hh"].shape == (6, 3)
    with pytest.raises(ShapeError, match="w_hh"):
        run_forward("mut2", layer)  # MUT2's w_hh is (3H, H)
    ok = make_layer("mut3", 2, 2, 5, 3, np.random.default_rng(25))
    assert ok["w_ih"].shape == (9, 5) and ok["w_hh"].shape == (9, 3)
    with pytest.raises(ShapeError, match="w_ih"):
        run_forward("mut3", dict(ok, w_ih=ok["w_ih"][:6]))
