"""A lookup table of vectors, drop-in for :class:`torch.nn.Embedding`."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncore import _native, _validate
from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.nn._base import Array, Module
from rnncore.nn.functional import _in_range, _integers


class Embedding(Module):
    """Row ``ids`` of a ``(V, E)`` table: ``ids (...) -> (..., E)``.

    Args:
        num_embeddings: ``V``, size of the vocabulary.
        embedding_dim: ``E``, size of each vector.
        padding_idx: a row that stays zero and gets no gradient (torch's
            ``padding_idx``), or None.
        dtype: ``np.float32`` (default) or ``np.float64``.
        seed, rng: where the initial weights come from (see :class:`~rnncore.nn.RNN`).

    Attributes:
        weight: ``(V, E)``, drawn from ``N(0, 1)`` like torch.

    :meth:`backward` takes ``d_out (..., E)`` and scatter-adds it into
    ``grads["weight"]``: row ``v`` receives the sum of ``d_out`` over every
    position where ``ids == v``.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__(dtype=dtype, seed=seed, rng=rng)
        self.num_embeddings = _validate.positive_int("num_embeddings", num_embeddings)
        self.embedding_dim = _validate.positive_int("embedding_dim", embedding_dim)
        V, E = self.num_embeddings, self.embedding_dim
        if padding_idx is not None:
            if np.ndim(padding_idx) != 0:
                raise ArgumentError(f"padding_idx must be a single integer, got {padding_idx!r}")
            _in_range("padding_idx", _integers("padding_idx", padding_idx), V)
            padding_idx = int(padding_idx)
        self.padding_idx = padding_idx
        _validate.buffer_len("weight", V, E)  # a named error for sizes no machine holds
        with _validate.allocating("weight"):
            weight = self.rng.standard_normal((V, E))
        if padding_idx is not None:
            weight[padding_idx] = 0
        self._register("weight", weight)
        self._ids: Array | None = None  # (M,) flattened ids of the most recent forward

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + ("" if self.padding_idx is None else f", padding_idx={self.padding_idx}")

    def forward(self, ids: Any) -> Array:
        """``ids`` (integers in ``0..V-1``, any shape) -> ``(*ids.shape, E)``."""
        arr = _integers("ids", ids)
        _in_range("ids", arr, self.num_embeddings)
        return self._forward(arr)

    def _forward(self, ids: Array) -> Array:
        """:meth:`forward` for ids already checked to be integers in range."""
        self._ids = ids.reshape(-1)
        return self._params["weight"][ids]  # (..., E), a copy

    def backward(self, d_out: Any) -> None:
        """Scatter-add ``d_out (*ids.shape, E)`` into ``grads["weight"]``; returns None."""
        if self._ids is None:
            raise StateError("Embedding.backward() needs a forward() call first")
        d = _validate.float_array("d_out", d_out, self.dtype)
        E, M = self.embedding_dim, self._ids.size
        if d.ndim == 0 or d.shape[-1] != E or d.size != M * E:
            raise ShapeError(
                f"d_out must have shape (*ids.shape, E) with {M} ids and E={E}, got {d.shape}"
            )
        _validate.finite("d_out", d)
        self._backward(d)

    def _backward(self, d_out: Array, ids: Array | None = None) -> None:
        """:meth:`backward` without checks; ``ids`` (``M`` of them, in range): the rows
        ``d_out`` belongs to when they are not those of the last forward (the ids a
        scheduled-sampling decoder actually fed)."""
        d2 = d_out.reshape(-1, self.embedding_dim)  # (M, E)
        rows = self._ids if ids is None else ids.reshape(-1)
        grad = self.grads["weight"]  # (V, E)
        kernels = _native.kernels_if_built()
        if kernels is not None and _native.writable_in_place(grad):
            # the same sums in the same order as numpy.add.at, columns in parallel
            kernels.embedding_backward(grad, rows, d2)
        else:
            np.add.at(grad, rows, d2)
        if self.padding_idx is not None:
            self.grads["weight"][self.padding_idx] = 0
