"""Single-step RNN, LSTM and GRU cells: drop-ins for torch.nn.RNNCell/LSTMCell/GRUCell.

A cell step is the sequence kernel with ``T = 1``. In training mode every step
pushes what its backward needs on a stack and :meth:`_CellBase.backward` pops the
most recent one, so a decoder that runs ``cell`` for ``t = 0 .. T-1`` backpropagates
by calling ``cell.backward`` for ``t = T-1 .. 0``. In eval mode nothing is kept.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, StateError
from rnncore.nn._base import CELL_STATE, PEEPHOLE, Array, KernelModule, State, lstm_mode
from rnncore.reference.cells import weight_rows


class _CellBase(KernelModule):
    """Shared by :class:`RNNCell`, :class:`LSTMCell` and :class:`GRUCell`."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        super().__init__(hidden_size, dtype=dtype, seed=seed, rng=rng, backend=backend)
        self._mode = mode
        self.input_size = _validate.positive_int("input_size", input_size)
        self.bias = _validate.flag("bias", bias)
        # One entry per cached step: (x (1, N, D), kernel cache, batched).
        self._stack: list[tuple[Array, Any, bool]] = []
        H = self.hidden_size
        IH, HH = weight_rows(mode, H)  # G*H each, fewer for the MUT cells
        self._add_parameter("weight_ih", (IH, self.input_size))
        self._add_parameter("weight_hh", (HH, H))
        if self.bias:
            self._add_parameter("bias_ih", (IH,))
            self._add_parameter("bias_hh", (HH,))
        if mode in PEEPHOLE:
            self._add_parameter("weight_peep", (3 * H,))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self._mode == "rnn_relu":
            s += ", nonlinearity='relu'"
        if self._mode == "gru_reset_before":
            s += ", reset_after=False"
        if self._mode == "lstm_cifg":
            s += ", cifg=True"
        if self._mode == "lstm_peephole":
            s += ", peephole=True"
        return s

    def clear_cache(self) -> None:
        """Drop every cached step."""
        self._stack.clear()

    def forward(self, x: Any, hx: State = None) -> State:
        """One step; also ``cell(x, hx)``.

        Args:
            x: ``(N, D)``, or unbatched ``(D,)``.
            hx: the previous state ``h`` of shape ``(N, H)`` (``(H,)`` unbatched), a
                tuple ``(h, c)`` of two such arrays for :class:`LSTMCell`; None for zeros.

        Returns:
            the next state ``h'`` ``(N, H)``, or ``(h', c')`` for :class:`LSTMCell`.
            In training mode the step is cached for :meth:`backward`.
        """
        x = _validate.float_array("x", x, self.dtype)
        _validate.ndim("x", x, (1, 2), "2-D (N, D) or 1-D unbatched (D,)")
        batched = x.ndim == 2
        if batched:
            _validate.nonempty("x", x, [(0, "batch", "N")])
        _validate.features("x", x, self.input_size)
        _validate.finite("x", x)
        x = x.reshape(1, -1, self.input_size)  # (1, N, D): a sequence of one step
        N, H = x.shape[1], self.hidden_size
        state_shape, meaning = ((N, H), "(N, H)") if batched else ((H,), "(H,)")
        h, c = self._state("hx", hx, ("h", "c"), state_shape, meaning)
        h = np.zeros((N, H), self.dtype) if h is None else h.reshape(N, H)
        if self._mode in CELL_STATE:
            c = np.zeros((N, H), self.dtype) if c is None else c.reshape(N, H)
        _, h_next, c_next, cache = self._kernel_forward("", x, h, c, None, reverse=False)
        if self.training and cache is not None:  # None under rnncore.no_grad()
            self._stack.append((x, cache, batched))
        if not batched:
            h_next = h_next[0]  # (H,)
            c_next = None if c_next is None else c_next[0]
        return self._pack(h_next, c_next)

    def backward(self, d_h: Any, d_c: Any = None) -> tuple[Array, State]:
        """Backpropagate through the most recent cached step, and drop it.

        Parameter gradients are added to :attr:`grads`.

        Args:
            d_h: gradient of the loss with respect to ``h'``, shape ``(N, H)`` (or
                ``(H,)`` unbatched); for an unrolled cell, include the ``dh_prev``
                that the backward of the following step returned.
            d_c: :class:`LSTMCell` only: gradient with respect to ``c'``, or None.

        Returns:
            ``(dx, d_hx)``: ``dx`` with the shape of ``x``, and ``dh_prev`` or
            ``(dh_prev, dc_prev)`` with the shape of the previous state.
        """
        if not self._stack:
            raise StateError(
                f"{type(self).__name__}.backward() has no cached step: every forward() "
                "in training mode caches one and every backward() consumes the latest "
                "(eval mode caches nothing)"
            )
        if d_c is not None and self._mode not in CELL_STATE:
            raise ArgumentError(f"d_c is only used by LSTMCell, not {type(self).__name__}")
        x, cache, batched = self._stack[-1]
        N, H = x.shape[1], self.hidden_size
        state_shape, meaning = ((N, H), "(N, H)") if batched else ((H,), "(H,)")
        if d_h is None:
            raise ArgumentError("d_h must be an array, got None")
        d_h = self._array("d_h", d_h, state_shape, meaning)
        d_c = None if d_c is None else self._array("d_c", d_c, state_shape, meaning)
        self._stack.pop()
        d_out = d_h.reshape(1, N, H)  # d_output of the one-step sequence
        d_c = None if d_c is None else d_c.reshape(N, H)
        dx, dh_prev, dc_prev = self._kernel_backward("", x, None, False, cache, d_out, None, d_c)
        if batched:
            return dx[0], self._pack(dh_prev, dc_prev)  # (N, D), (N, H)
        dc_prev = None if dc_prev is None else dc_prev[0]
        return dx[0, 0], self._pack(dh_prev[0], dc_prev)  # (D,), (H,)


