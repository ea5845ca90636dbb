"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: torch.nn's cells on rnncore's kernels.

Subclasses of their torch.nn namesakes (constructor, parameters and state dict
are torch's); a step is the one-layer stack of :mod:`rnncore.torch._function`
over one time step.
"""

from __future__ import annotations

from typing import Any

import torch

from rnncore.errors import ShapeError
from rnncore.torch import _checks, _function
from rnncore.torch.recurrent import _OnCpu


class _Cell(_OnCpu):
    """The forward shared by the three cells."""

    input_size: int
    hidden_size: int
    bias: bool
    training: bool
    _mode: str

    def forward(self, input: Any, hx: Any = None) -> Any:
        """One step: ``input (N, D)`` or unbatched ``(D,)``; ``hx`` ``(N, H)`` or ``(H,)``
        (a tuple ``(h, c)`` for LSTMCell), None for zeros. Returns ``h'`` (``(h', c')``
        for LSTMCell) shaped like ``hx``."""
        owner = type(self).__name__
        lstm = self._mode == "lstm"
        weights = [self.weight_ih, self.weight_hh]
        if self.bias:
            weights += [self.bias_ih, self.bias_hh]
        dtype = _checks.weights(owner, weights)
        x = _checks.tensor(owner, "input", input, dtype)
        if x.dim() not in (1, 2):
            raise ShapeError(
                f"{owner}: expected input to be 2-D (N, D) or 1-D unbatched (D,), got "
                f"{x.dim()}-D of shape {list(x.shape)}"
            )
        batched = x.dim() == 2
        x = x if batched else x.unsqueeze(0)  # (N, D)
        N, D = x.shape
        if D != self.input_size:
            raise _checks.SizeError(
                f"{owner}: input has inconsistent input_size: got {D} expected {self.input_size}"
            )
        if N == 0:
            raise _checks.SizeError(f"{owner}: input must hold at least one row, got N = 0")
        _checks.finite(owner, "input", x)
        H = self.hidden_size
        h0, c0 = _checks.hidden(owner, hx, lstm, (N, H) if batched else (H,), dtype)
        h0 = x.new_zeros((1, N, H)) if h0 is None else h0.reshape(1, N, H).contiguous()
        if lstm:
            c0 = x.new_zeros((1, N, H)) if c0 is None else c0.reshape(1, N, H).contiguous()
        cfg = _function.Config(self._mode, self.input_size, H, 1, self.bias, 0.0, False)
        _, h_n, c_n = _function.run(
            cfg, self.training, x.contiguous().unsqueeze(0), h0, c0, None, weights
        )
        h1 = h_n[0] if batched else h_n[0, 0]  # (N, H) or (H,)
        if not lstm:
            return h1
        return h1, (c_n[0] if batched else c_n[0, 0])


class RNNCell(_Cell, torch.nn.RNNCell):
    """:class:`torch.nn.RNNCell` (tanh or ReLU) on rnncore's kernels; CPU, float32/64."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(input_size, hidden_size, bias, nonlinearity, device=device, dtype=dtype)

    @property
    def _mode(self) -> str:  # type: ignore[override]
        return f"rnn_{self.nonlinearity}"


class LSTMCell(_Cell, torch.nn.LSTMCell):
    """:class:`torch.nn.LSTMCell` on rnncore's kernels; CPU, float32/64."""

    _mode = "lstm"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)


class GRUCell(_Cell, torch.nn.GRUCell):
    """:class:`torch.nn.GRUCell` on rnncore's kernels; CPU, float32/64."""

    _mode = "gru"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(input_size, hidden_size, bias, device=device, dtype=dtype)
