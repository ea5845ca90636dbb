"""The compiled softmax cross-entropy (``rust/src/loss.rs``) behind
:func:`rnncore.nn.functional.softmax_cross_entropy`.

Against the NumPy form (:func:`_numpy_cross_entropy`, what runs without the
extension) in float64 to 1e-12 and float32 to float32 rounding, over shapes with
1s and widths that are not multiples of the vector lanes, with and without
weights; the gradient in place; bitwise the same at 1, 2 and 3 threads and at
every SIMD level; non-finite rows; and the models' losses through it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncore
from rnncore._native import kernels
from rnncore.models import CharLM, LMConfig
from rnncore.nn.functional import _numpy_cross_entropy, softmax_cross_entropy


def case(M, V, weighted, dtype, seed, spread=8.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((M, V)) * spread).astype(dtype)
    t = rng.integers(0, V, M)
    w = None
    if weighted:
        w = rng.uniform(0, 2, M)
        w[rng.random(M) < 0.3] = 0.0
    return x, t, w


@settings(max_examples=60, deadline=None)
@given(
    M=st.integers(1, 40),
    V=st.integers(1, 70),
    weighted=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    scale=st.sampled_from([1.0, 0.25, 1 / 3]),
    seed=st.integers(0, 2**16),
)
def test_the_kernel_is_the_numpy_form(M, V, weighted, dtype, scale, seed):
    x, t, w = case(M, V, weighted, dtype, seed)
    want_loss, want = _numpy_cross_entropy(x.copy(), t, w, scale)
    got = x.copy()
    loss = kernels().cross_entropy(got, t, w, scale)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    assert loss == pytest.approx(want_loss, rel=tol, abs=tol)
    np.testing.assert_allclose(got, want, atol=tol * 4, rtol=0)
    if w is not None:
        assert (got[w == 0] == 0).all()


def test_in_place_and_copies():
    x, t, _ = case(6, 9, False, np.float32, 0)
    keep = x.copy()
    loss, d = softmax_cross_entropy(x, t)
    np.testing.assert_array_equal(x, keep)  # the caller's logits are left alone
    loss_in, d_in = softmax_cross_entropy(x, t, overwrite_logits=True)
    assert d_in is x and loss_in == loss
    np.testing.assert_array_equal(d_in, d)
    wide = np.asfortranarray(keep)  # not C-contiguous: copied even when asked
    _, d_f = softmax_cross_entropy(wide, t, overwrite_logits=True)
    assert d_f is not wide
    np.testing.assert_array_equal(wide, keep)
    np.testing.assert_array_equal(d_f, d)


def test_bitwise_at_any_thread_count():
    x, t, w = case(300, 1000, True, np.float32, 1)
    runs = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            g = x.copy()
            runs.append((kernels().cross_entropy(g, t, w, 0.5), g))
    finally:
        rnncore.set_num_threads(None)
    for loss, g in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(g, runs[0][1])


def test_bitwise_at_every_simd_level(tmp_path):
    code = (
        "import numpy as np; from rnncore._native import kernels\n"
        "rng = np.random.default_rng(2); x = rng.standard_normal((37, 203)) * 9\n"
        "t = rng.integers(0, 203, 37); l = kernels().cross_entropy(x, t, None, 0.1)\n"
        f"np.save({str(tmp_path)!r} + '/' + __import__('os').environ['RNNCORE_SIMD'], x)\n"
        "print(repr(l))"
    )
    out = {}
    for level in ("avx512", "avx2", "scalar"):
        env = {**os.environ, "RNNCORE_SIMD": level}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        out[level] = (done.stdout, np.load(tmp_path / f"{level}.npy"))
    for level in ("avx2", "scalar"):
        assert out[level][0] == out["avx512"][0]
        np.testing.assert_array_equal(out[level][1], out["avx512"][1])


def test_huge_and_non_finite_rows():
    x = np.array([[3e38, 3e38, -3e38, 0.0]], np.float32)
    loss, d = softmax_cross_entropy(x, np.array([0]))
    assert loss == pytest.approx(np.log(2), rel=1e-6)
    np.testing.assert_allclose(d, [[-0.5, 0.5, 0.0, 0.0]], atol=1e-7)
    for bad in (np.nan, np.inf):
        x = np.array([[0.0, bad, 1.0], [2.0, 0.5, 0.5]])
        loss, d = softmax_cross_entropy(x, np.array([0, 1]))
        assert np.isnan(loss) and np.isnan(d[0]).all() and np.isfinite(d[1]).all()
        loss, d = softmax_cross_entropy(x, np.array([0, 1]), mask=np.array([0, 1]))
        assert np.isfinite(loss) and (d[0] == 0).all()
    loss, _ = softmax_cross_entropy(np.array([[-np.inf, 0.0, 0.0]]), np.array([0]))
    assert loss == np.inf


def test_kernel_refuses_what_it_cannot_write():
    k = kernels()
    x, t, _ = case(3, 4, False, np.float64, 0)
    ro = x.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="logits"):
        k.cross_entropy(ro, t)
    with pytest.raises(ValueError, match="logits"):
        k.cross_entropy(np.asfortranarray(x), t)
    with pytest.raises(ValueError, match="targets"):
        k.cross_entropy(x.copy(), np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="targets"):
        k.cross_entropy(x.copy(), np.array([0, 1]))
    with pytest.raises(ValueError, match="weights"):
        k.cross_entropy(x.copy(), t, np.array([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="scale"):
        k.cross_entropy(x.copy(), t, None, 0.0)
    with pytest.raises(TypeError, match="logits"):
        k.cross_entropy(x.astype(np.int64), t)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_language_model_loss_is_the_numpy_one(dtype, monkeypatch):
    """CharLM's loss and gradients with the kernel against the NumPy form."""
    import rnncore.nn.functional as F

    def run(use_numpy):
        if use_numpy:
            monkeypatch.setattr(
                F, "_fused_cross_entropy", lambda x, t, w, s, o: _numpy_cross_entropy(x, t, w, s)
            )
        else:
            monkeypatch.undo()
        m = CharLM(LMConfig(vocab_size=300, hidden_size=16, embedding_dim=8, dtype=dtype, seed=3))
        ids = np.random.default_rng(0).integers(0, 300, (4, 9))
        mask = np.ones((4, 9), bool)
        mask[1, 5:] = False
        loss, _ = m.loss(ids, np.roll(ids, -1, axis=1), mask=mask)
        m.backward()
        return loss, {k: g.copy() for k, g in m.grads.items()}

    want_loss, want = run(True)
    loss, got = run(False)
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert loss == pytest.approx(want_loss, rel=tol)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], atol=tol, rtol=0, err_msg=k)


