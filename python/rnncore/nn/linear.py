"""A fully connected layer, drop-in for :class:`torch.nn.Linear`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rnncore import _native, _validate
from rnncore.errors import ShapeError, StateError
from rnncore.nn._base import Array, Module

# Multiply-adds from which a product runs on the compiled kernels' GEMM (their
# own thread pool) instead of numpy's BLAS, whose threads keep spinning after a
# product and hold the cores the recurrent kernels run on next.
KERNEL_PRODUCT = 1 << 16


def _product(a: Array, b: Array, transpose_a: bool = False, transpose_b: bool = False) -> Array:
    """``op(a) @ op(b)`` for 2-D arrays of one float dtype: on the compiled
    kernels when the product is large enough and they load, else numpy."""
    m, k = (a.shape[1], a.shape[0]) if transpose_a else a.shape
    n = b.shape[0] if transpose_b else b.shape[1]
    kernels = _native.kernels_if_built() if m * n * k >= KERNEL_PRODUCT else None
    if kernels is not None:
        return kernels.matmul(
            np.ascontiguousarray(a), np.ascontiguousarray(b), transpose_a, transpose_b
        )
    return (a.T if transpose_a else a) @ (b.T if transpose_b else b)


class Linear(Module):
    r"""Affine map of the last axis: :math:`y = x W^T + b`.

    Args:
        in_features: ``D``, size of the last axis of the input.
        out_features: ``O``, size of the last axis of the output.
        bias: if False, there is no ``bias`` (the attribute is None).
        dtype: ``np.float32`` (default) or ``np.float64``; inputs must have it.
        seed, rng: where the initial weights come from (see :class:`~rnncore.nn.RNN`).

    Attributes:
        weight: ``(O, D)``, drawn from ``U(-1/sqrt(D), 1/sqrt(D))`` like torch.
        bias: ``(O,)``, drawn from the same distribution, or None.

    Forward ``x (..., D) -> (..., O)``; :meth:`backward` takes ``d_out (..., O)``,
    adds to ``grads["weight"]`` and ``grads["bias"]`` and returns ``dx (..., D)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype=dtype, seed=seed, rng=rng)
        self.in_features = _validate.positive_int("in_features", in_features)
        self.out_features = _validate.positive_int("out_features", out_features)
        bias = _validate.flag("bias", bias)
        bound = 1.0 / math.sqrt(self.in_features)
        shape = (self.out_features, self.in_features)
        _validate.buffer_len("weight", *shape)  # a named error for sizes no machine holds
        with _validate.allocating("weight"):
            self._register("weight", self.rng.uniform(-bound, bound, size=shape))
        if bias:
            self._register("bias", self.rng.uniform(-bound, bound, size=self.out_features))
        else:
            self.bias = None
        self._x: Array | None = None  # (M, D) input of the most recent forward

    def extra_repr(self) -> str:
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        return s + ("" if "bias" in self._params else ", bias=False")

    def forward(self, x: Any) -> Array:
        """``x (..., D)`` of the layer's dtype -> ``(..., O)``; kept for :meth:`backward`."""
        x = _validate.float_array("x", x, self.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ShapeError(
                f"x must have in_features={self.in_features} entries on its last axis, "
                f"got shape {x.shape}"
            )
        _validate.finite("x", x)
        return self._forward(x)

    def _forward(self, x: Array) -> Array:
        """:meth:`forward` without input checks (for models feeding one layer into the next)."""
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (M, D)
        y = _product(x2, self._params["weight"], transpose_b=True)  # (M, O)
        if "bias" in self._params:
            y += self._params["bias"]
        self._x = x2
        return y.reshape(*lead, self.out_features)

    def backward(self, d_out: Any) -> Array:
        """Gradient of the most recent forward: ``d_out (..., O)`` -> ``dx (..., D)``.

        Adds ``d_out^T x`` to ``grads["weight"]`` and the sum of ``d_out`` over
        every leading axis to ``grads["bias"]``.
        """
        if self._x is None:
            raise StateError("Linear.backward() needs a forward() call first")
        d = _validate.float_array("d_out", d_out, self.dtype)
        expected = (self._x.shape[0], self.out_features)
        if d.ndim == 0 or math.prod(d.shape[:-1]) != expected[0] or d.shape[-1] != expected[1]:
            raise ShapeError(
                f"d_out must have the shape of the forward's output (..., {self.out_features}) "
                f"with {expected[0]} rows in all, got {d.shape}"
            )
        _validate.finite("d_out", d)
        return self._backward(d)

    def _backward(self, d_out: Array) -> Array:
        """:meth:`backward` without checks; ``d_out`` has the forward output's shape."""
        lead = d_out.shape[:-1]
        d2 = d_out.reshape(-1, self.out_features)  # (M, O)
        self.grads["weight"] += _product(d2, self._x, transpose_a=True)  # (O, D)
        if "bias" in self.grads:
            self.grads["bias"] += d2.sum(axis=0)
        dx = _product(d2, self._params["weight"])  # (M, D)
        return dx.reshape(*lead, self.in_features)  # (..., D)
