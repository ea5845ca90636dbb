"""Inverted dropout, drop-in for :class:`torch.nn.Dropout`."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ShapeError, StateError
from rnncore.nn._base import Array, Module


class Dropout(Module):
    """Zero each entry with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Only in training mode; in eval mode (and with ``p = 0``) the layer is the
    identity. The expected value of every entry is unchanged either way.

    Args:
        p: probability of zeroing an entry, in ``[0, 1)``.
        dtype: ``np.float32`` (default) or ``np.float64``; inputs must have it.
        seed, rng: where the masks come from: a ``numpy.random.Generator`` ``rng``
            (shared with other layers if you like), else ``default_rng(seed)``.

    Forward ``x (any shape) -> same shape``; :meth:`backward` multiplies
    ``d_out`` by the mask of the most recent forward.
    """

    def __init__(
        self,
        p: float = 0.5,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype=dtype, seed=seed, rng=rng)
        self.p = _validate.probability("p", p)
        self._mask: Array | None = None  # scaled keep-mask of the last forward, None = identity
        self._shape: tuple[int, ...] | None = None  # shape of the last forward's input

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: Any) -> Array:
        """``x`` of the layer's dtype -> ``x * mask`` (a new array) or ``x`` itself."""
        x = _validate.float_array("x", x, self.dtype)
        return self._forward(x)

    def _forward(self, x: Array) -> Array:
        """:meth:`forward` for an array already of the layer's dtype."""
        self._shape = x.shape
        self._mask = None
        if not self.training or self.p == 0:
            return x
        keep = self.rng.random(x.shape, dtype=self.dtype) >= self.p  # same shape as x
        self._mask = keep.astype(self.dtype) / self.dtype.type(1.0 - self.p)
        return x * self._mask

    def backward(self, d_out: Any) -> Array:
        """``d_out`` (the forward output's shape) -> ``d_out * mask``."""
        if self._shape is None:
            raise StateError("Dropout.backward() needs a forward() call first")
        d = _validate.float_array("d_out", d_out, self.dtype)
        if d.shape != self._shape:
            raise ShapeError(
                f"d_out must have the forward input's shape {self._shape}, got {d.shape}"
            )
        return self._backward(d)

    def _backward(self, d_out: Array) -> Array:
        """:meth:`backward` without checks."""
        return d_out if self._mask is None else d_out * self._mask
