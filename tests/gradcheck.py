"""Central finite differences, shared by the gradient tests."""

from __future__ import annotations

import numpy as np


def numeric_gradient(f, a, eps=1e-6):
    """Central differences of the scalar ``f()`` with respect to each element of
    array ``a``, which is perturbed in place and restored."""
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        old = a[index]
        a[index] = old + eps
        plus = f()
        a[index] = old - eps
        minus = f()
        a[index] = old
        grad[index] = (plus - minus) / (2 * eps)
    return grad