_CELL_DOC = """
    Args:
        input_size: ``D``, features of the input ``x``.
        hidden_size: ``H``, features of the hidden state.
        bias: if False, the cell has no ``bias_ih``/``bias_hh``.
        dtype: ``np.float32`` (default) or ``np.float64``; inputs must have it.
        seed, rng: a ``numpy.random.Generator`` ``rng``, else
            ``np.random.default_rng(seed)``, for the initial weights.
        backend: the kernel module; None uses the compiled kernels. For debugging,
            ``backend=rnncore.reference`` runs the NumPy float64 reference.

    Inputs: ``x, hx=None``
        - **x**: ``(N, D)`` or unbatched ``(D,)``.
        - **hx**: {hx}
          None means zeros.

    Outputs: {out} with the shape ``(N, H)`` (``(H,)`` unbatched).

    Backward: ``dx, d_hx = cell.backward({d_args})`` pops the most recent step
    cached in training mode (last in, first out) and adds the parameter gradients to
    ``cell.grads``. Eval mode caches nothing; :meth:`clear_cache` empties the stack.

    Attributes:
        weight_ih: ``(G*H, D)``, weight_hh: ``(G*H, H)``, bias_ih, bias_hh: ``(G*H,)``,
        drawn from ``U(-1/sqrt(H), 1/sqrt(H))``; {G}.
"""


class RNNCell(_CellBase):
    __doc__ = r"""An Elman RNN cell with tanh or ReLU non-linearity.

    .. math::
        h' = \tanh(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})

    With ``nonlinearity='relu'``, ReLU replaces tanh.
""" + _CELL_DOC.format(
        hx="``h`` ``(N, H)`` (``(H,)`` unbatched).", out="``h'``", d_args="d_h", G="G = 1"
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        self.nonlinearity = _validate.choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        mode = f"rnn_{nonlinearity}"
        kw = dict(dtype=dtype, seed=seed, rng=rng, backend=backend)
        super().__init__(mode, input_size, hidden_size, bias, **kw)


class LSTMCell(_CellBase):
    __doc__ = r"""A long short-term memory (LSTM) cell.

    .. math::
        \begin{array}{ll}
        i = \sigma(W_{ii} x + b_{ii} + W_{hi} h + b_{hi}) \\
        f = \sigma(W_{if} x + b_{if} + W_{hf} h + b_{hf}) \\
        g = \tanh(W_{ig} x + b_{ig} + W_{hg} h + b_{hg}) \\
        o = \sigma(W_{io} x + b_{io} + W_{ho} h + b_{ho}) \\
        c' = f \odot c + i \odot g \\
        h' = o \odot \tanh(c')
        \end{array}

    ``cifg=True`` ties the input gate to ``1 - f`` (CIFG): the weights then hold
    the gates ``f, g, o`` (``G = 3``) under the same names.

    ``peephole=True`` adds peephole connections (Gers & Schmidhuber 2000): ``i`` and
    ``f`` also see ``c`` and ``o`` sees ``c'``, through per-unit weights,
    ``i = sigma(... + p_i * c)``, ``f = sigma(... + p_f * c)``, ``o = sigma(... + p_o *
    c')``; they are one more parameter, ``weight_peep`` ``(3H,)`` holding
    ``p_i|p_f|p_o``, drawn like the others from ``U(-1/sqrt(H), 1/sqrt(H))``. Not
    combinable with ``cifg=True``.
""" + _CELL_DOC.format(
        hx="a tuple ``(h, c)``, both ``(N, H)`` (``(H,)`` unbatched).",
        out="``(h', c')``, both",
        d_args="d_h, d_c=None",
        G="G = 4 (gates i|f|g|o)",
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        cifg: bool = False,
        peephole: bool = False,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        kw = dict(dtype=dtype, seed=seed, rng=rng, backend=backend)
        self.cifg = _validate.flag("cifg", cifg)
        self.peephole = _validate.flag("peephole", peephole)
        mode = lstm_mode(self.cifg, self.peephole)
        super().__init__(mode, input_size, hidden_size, bias, **kw)


class GRUCell(_CellBase):
    __doc__ = r"""A gated recurrent unit (GRU) cell.

    .. math::
        \begin{array}{ll}
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}) \\
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}) \\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})) \\
        h' = (1 - z) \odot n + z \odot h
        \end{array}

    With ``reset_after=False`` the reset gate acts on the state before the product,
    ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)`` (Cho et al. 2014; Keras's
    ``reset_after=False``), with the same parameter names and shapes.
""" + _CELL_DOC.format(
        hx="``h`` ``(N, H)`` (``(H,)`` unbatched).",
        out="``h'``",
        d_args="d_h",
        G="G = 3 (gates r|z|n)",
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        reset_after: bool = True,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        kw = dict(dtype=dtype, seed=seed, rng=rng, backend=backend)
        self.reset_after = _validate.flag("reset_after", reset_after)
        mode = "gru" if self.reset_after else "gru_reset_before"
        super().__init__(mode, input_size, hidden_size, bias, **kw)
