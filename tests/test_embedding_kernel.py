"""The embedding's backward on the compiled kernel (``rust/src/embedding.rs``):
bitwise ``numpy.add.at`` (the same sums in the same order) over dtypes, widths
that are not multiples of its column blocks, repeated ids and thread counts,
through ``Embedding.backward`` and the kernel itself."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncore
from rnncore._native import kernels
from rnncore.nn import Embedding


@settings(max_examples=40, deadline=None)
@given(
    V=st.integers(1, 12),
    E=st.integers(1, 140),
    M=st.integers(0, 30),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_the_kernel_is_numpy_add_at(V, E, M, dtype, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, M)
    d = (rng.standard_normal((M, E)) * 100).astype(dtype)
    want = rng.standard_normal((V, E)).astype(dtype)
    got = want.copy()
    np.add.at(want, ids, d)
    kernels().embedding_backward(got, ids, d)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_backward_at_any_thread_count(padding_idx):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 9, (7, 11))
    d = rng.standard_normal((7, 11, 300)).astype(np.float32)
    want = np.zeros((9, 300), np.float32)
    np.add.at(want, ids.reshape(-1), d.reshape(-1, 300))
    if padding_idx is not None:
        want[padding_idx] = 0
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            emb = Embedding(9, 300, padding_idx=padding_idx, seed=0)
            emb(ids)
            emb.backward(d)
            np.testing.assert_array_equal(emb.grads["weight"], want)
    finally:
        rnncore.set_num_threads(None)


def test_the_kernel_refuses_bad_arguments():
    k = kernels()
    g = np.zeros((4, 3))
    with pytest.raises(ValueError, match="ids"):
        k.embedding_backward(g, np.array([0, 4]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="d_out"):
        k.embedding_backward(g, np.array([0, 1]), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="d_out"):
        k.embedding_backward(g, np.array([0, 1]), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="grad"):
        k.embedding_backward(np.zeros((4, 3)).T, np.array([0]), np.zeros((1, 4)))


def test_an_unaligned_gradient_takes_numpy_add_at():
    emb = Embedding(5, 3, dtype="float64", seed=0)
    odd = np.zeros(5 * 3 * 8 + 1, np.uint8)[1:].view(np.float64).reshape(5, 3)
    emb.grads["weight"] = odd
    ids = np.array([1, 1, 4])
    emb(ids)
    emb.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(odd[1], [2, 2, 2])
    with pytest.raises(ValueError, match=r"grad.*aligned"):
        kernels().embedding_backward(odd, ids, np.ones((3, 3)))