def unaligned(shape, dtype=np.float64):
    """A C-contiguous, writeable array whose data is not aligned to its dtype."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.zeros(n + 1, np.uint8)[1:].view(dtype).reshape(shape)


def test_unaligned_logits_are_copied_or_refused_by_name():
    x, t, _ = case(2, 3, False, np.float64, 4)
    odd = unaligned((2, 3))
    odd[...] = x
    assert not odd.flags.aligned
    want, d_want = softmax_cross_entropy(x, t)
    got, d = softmax_cross_entropy(odd, t, overwrite_logits=True)
    assert got == want and d is not odd
    np.testing.assert_array_equal(d, d_want)
    with pytest.raises(ValueError, match=r"logits.*aligned"):
        kernels().cross_entropy(odd, t)


@pytest.mark.parametrize("scale", [1e-310, 5e-324, 1e300, 1e308])
def test_mask_weights_of_any_magnitude_give_the_same_mean(scale):
    x, t, _ = case(3, 4, False, np.float64, 5)
    w = np.array([1.0, 0.0, 1.0])
    want, d_want = softmax_cross_entropy(x, t, mask=w)
    got, d = softmax_cross_entropy(x, t, mask=w * scale)
    assert got == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(d, d_want, rtol=1e-12, atol=0)


def test_overwrite_logits_is_a_flag():
    x, t, _ = case(2, 3, False, np.float64, 6)
    with pytest.raises(ValueError, match="overwrite_logits"):
        softmax_cross_entropy(x, t, overwrite_logits="no")
