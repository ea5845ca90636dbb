"""The kernels' dense product (`_rnncore.matmul`) that `nn.Linear` uses for large
products: numpy's result to rounding, every transpose, the same bits at any
thread count, named errors; and Linear on either path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncore
from rnncore import nn
from rnncore._native import kernels
from rnncore.errors import DTypeError, ShapeError
from rnncore.nn import linear


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 70), k=st.integers(1, 70), n=st.integers(1, 70),
    ta=st.booleans(), tb=st.booleans(), f64=st.booleans(), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_the_product_is_numpys(m, k, n, ta, tb, f64, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    got = kernels().matmul(a, b, ta, tb)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    assert got.shape == (m, n) and got.dtype == dtype
    tol = 1e-12 if f64 else 2e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.sqrt(k))


def test_the_same_bits_at_1_2_and_4_threads(rng):
    a = rng.standard_normal((300, 257)).astype(np.float32)
    b = rng.standard_normal((65, 257)).astype(np.float32)
    runs = []
    try:
        for threads in (1, 2, 4):
            rnncore.set_num_threads(threads)
            runs.append(kernels().matmul(a, b, False, True))
    finally:
        rnncore.set_num_threads(None)
    assert all(np.array_equal(runs[0], r) for r in runs[1:])


def test_misuse_is_named():
    k = kernels()
    with pytest.raises(ShapeError, match="b"):
        k.matmul(np.zeros((3, 4)), np.zeros((5, 2)))
    with pytest.raises(DTypeError, match="b"):
        k.matmul(np.zeros((3, 4)), np.zeros((4, 2), np.float32))
    with pytest.raises(ShapeError, match="a"):
        k.matmul(np.zeros(4), np.zeros((4, 2)))


def test_linear_gives_the_same_on_either_path(rng, monkeypatch):
    layer = nn.Linear(70, 33, dtype=np.float64, seed=0)
    x = rng.standard_normal((40, 70))
    d = rng.standard_normal((40, 33))
    results = []
    for limit in (0, 10**18):  # the kernels' product, then numpy's
        monkeypatch.setattr(linear, "KERNEL_PRODUCT", limit)
        y = layer.forward(x)
        dx = layer.backward(d)
        results.append((y, dx, layer.grads["weight"].copy(), layer.grads["bias"].copy()))
        layer.zero_grad()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
