"""Input probes: each bad input is named precisely, whatever its shape or value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import _rnncore as kernels
from rnncore import nn
from rnncore.errors import ArgumentError, NonFiniteError, ShapeError


@pytest.mark.parametrize("x", [np.float32(1.0), np.array(1.0, np.float32)], ids=["scalar", "0-D"])
def test_a_0d_input_is_called_0d(x):
    with pytest.raises(ShapeError, match=r"got a 0-D array of shape \(\)"):
        nn.LSTM(3, 4)(x)


@settings(max_examples=30, deadline=None)
@given(bad=st.integers(-(2**62), -1), at=st.integers(0, 2))
def test_negative_kernel_lengths_are_called_negative(bad, at):
    H, T = 4, 5
    x = np.ones((T, 3, 3), np.float32)
    h0 = np.zeros((3, H), np.float32)
    w_ih, w_hh = np.zeros((4 * H, 3), np.float32), np.zeros((4 * H, H), np.float32)
    b = np.zeros(4 * H, np.float32)
    lengths = np.full(3, T)
    lengths[at] = bad
    with pytest.raises(ArgumentError, match=rf"lengths\[{at}\] = {bad} is negative"):
        kernels.forward("lstm", x, h0, h0.copy(), w_ih, w_hh, b, b, lengths)


@pytest.mark.parametrize("name", ["weight_hh_l1_reverse", "bias_ih_l0", "weight_ih_l1"])
def test_a_nan_written_in_place_names_the_parameter(name):
    layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    x = np.ones((5, 2, 3), np.float32)
    y, _ = layer(x)
    getattr(layer, name).flat[0] = np.nan  # in place: no check runs
    if name.startswith("weight"):  # (a bias takes no part in the backward)
        with pytest.raises(NonFiniteError, match=rf"LSTM\.{name} contains NaN"):
            layer.backward(np.ones_like(y))
    with pytest.raises(NonFiniteError, match=rf"LSTM\.{name} contains NaN"):
        layer(x)
