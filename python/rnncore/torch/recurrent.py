"""``RNN``, ``LSTM`` and ``GRU``: torch.nn's modules with rnncore's kernels inside.

Each is a subclass of its torch.nn namesake, so the constructor, the parameters
(names, shapes, initialisation), ``state_dict``/``load_state_dict``, ``repr``
and ``isinstance`` checks are torch's own; only :meth:`forward` differs: it runs
the Rust forward and backprop-through-time kernels through one autograd
function (:mod:`rnncore.torch._function`) on the tensors' memory.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnncore.errors import ShapeError
from rnncore.torch import _checks, _function

Output = tuple[Any, Any]  # (output, h_n) or (output, (h_n, c_n)); output may be packed


class _OnCpu:
    """What every rnncore.torch module shares: the checks made at construction,
    and a clear refusal of TorchScript (the forward calls compiled Rust code)."""

    def _check_construction(self, device: Any, dtype: Any) -> None:
        owner = type(self).__name__
        _checks.device(owner, "device", device)
        _checks.module_dtype(owner, dtype)

    def __prepare_scriptable__(self) -> Any:
        name = type(self).__name__
        raise _checks.UnsupportedError(
            f"rnncore.torch.{name} cannot be compiled by TorchScript: its forward calls "
            f"rnncore's Rust kernels. Script a torch.nn.{name} instead (its state dict "
            "loads unchanged); torch.compile works and runs this module eagerly."
        )


class _Stack(_OnCpu):
    """The forward shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool
    proj_size: int  # 0 but for an LSTM with projections
    training: bool
    _flat_weights_names: list[str]

    def forward(self, input: Any, hx: Any = None) -> Output:
        """``output, h_n`` (``output, (h_n, c_n)`` for LSTM), exactly as torch.nn's.

        Args:
            input: ``(T, N, D)``, ``(N, T, D)`` if ``batch_first``, unbatched
                ``(T, D)``, or a ``PackedSequence``.
            hx: ``h_0`` (a tuple ``(h_0, c_0)`` for LSTM) of shape
                ``(num_layers*num_directions, N, H)`` (``(..., H)`` unbatched), in
                the batch's original order for packed input; None for zeros.
                With ``proj_size = P > 0`` (LSTM) ``h_0`` has ``P`` in place of ``H``.

        Returns:
            ``output`` ``(T, N, num_directions*H)`` (``(N, T, ...)`` if
            ``batch_first``, ``(T, ...)`` unbatched, a ``PackedSequence`` for packed
            input; ``P`` in place of ``H`` with a projection) and the final states,
            shaped like ``h_0`` and ``c_0``.
        """
        owner = type(self).__name__
        lstm = self.mode == "LSTM"
        weights = [getattr(self, n) for n in self._flat_weights_names]
        dtype = _checks.weights(owner, weights)
        lengths = None
        if isinstance(input, PackedSequence):
            _checks.tensor(owner, "input.data", input.data, dtype)
            if input.data.dim() != 2:
                raise ShapeError(
                    f"{owner}: packed input data must be 2-D, got {input.data.dim()}-D"
                )
            x, lengths = pad_packed_sequence(input)  # (T, N, D), (N,), in the original order
            batched = True
        else:
            x = _checks.tensor(owner, "input", input, dtype)
            if x.dim() not in (2, 3):
                raise ShapeError(
                    f"{owner}: expected input to be 3-D "
                    f"{'(N, T, D)' if self.batch_first else '(T, N, D)'} or 2-D unbatched "
                    f"(T, D), got {x.dim()}-D of shape {list(x.shape)}"
                )
            batched = x.dim() == 3
            if not batched:
                x = x.unsqueeze(1)  # (T, D) -> (T, 1, D)
            elif self.batch_first:
                x = x.transpose(0, 1)  # (N, T, D) -> (T, N, D)
        T, N, D = x.shape
        if D != self.input_size:
            raise _checks.SizeError(
                f"{owner}: input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {D}"
            )
        if T == 0 or N == 0:
            raise _checks.SizeError(
                f"{owner}: input must hold at least one step and one sequence, got T = {T}, N = {N}"
            )
        _checks.finite(owner, "input", x)
        dirs = 2 if self.bidirectional else 1
        LD, H, P = self.num_layers * dirs, self.hidden_size, self.proj_size
        HS = P or H  # features of h
        expected = (LD, N, HS) if batched else (LD, HS)
        expected_c = (LD, N, H) if batched else (LD, H)
        h0, c0 = _checks.hidden(owner, hx, lstm, expected, dtype, expected_c)
        h0 = x.new_zeros((LD, N, HS)) if h0 is None else h0.reshape(LD, N, HS).contiguous()
        if lstm:
            c0 = x.new_zeros((LD, N, H)) if c0 is None else c0.reshape(LD, N, H).contiguous()
        cfg = _function.Config(
            self.mode.lower(),
            self.input_size,
            H,
            self.num_layers,
            self.bias,
            float(self.dropout),
            self.bidirectional,
            P,
        )
        output, h_n, c_n = _function.run(
            cfg, self.training, x.contiguous(), h0, c0, lengths, weights
        )
        state: Any = (h_n, c_n) if lstm else h_n
        if isinstance(input, PackedSequence):
            return _repack(output, lengths, input), state
        if not batched:
            output = output[:, 0]  # (T, dirs*H)
            state = (h_n[:, 0], c_n[:, 0]) if lstm else h_n[:, 0]  # (LD, H)
        elif self.batch_first:
            output = output.transpose(0, 1)  # (T, N, dirs*H) -> (N, T, dirs*H)
        return output, state


def _repack(output: torch.Tensor, lengths: Any, like: PackedSequence) -> PackedSequence:
    """``output (T, N, dirs*H)`` (original batch order) packed like the input ``like``."""
    order = like.sorted_indices
    if order is not None:
        output, lengths = output.index_select(1, order), lengths[order]
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


class RNN(_Stack, torch.nn.RNN):
    """:class:`torch.nn.RNN` (tanh or ReLU) running on rnncore's kernels.

    The same constructor, parameters, inputs and outputs as torch's; see
    :meth:`_Stack.forward`. CPU only, float32 or float64.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            nonlinearity=nonlinearity,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )


class LSTM(_Stack, torch.nn.LSTM):
    """:class:`torch.nn.LSTM` running on rnncore's kernels, ``proj_size`` included.

    The same constructor, parameters (``weight_hr_l[k]`` with ``proj_size > 0``),
    inputs and outputs as torch's; see :meth:`_Stack.forward`. CPU only, float32
    or float64.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            proj_size=proj_size,
            device=device,
            dtype=dtype,
        )


class GRU(_Stack, torch.nn.GRU):
    """:class:`torch.nn.GRU` running on rnncore's kernels.

    The same constructor, parameters, inputs and outputs as torch's; see
    :meth:`_Stack.forward`. CPU only, float32 or float64.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self._check_construction(device, dtype)
        super().__init__(
            input_size,
            hidden_size,
            num_layers=num_layers,
            bias=bias,
            batch_first=batch_first,
            dropout=dropout,
            bidirectional=bidirectional,
            device=device,
            dtype=dtype,
        )
