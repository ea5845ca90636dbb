"""The MUT layers (``nn.MUT1``, ``nn.MUT2``, ``nn.MUT3``): parameter layout, the
compiled kernels against the float64 reference through the layer (lengths,
bidirectional, stacked, batch_first, float32), finite differences of the layer's
backward, bitwise results at any thread count, the named size errors, and the
cells (``nn.MUT1Cell``, ...) unrolled against the one-layer layer."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_nn_layers import check_gradients

import rnncore
from rnncore import nn, reference
from rnncore.errors import ArgumentError

LAYERS = {"mut1": nn.MUT1, "mut2": nn.MUT2, "mut3": nn.MUT3}
# (rows of weight_ih, rows of weight_hh) in units of H, as the docstrings give them
ROWS = {"mut1": (2, 2), "mut2": (2, 3), "mut3": (3, 3)}


def stacks(mode):
    """``(D, H, num_layers, bidirectional)`` the layer takes: MUT1 and MUT2 need D == H
    in every layer, so they stack in one direction only."""
    if mode == "mut3":
        return [(5, 3, 1, False), (5, 3, 2, True), (1, 1, 3, False), (9, 17, 2, True)]
    return [(3, 3, 1, False), (3, 3, 1, True), (4, 4, 3, False), (17, 17, 2, False)]


@pytest.mark.parametrize("mode", LAYERS)
def test_parameters_have_the_documented_names_and_shapes(mode):
    ih, hh = ROWS[mode]
    D = 4 if mode == "mut3" else 6
    layer = LAYERS[mode](D, 6, num_layers=2, seed=0)
    shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert shapes == {
        "weight_ih_l0": (ih * 6, D), "weight_hh_l0": (hh * 6, 6),
        "bias_ih_l0": (ih * 6,), "bias_hh_l0": (hh * 6,),
        "weight_ih_l1": (ih * 6, 6), "weight_hh_l1": (hh * 6, 6),
        "bias_ih_l1": (ih * 6,), "bias_hh_l1": (hh * 6,),
    }  # fmt: skip
    assert repr(layer) == f"{mode.upper()}({D}, 6, num_layers=2)"
    bi = LAYERS[mode](6, 6, bidirectional=True, bias=False, seed=0)
    assert list(bi.state_dict()) == [
        "weight_ih_l0", "weight_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse",
    ]  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", LAYERS)
def test_kernels_match_the_reference_through_the_layer(mode, dtype):
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-4, "atol": 2e-5}
    rng = np.random.default_rng(1)
    for D, H, layers, bi in stacks(mode):
        for batch_first in (False, True):
            kw = {"num_layers": layers, "bidirectional": bi, "batch_first": batch_first}
            fast = LAYERS[mode](D, H, **kw, dtype=dtype, seed=2)
            slow = LAYERS[mode](D, H, **kw, dtype=dtype, seed=2, backend=reference)
            N, T = 4, 6
            x = rng.standard_normal((N, T, D) if batch_first else (T, N, D)).astype(dtype)
            h0 = rng.standard_normal((layers * (1 + bi), N, H)).astype(dtype)
            lengths = [6, 1, 3, 5]
            got, want = fast(x, h0, lengths), slow(x, h0, lengths)
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, **tol)
            d_out = rng.standard_normal(got[0].shape).astype(dtype)
            d_h = rng.standard_normal(h0.shape).astype(dtype)
            for a, b in zip(fast.backward(d_out, d_h), slow.backward(d_out, d_h)):
                np.testing.assert_allclose(a, b, **tol)
            for name in fast.grads:
                np.testing.assert_allclose(fast.grads[name], slow.grads[name], **tol, err_msg=name)


@pytest.mark.parametrize("mode", LAYERS)
def test_layer_gradients_match_finite_differences(mode):
    rng = np.random.default_rng(3)
    D, H = (4, 3) if mode == "mut3" else (3, 3)
    bi = mode != "mut2"  # mut1: one bidirectional layer; mut3: two
    layers = 2 if mode != "mut1" else 1
    layer = LAYERS[mode](D, H, num_layers=layers, bidirectional=bi, dtype=np.float64, seed=4)
    x = rng.standard_normal((5, 3, D))
    hx = rng.standard_normal((layers * (1 + bi), 3, H))
    lengths = np.array([5, 2, 4])
    check_gradients(layer, lambda: layer(x, hx, lengths), x, hx, rng)


def _run(mode, threads, dtype, H):
    rnncore.set_num_threads(threads)
    try:
        D, bi = (7, True) if mode == "mut3" else (H, False)
        layer = LAYERS[mode](D, H, num_layers=2, bidirectional=bi, dtype=dtype, seed=3)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((9, 37, D)).astype(dtype)  # N = 37: several batch shards
        out, _ = layer(x, lengths=rng.integers(1, 10, size=37))
        dx, _ = layer.backward(rng.standard_normal(out.shape).astype(dtype))
        return [out, dx, *(layer.grads[k] for k in sorted(layer.grads))]
    finally:
        rnncore.set_num_threads(None)


@pytest.mark.parametrize("mode", LAYERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("H", [12, 256])  # batch shards; steps split across threads
def test_bitwise_equal_at_1_and_2_threads(mode, dtype, H):
    for a, b in zip(_run(mode, 1, dtype, H), _run(mode, 2, dtype, H)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["mut1", "mut2"])
def test_mut1_and_mut2_refuse_an_input_size_other_than_h(mode):
    rng = np.random.default_rng(5)
    state = rng.bit_generator.state
    with pytest.raises(ArgumentError, match=r"input_size \(3\) must equal hidden_size \(4\)"):
        LAYERS[mode](3, 4, rng=rng)
    assert rng.bit_generator.state == state  # refused before any parameter is drawn
    with pytest.raises(ArgumentError, match="bidirectional"):
        LAYERS[mode](4, 4, num_layers=2, bidirectional=True)
    LAYERS[mode](4, 4, num_layers=2)  # one direction: every layer reads H features
    LAYERS[mode](4, 4, bidirectional=True)
    layer = nn.MUT3(3, 4, num_layers=2, bidirectional=True)  # MUT3 takes any input size
    assert layer.weight_ih_l1.shape == (12, 8)


MUT_STEP = """
import numpy as np, rnncore
from rnncore import nn
rng = np.random.default_rng(0)
arrays = {}
for cls, D, bi in ((nn.MUT1, 40, False), (nn.MUT2, 40, True), (nn.MUT3, 7, True)):
    for dtype in (np.float32, np.float64):
        layer = cls(D, 40, num_layers=1 + (cls is not nn.MUT2), bidirectional=bi,
                    dtype=dtype, seed=3)
        x = rng.standard_normal((9, 37, D)).astype(dtype)
        out, h_n = layer(x, lengths=rng.integers(1, 10, size=37))
        dx, dh0 = layer.backward(rng.standard_normal(out.shape).astype(dtype))
        key = f"{cls.__name__}_{np.dtype(dtype).name}"
        arrays.update({f"{key}_out": out, f"{key}_dx": dx, f"{key}_dh0": dh0})
        arrays.update({f"{key}_{k}": g for k, g in layer.grads.items()})
