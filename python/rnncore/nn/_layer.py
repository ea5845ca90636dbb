"""The machinery of the multi-layer, optionally bidirectional sequence layers.

:class:`_RNNBase` is everything :class:`~rnncore.nn.RNN`, :class:`~rnncore.nn.LSTM`
and :class:`~rnncore.nn.GRU` do; they only choose the kernel mode. A layer runs the
kernels one direction of one layer at a time (the two directions of a layer side
by side on two cores, :mod:`rnncore.nn._directions`) and does the rest in NumPy:
concatenating the directions, feeding each layer's output to the next, dropout
between layers, and the chain rule of all that in :meth:`_RNNBase.backward`.
Dropout inside the recurrence (:mod:`rnncore.nn._noise`) is drawn here and
applied by the kernels."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore._grad import enable_grad, is_grad_enabled
from rnncore.errors import ArgumentError, StateError
from rnncore.nn._base import CELL_STATE, LAYER_NORM, PEEPHOLE, Array, KernelModule, State
from rnncore.nn._directions import both
from rnncore.nn._noise import LayerNoise, NoiseConfig, draw, dropout_mask
from rnncore.nn._trace import cache_arrays, names
from rnncore.reference.cells import weight_rows

SUFFIXES = ("", "_reverse")  # parameter-name suffix of direction 0 (forward), 1 (reverse)


@dataclass
class _Trace:
    """What :meth:`_RNNBase.backward` needs from the most recent forward call."""

    inputs: list[Array]  # input of layer k, (T, N, D) for k = 0 else (T, N, dirs*HS)
    caches: list[Any]  # kernel cache of layer k, direction d at index k*dirs + d
    masks: list[_Masks]  # what layer k drew
    lengths: Array | None  # (N,) int64, or None when every sequence has T steps
    batched: bool  # False for unbatched (T, D) input
    out_shape: tuple[int, ...]  # shape of the output as returned to the caller
    state_shape: tuple[int, ...]  # shape of h_n (and c_n) as returned to the caller
    state_meaning: str  # state_shape in symbols, for messages
    cell: tuple[tuple[int, ...], str] | None  # (shape, meaning) of c_n when not h_n's


# HS below is the width of h: the projection size P of an LSTM with projections
# (proj_size > 0), else H. The cell state c always has H features.


@dataclass
class _Masks:
    """The dropout of one layer in one forward call."""

    output: Array | None  # between layers, on layer k's output (T, N, dirs*H), or None
    noise: LayerNoise | None  # inside the recurrence, or None


class _RNNBase(KernelModule):
    """Shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`; see their docstrings."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        zoneout_cell: float = 0.0,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
        proj_size: int = 0,
    ) -> None:
        super().__init__(hidden_size, dtype=dtype, seed=seed, rng=rng, backend=backend)
        self._mode = mode
        self._noise = NoiseConfig.checked(
            mode,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            zoneout_cell=zoneout_cell,
        )
        self.proj_size = _validate.proj_size(proj_size, self.hidden_size, mode)
        if self.proj_size and self._noise.active:
            raise ArgumentError(
                "input_dropout, recurrent_dropout and zoneout are not available for the "
                "LSTM with projections (proj_size > 0)"
            )
        self.input_size = _validate.positive_int("input_size", input_size)
        self.num_layers = _validate.positive_int("num_layers", num_layers)
        self.bias = _validate.flag("bias", bias)
        self.batch_first = _validate.flag("batch_first", batch_first)
        self.dropout = _validate.probability("dropout", dropout)
        self.bidirectional = _validate.flag("bidirectional", bidirectional)
        self._trace: _Trace | None = None
        H, HS, dirs = self.hidden_size, self._state_size, self._dirs
        IH, HH = weight_rows(mode, H)  # G*H each, fewer for the MUT cells
        for k in range(self.num_layers):
            D_k = self.input_size if k == 0 else HS * dirs
            for sfx in SUFFIXES[:dirs]:
                self._add_parameter(f"weight_ih_l{k}{sfx}", (IH, D_k))
                self._add_parameter(f"weight_hh_l{k}{sfx}", (HH, HS))
                if self.bias:
                    self._add_parameter(f"bias_ih_l{k}{sfx}", (IH,))
                    self._add_parameter(f"bias_hh_l{k}{sfx}", (HH,))
                if mode in PEEPHOLE:
                    self._add_parameter(f"weight_peep_l{k}{sfx}", (3 * H,))
                if mode in LAYER_NORM:  # gains 1 and shifts 0: LN_x | LN_h (| LN_c)
                    self._add_constant(f"weight_ln_l{k}{sfx}", (LAYER_NORM[mode] * H,), 1.0)
                    self._add_constant(f"bias_ln_l{k}{sfx}", (LAYER_NORM[mode] * H,), 0.0)
                if self.proj_size:
                    self._add_parameter(f"weight_hr_l{k}{sfx}", (self.proj_size, H))

    @property
    def input_dropout(self) -> float:
        """Variational dropout rate of each layer's input (one mask per sequence)."""
        return self._noise.input_dropout

    @property
    def recurrent_dropout(self) -> float:
        """Variational dropout rate of the state the recurrent products read."""
        return self._noise.recurrent_dropout

    @property
    def zoneout(self) -> float:
        """Zoneout rate of the hidden state."""
        return self._noise.zoneout

    @property
    def zoneout_cell(self) -> float:
        """Zoneout rate of the cell state (LSTM cells)."""
        return self._noise.zoneout_cell

    @property
    def _dirs(self) -> int:
        """Number of directions, 2 if bidirectional else 1."""
        return 2 if self.bidirectional else 1

    @property
    def _state_size(self) -> int:
        """``HS``, the features of ``h``: ``proj_size`` if non-zero, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self._mode == "rnn_relu":
            s += ", nonlinearity='relu'"
        if self._mode == "gru_reset_before":
            s += ", reset_after=False"
        if self._mode == "gru_ln":
            s += ", layer_norm=True"
        if self._mode == "lstm_cifg":
            s += ", cifg=True"
        if self._mode == "lstm_peephole":
            s += ", peephole=True"
        if self._mode == "lstm_ln":
            s += ", layer_norm=True"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return ", ".join([s, *self._noise.repr_parts()])

    def clear_cache(self) -> None:
        """Forget the most recent forward call (frees its saved activations)."""
        self._trace = None

    # ----------------------------------------------------------------- forward

    def forward(self, x: Any, hx: State = None, lengths: Any = None) -> tuple[Array, State]:
        """Run the layer over whole sequences; also ``layer(x, hx, lengths)``.

        Args:
            x: ``(T, N, D)``, ``(N, T, D)`` if ``batch_first``, or unbatched ``(T, D)``.
            hx: initial state ``h_0`` of shape ``(num_layers*num_directions, N, H)``
                (``(num_layers*num_directions, H)`` when unbatched), a tuple
                ``(h_0, c_0)`` of two such arrays for :class:`LSTM`; None for zeros.
            lengths: optional ``(N,)`` integers in ``1..T``, in any order: sequence
                ``n`` is ``x[:lengths[n], n]``, as with torch's packed sequences.

        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for :class:`LSTM`: output
            ``(T, N, num_directions*H)`` (``(N, T, ...)`` if ``batch_first``; zero at
            steps ``t >= lengths[n]``) holds the last layer's states, directions
            concatenated [forward, reverse]; ``h_n``/``c_n`` have the shape of
            ``h_0`` and hold every layer's and direction's final state.
        """
        x = _validate.float_array("x", x, self.dtype)
        layout = "(N, T, D)" if self.batch_first else "(T, N, D)"
        _validate.ndim("x", x, (2, 3), f"3-D {layout} or 2-D unbatched (T, D)")
        batched = x.ndim == 3
        t_axis, n_axis = (1, 0) if batched and self.batch_first else (0, 1)
        axes = [(t_axis, "time", "T")] + ([(n_axis, "batch", "N")] if batched else [])
        _validate.nonempty("x", x, axes)
        _validate.features("x", x, self.input_size)
        _validate.finite("x", x)
        if lengths is not None and not batched:
            raise ArgumentError(f"lengths needs batched input, got unbatched x of shape {x.shape}")
        if not batched:
            x = x[:, None]  # (T, D) -> (T, 1, D)
        elif self.batch_first:
            x = x.transpose(1, 0, 2)  # (N, T, D) -> (T, N, D)
        T, N, _ = x.shape
        H, HS, LD = self.hidden_size, self._state_size, self.num_layers * self._dirs
        state_shape, meaning = self._state_shape(N, HS, batched)
        cell = self._state_shape(N, H, batched) if self.proj_size else None
        h0, c0 = self._state("hx", hx, ("h_0", "c_0"), state_shape, meaning, cell=cell)
        lens = None if lengths is None else _validate.lengths(lengths, N, T)
        h0 = np.zeros((LD, N, HS), self.dtype) if h0 is None else h0.reshape(LD, N, HS)
        if self._mode in CELL_STATE:
            c0 = np.zeros((LD, N, H), self.dtype) if c0 is None else c0.reshape(LD, N, H)

        output, h_n, c_n, inputs, caches, masks = self._forward_layers(x, h0, c0, lens)

        if not batched:
            output, h_n = output[:, 0], h_n[:, 0]  # (T, dirs*H), (LD, H)
            c_n = None if c_n is None else c_n[:, 0]
        elif self.batch_first:
            output = output.transpose(1, 0, 2)  # (T, N, dirs*H) -> (N, T, dirs*H)
        self._trace = None
        if is_grad_enabled():
            self._trace = _Trace(
                inputs, caches, masks, lens, batched, output.shape, state_shape, meaning, cell
            )
        return output, self._pack(h_n, c_n)

    def _state_shape(self, N: int, width: int, batched: bool) -> tuple[tuple[int, ...], str]:
        """``(shape, meaning)`` of ``h_0`` (``width`` HS) or ``c_0`` (``width`` H)."""
        LD = self.num_layers * self._dirs
        symbol = "H" if width == self.hidden_size else "proj_size"
        if batched:
            return (LD, N, width), f"(num_layers*num_directions, N, {symbol})"
        return (LD, width), f"(num_layers*num_directions, {symbol})"

    def _forward_layers(
        self, x: Array, h0: Array, c0: Array | None, lens: Array | None
    ) -> tuple[Array, Array, Array | None, list[Array], list[Any], list[_Masks]]:
        """Time-major stack: x (T, N, D), h0 (L*dirs, N, HS) and c0 (L*dirs, N, H).

        Returns ``output (T, N, dirs*HS), h_n, c_n`` (shaped as h0, c0) and the trace lists.
        """
        dirs = self._dirs
        h_n = np.empty_like(h0)  # (L*dirs, N, HS)
        c_n = None if c0 is None else np.empty_like(c0)
        inputs: list[Array] = []
        caches: list[Any] = []
        masks: list[_Masks] = []
        for k in range(self.num_layers):
            noise = None
            if self._noise.active:
                T, N, D_k = x.shape
                shape = (T, N, D_k, self.hidden_size)
                noise = draw(self._noise, self.training, self.rng, shape, dirs, self.dtype)
                if noise.inputs is not None:
                    x = x * noise.inputs  # (T, N, D_k) * (N, D_k): the same at every step
            inputs.append(x)
            outs = []

            def run(d: int, k: int = k, x: Array = x, noise: LayerNoise | None = noise) -> Any:
                i = k * dirs + d
                c0_i = None if c0 is None else c0[i]
                kw = {} if noise is None else noise.kernel[d]
                return self._kernel_forward(
                    f"_l{k}{SUFFIXES[d]}", x, h0[i], c0_i, lens, reverse=d == 1, noise=kw
                )

            if dirs == 2:
                results = both(lambda: run(0), lambda: run(1), self._work(x), self._kernels)
            else:
                results = (run(0),)
            for d, (out, h_i, c_i, cache) in enumerate(results):
                i = k * dirs + d
                h_n[i] = h_i
                if c_n is not None:
                    c_n[i] = c_i
                outs.append(out)  # (T, N, HS)
                caches.append(cache)
            x = outs[0] if dirs == 1 else np.concatenate(outs, axis=-1)  # (T, N, dirs*HS)
            mask = None
            if self.training and self.dropout > 0 and k < self.num_layers - 1:
                mask = self._dropout_mask(x.shape)
                x = x * mask
            masks.append(_Masks(mask, noise))
        return x, h_n, c_n, inputs, caches, masks

    def _work(self, x: Array) -> int:
        """Multiply-adds of one direction's forward over ``x (T, N, D)``."""
        T, N, D = x.shape
        IH, HH = weight_rows(self._mode, self.hidden_size)  # rows of W_ih and W_hh
        projection = self.proj_size * self.hidden_size  # W_hr (P, H)
        return T * N * (IH * D + HH * self._state_size + projection)

    def _dropout_mask(self, shape: tuple[int, ...]) -> Array:
        """Inverted-dropout mask of ``shape`` (T, N, dirs*HS): 0 or ``1/(1-p)``, from ``rng``."""
        return dropout_mask(self.rng, shape, self.dropout, self.dtype)

    def trace(self, x: Any, hx: State = None) -> tuple[dict[str, Array], State]:
        """Run :meth:`forward` and return what every layer computed at every step.

        Args:
            x, hx: as for :meth:`forward` (no ``lengths``: every sequence runs T steps).

        Returns:
            ``(arrays, h_n)``: ``arrays`` maps ``"h"`` (the hidden state after each
            step), ``"c"`` (the cell state, LSTM) and each activated gate
            (``"i", "f", "g", "o"`` for LSTM, ``"r", "z", "n"`` for GRU) to an array
            ``(num_layers*num_directions, T, N, H)``, time-major even with
            ``batch_first`` (``N = 1`` for unbatched input), read from the
            kernels' forward cache, index ``k*dirs + d`` as
            in ``h_n``; ``h_n`` is the final state, as :meth:`forward` returns it
            (pass it as ``hx`` to trace a long sequence chunk by chunk).
        """
        names(self._mode)  # refuses the cell variants traces do not cover, before any work
        if self.proj_size:
            raise ArgumentError("traces do not cover the LSTM with projections (proj_size > 0)")
        with enable_grad():  # the trace reads the kernels' caches, under no_grad too
            _, h_n = self.forward(x, hx)
        tr = self._trace
        assert tr is not None  # forward sets it
        dirs = self._dirs
        per_dir = [
            cache_arrays(self._mode, cache, reverse=i % dirs == 1)
            for i, cache in enumerate(tr.caches)
        ]
        arrays = {k: self._cast(np.stack([a[k] for a in per_dir])) for k in names(self._mode)}
        return arrays, h_n

    # ----------------------------------------------------------------- backward

    def backward(self, d_output: Any, d_hx: State = None) -> tuple[Array, State]:
        """Backpropagate through the most recent forward call.

        Parameter gradients are added to :attr:`grads` (call :meth:`zero_grad` to
        reset them). The same forward call may be backpropagated more than once, and
        in eval mode too (without dropout). The forward keeps a reference to ``x``:
        do not modify it in place before the backward.

        Args:
            d_output: gradient of the loss with respect to ``output``, same shape.
            d_hx: gradient with respect to ``h_n`` (same shape), a tuple
                ``(d_h_n, d_c_n)`` for :class:`LSTM` (either may be None), or None.

        Returns:
            ``(dx, d_hx0)``: the gradient of ``x`` (its shape) and of the initial
            state, ``d_h_0`` or ``(d_h_0, d_c_0)`` with the shape of ``h_0``
            (returned even when ``hx`` was None).
        """
        tr = self._trace
        if tr is None:
            raise StateError(
                f"{type(self).__name__}.backward() needs a forward() call first: it "
                "backpropagates through the most recent forward (one run outside "
                "rnncore.no_grad(), which keeps nothing for a backward)"
            )
        d_out = _validate.float_array("d_output", d_output, self.dtype)
        meaning = "the shape of output"
        _validate.shape("d_output", d_out, tr.out_shape, meaning)
        _validate.finite("d_output", d_out)
        labels = ("d_h_n", "d_c_n")
        d_h_n, d_c_n = self._state(
            "d_hx", d_hx, labels, tr.state_shape, tr.state_meaning, True, cell=tr.cell
        )
        LD, H, HS = self.num_layers * self._dirs, self.hidden_size, self._state_size
        if not tr.batched:
            d_out = d_out[:, None]  # (T, dirs*HS) -> (T, 1, dirs*HS)
        elif self.batch_first:
            d_out = d_out.transpose(1, 0, 2)  # (N, T, dirs*HS) -> (T, N, dirs*HS)
        N = d_out.shape[1]
        d_h_n = None if d_h_n is None else d_h_n.reshape(LD, N, HS)
        d_c_n = None if d_c_n is None else d_c_n.reshape(LD, N, H)

        dx, dh0, dc0 = self._backward_layers(tr, d_out, d_h_n, d_c_n)

        if not tr.batched:
            dx, dh0 = dx[:, 0], dh0[:, 0]  # (T, D), (LD, HS)
            dc0 = None if dc0 is None else dc0[:, 0]
        elif self.batch_first:
            dx = dx.transpose(1, 0, 2)  # (T, N, D) -> (N, T, D)
        return dx, self._pack(dh0, dc0)

    def _backward_layers(
        self, tr: _Trace, d_out: Array, d_h_n: Array | None, d_c_n: Array | None
    ) -> tuple[Array, Array, Array | None]:
        """Time-major chain rule: d_out (T, N, dirs*HS), d_h_n (L*dirs, N, HS) and
        d_c_n (L*dirs, N, H).

        Returns ``dx (T, N, D)``, ``dh0`` (L*dirs, N, HS) and ``dc0`` (L*dirs, N, H).
        """
        dirs, H, HS = self._dirs, self.hidden_size, self._state_size
        N = d_out.shape[1]
        dh0 = np.empty((self.num_layers * dirs, N, HS), self.dtype)
        dc0 = np.empty((self.num_layers * dirs, N, H), self.dtype)
        dc0 = dc0 if self._mode in CELL_STATE else None
        d_layer = d_out  # gradient of layer k's (dropped-out) output
        for k in reversed(range(self.num_layers)):
            masks = tr.masks[k]
            if masks.output is not None:
                d_layer = d_layer * masks.output
            dxs = []  # dx of each direction, (T, N, D_k)
            noise = masks.noise

            def run(
                d: int, k: int = k, d_layer: Array = d_layer, noise: LayerNoise | None = noise
            ) -> Any:
                i = k * dirs + d
                d_dir = np.ascontiguousarray(d_layer[..., d * HS : (d + 1) * HS])  # (T, N, HS)
                kw = {} if noise is None else noise.kernel[d]
                return self._kernel_backward(
                    f"_l{k}{SUFFIXES[d]}",
                    tr.inputs[k],
                    tr.lengths,
                    d == 1,
                    tr.caches[i],
                    d_dir,
                    None if d_h_n is None else d_h_n[i],
                    None if d_c_n is None else d_c_n[i],
                    noise=kw,
                )

            if dirs == 2:
                work = 2 * self._work(tr.inputs[k])  # the backward's two products
                results = both(lambda: run(0), lambda: run(1), work, self._kernels)
            else:
                results = (run(0),)
            for d, (dx_d, dh0_i, dc0_i) in enumerate(results):
                i = k * dirs + d
                dh0[i] = dh0_i
                if dc0 is not None:
                    dc0[i] = dc0_i
                dxs.append(dx_d)
            d_layer = dxs[0] if dirs == 1 else dxs[0] + dxs[1]  # (T, N, D_k)
            if noise is not None and noise.inputs is not None:
                d_layer = d_layer * noise.inputs
        return d_layer, dh0, dc0
