"""The autograd function that runs a recurrent stack on the Rust kernels.

:class:`_BoundStack` is the layer machinery of :mod:`rnncore.nn`
(:meth:`~rnncore.nn._layer._RNNBase._forward_layers` and ``_backward_layers``)
bound to the memory of torch's parameters: NumPy views of the tensors, no
copies. Its dropout masks come from torch's generator, and the parameter
gradients of a backward are handed to autograd instead of being accumulated
in ``grads``. The weights are read from the parameters at every call (nothing
is packed ahead), so an optimizer step, an in-place edit or
``load_state_dict`` is always seen by the next forward; one that happens
between a forward and its backward is caught by torch's version counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rnncore._grad import enable_grad, no_grad
from rnncore.nn._base import Array
from rnncore.nn._layer import _RNNBase, _Trace
from rnncore.torch._checks import UnsupportedError


@dataclass(frozen=True)
class Config:
    """The shape of a stack: what :class:`_RNNBase` takes, minus the weights."""

    mode: str  # kernel mode: rnn_tanh, rnn_relu, lstm or gru
    input_size: int  # D
    hidden_size: int  # H
    num_layers: int  # L
    bias: bool
    dropout: float  # between layers, in training mode
    bidirectional: bool
    proj_size: int = 0  # P of an LSTM with projections, 0 for none

    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1


class _BoundStack(_RNNBase):
    """An :class:`_RNNBase` whose parameters are the given arrays (in torch's order)."""

    def __init__(self, cfg: Config, weights: list[Array], training: bool) -> None:
        self._pending: Iterator[Array] = iter(weights)
        super().__init__(
            cfg.mode,
            cfg.input_size,
            cfg.hidden_size,
            cfg.num_layers,
            cfg.bias,
            False,
            cfg.dropout,
            cfg.bidirectional,
            dtype=weights[0].dtype,
            rng=np.random.default_rng(0),  # unused: dropout draws from torch
            proj_size=cfg.proj_size,
        )
        self.training = training
        self._sink: dict[str, Array] = {}

    def _add_parameter(self, name: str, shape: tuple[int, ...]) -> None:
        self._params[name] = next(self._pending)  # a view of torch's parameter

    def _dropout_mask(self, shape: tuple[int, ...]) -> Array:
        """From torch's default generator, so ``torch.manual_seed`` fixes it."""
        keep = torch.rand(shape, dtype=torch.float64) >= self.dropout
        return keep.numpy().astype(self.dtype) / self.dtype.type(1.0 - self.dropout)

    def _add_grad(self, name: str, d: Array) -> None:
        self._sink[name] = d  # each parameter gets exactly one gradient per backward


def _numpy(t: torch.Tensor | None) -> Array | None:
    """A NumPy view of ``t``'s memory (no copy), or None."""
    return None if t is None else t.detach().numpy()


class StackFunction(torch.autograd.Function):
    """``(output, h_n, c_n) = StackFunction.apply(cfg, training, x, h0, c0, lengths, *w)``.

    Shapes: ``x (T, N, D)``, ``h0``/``c0`` ``(L*dirs, N, H)`` (``c0`` None unless
    lstm), ``lengths (N,)`` int64 or None, ``w`` the parameters in torch's order.
    ``output (T, N, dirs*H)``, ``h_n``/``c_n`` like ``h0`` (``c_n`` None unless lstm).
    With ``cfg.proj_size = P > 0``, ``h0``, ``h_n`` and ``output`` have ``P`` where
    they have ``H`` above; ``c0`` and ``c_n`` keep ``H``.
    Every tensor is on the CPU and contiguous, float32 or float64.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        cfg: Config,
        training: bool,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor | None,
        lengths: torch.Tensor | None,
        *weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        stack = _BoundStack(cfg, [_numpy(w) for w in weights], training)
        lens = _numpy(lengths)
        x_np = _numpy(x)
        with enable_grad():  # torch's autograd decides here, not rnncore.no_grad()
            out, h_n, c_n, inputs, caches, masks = stack._forward_layers(
                x_np, _numpy(h0), _numpy(c0), lens
            )
        ctx.stack = stack
        ctx.trace = _Trace(inputs, caches, masks, lens, True, out.shape, h_n.shape, "", None)
        ctx.lstm = c0 is not None
        ctx.save_for_backward(x, *weights)  # their version counters guard the backward
        c_n_t = None if c_n is None else torch.from_numpy(c_n)
        return torch.from_numpy(out), torch.from_numpy(h_n), c_n_t

    @staticmethod
    def backward(ctx: Any, d_out: Any, d_h_n: Any, d_c_n: Any) -> tuple[Any, ...]:
        if torch.is_grad_enabled():  # only under create_graph=True
            raise UnsupportedError(
                "rnncore.torch modules have no double backward: their backward is not "
                "differentiable (create_graph=True); use the torch.nn module for "
                "higher-order gradients"
            )
        ctx.saved_tensors  # noqa: B018 (raises if x or a weight was modified in place since)
        stack: _BoundStack = ctx.stack
        stack._sink = {}
        dx, dh0, dc0 = stack._backward_layers(
            ctx.trace,
            np.ascontiguousarray(_numpy(d_out)),
            _numpy(d_h_n),
            _numpy(d_c_n) if ctx.lstm else None,
        )
        d_weights = [torch.from_numpy(stack._sink[name]) for name in stack._params]
        dc0_t = torch.from_numpy(dc0) if ctx.lstm and dc0 is not None else None
        return (None, None, torch.from_numpy(dx), torch.from_numpy(dh0), dc0_t, None, *d_weights)


@torch.compiler.disable
def run(
    cfg: Config,
    training: bool,
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor | None,
    lengths: torch.Tensor | None,
    weights: list[torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The stack over ``x (T, N, D)``; see :class:`StackFunction`.

    With gradients disabled, or when nothing requires one, the forward runs
    without recording anything for a backward.
    """
    if torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, h0, c0, *weights)
    ):
        return StackFunction.apply(cfg, training, x, h0, c0, lengths, *weights)
    stack = _BoundStack(cfg, [_numpy(w) for w in weights], training)
    with no_grad():  # the kernels' inference path: nothing kept for a backward
        out, h_n, c_n, *_ = stack._forward_layers(
            _numpy(x), _numpy(h0), _numpy(c0), _numpy(lengths)
        )
    c_n_t = None if c_n is None else torch.from_numpy(c_n)
    return torch.from_numpy(out), torch.from_numpy(h_n), c_n_t