np.savez(OUT, **arrays)
print(rnncore.get_num_threads())
"""


def test_same_bits_at_one_and_two_threads_from_the_environment(tmp_path):
    runs = []
    for threads in ("1", "2"):
        out = tmp_path / f"run{threads}.npz"
        env = {**os.environ, "RNNCORE_NUM_THREADS": threads}
        code = f"OUT = {str(out)!r}\n" + textwrap.dedent(MUT_STEP)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == threads
        runs.append(np.load(out))
    assert set(runs[0].files) == set(runs[1].files)
    for name in runs[0].files:
        np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)


CELLS = {"mut1": nn.MUT1Cell, "mut2": nn.MUT2Cell, "mut3": nn.MUT3Cell}


@pytest.mark.parametrize("mode", LAYERS)
def test_an_unrolled_cell_is_the_one_layer_sequence(mode):
    """The cell run for T steps, and its backward popped for T steps, give the
    outputs and every gradient of the one-layer layer with the same weights."""
    D, H, T, N = (5, 3, 6, 4) if mode == "mut3" else (3, 3, 6, 4)
    layer = LAYERS[mode](D, H, dtype=np.float64, seed=6)
    cell = CELLS[mode](D, H, dtype=np.float64, seed=7)
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # drop _l0
    assert {k: v.shape for k, v in cell.state_dict().items()} == {
        k[:-3]: v.shape for k, v in layer.state_dict().items()
    }
    rng = np.random.default_rng(8)
    x, h0 = rng.standard_normal((T, N, D)), rng.standard_normal((1, N, H))
    output, h_n = layer(x, h0)
    h, steps = h0[0], []
    for t in range(T):
        h = cell(x[t], h)
        steps.append(h)
    np.testing.assert_allclose(np.stack(steps), output, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h, h_n[0], rtol=1e-12, atol=1e-14)
    d_out = rng.standard_normal(output.shape)
    dx, dh0 = layer.backward(d_out)
    dh, dxs = np.zeros((N, H)), []
    for t in reversed(range(T)):
        dx_t, dh = cell.backward(d_out[t] + dh)
        dxs.append(dx_t)
    np.testing.assert_allclose(np.stack(dxs[::-1]), dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh, dh0[0], rtol=1e-10, atol=1e-12)
    for name, g in cell.grads.items():
        np.testing.assert_allclose(g, layer.grads[name + "_l0"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", ["mut1", "mut2"])
def test_mut1_and_mut2_cells_refuse_an_input_size_other_than_h(mode):
    with pytest.raises(ArgumentError, match=r"input_size \(2\) must equal hidden_size \(3\)"):
        CELLS[mode](2, 3)
    assert repr(CELLS[mode](3, 3, bias=False)) == f"{mode.upper()}Cell(3, 3, bias=False)"
