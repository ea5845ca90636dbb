"""What :mod:`rnncore.torch` checks before a tensor reaches the kernels.

Each error is an rnncore error and also of the built-in class torch raises for
the same misuse (a wrong size is a ``RuntimeError`` in torch, a wrong input
dtype a ``ValueError``), so code that catches torch's errors keeps working.
"""

from __future__ import annotations

from typing import Any

import torch

from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError

FLOATS = (torch.float32, torch.float64)


class SizeError(ShapeError, RuntimeError):
    """A tensor's size does not fit the module (torch raises ``RuntimeError`` here)."""


class TensorDTypeError(DTypeError, ValueError, RuntimeError):
    """A tensor's dtype is not the module's (torch raises ``ValueError`` for the
    input, ``RuntimeError`` for a packed input or a state)."""


class DeviceError(ArgumentError, RuntimeError):
    """A tensor or module is not on the CPU."""


class UnsupportedError(ArgumentError, RuntimeError):
    """A feature of the torch module that rnncore does not provide."""


def device(owner: str, name: str, device: Any) -> None:
    """Refuse any device but the CPU, pointing to torch's own module."""
    dev = torch.device(device if device is not None else "cpu")
    if dev.type != "cpu":
        raise DeviceError(
            f"{owner}: {name} is on {dev}, but rnncore runs on the CPU only; "
            f"use torch.nn.{owner} on {dev.type} (the state dict loads unchanged)"
        )


def module_dtype(owner: str, dtype: Any) -> None:
    """Only float32 and float64 (or None: torch's default dtype) are supported."""
    dt = torch.get_default_dtype() if dtype is None else dtype
    if dt not in FLOATS:
        raise DTypeError(f"{owner}: dtype must be torch.float32 or torch.float64, got {dt}")


def tensor(owner: str, name: str, t: Any, dtype: torch.dtype) -> torch.Tensor:
    """``t`` as a CPU tensor of ``dtype``: a clear error for anything else."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{owner}: {name} must be a torch.Tensor, got {type(t).__name__}")
    device(owner, name, t.device)
    if t.dtype != dtype:
        raise TensorDTypeError(
            f"{owner}: {name} has dtype {t.dtype}, but the module's weights are {dtype}; "
            f"convert it with {name}.to({dtype}) or the module with module.to({t.dtype})"
        )
    return t


def finite(owner: str, name: str, t: torch.Tensor) -> None:
    """Like rnncore's layers: NaN or infinity in an input is refused."""
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError(f"{owner}: {name} holds NaN or infinity")


def weights(owner: str, params: list[torch.Tensor]) -> torch.dtype:
    """The dtype shared by every parameter (float32 or float64, on the CPU)."""
    dtype = params[0].dtype
    for p in params:
        device(owner, "a parameter", p.device)
        if p.dtype != dtype or dtype not in FLOATS:
            raise TensorDTypeError(
                f"{owner}: parameters must all be torch.float32 or all torch.float64, "
                f"got {sorted({str(q.dtype) for q in params})}"
            )
    return dtype


def state(
    owner: str, name: str, t: Any, expected: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """An initial state ``h_0``/``c_0`` of shape ``expected``, as torch checks it."""
    t = tensor(owner, name, t, dtype)
    if tuple(t.shape) != expected:
        raise SizeError(f"{owner}: expected {name} of size {expected}, got {list(t.shape)}")
    finite(owner, name, t)
    return t


def hidden(
    owner: str,
    hx: Any,
    lstm: bool,
    expected: tuple[int, ...],
    dtype: torch.dtype,
    expected_c: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``hx`` (a tensor, or ``(h_0, c_0)`` for an LSTM) checked; ``(None, None)`` if None.

    ``expected`` is the shape of each part, ``expected_c`` that of ``c_0`` when it
    differs (an LSTM with projections). Returns ``(h_0, c_0)``, ``c_0`` None
    unless ``lstm``.
    """
    if hx is None:
        return None, None
    if lstm:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ArgumentError(
                f"{owner}: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}"
            )
        return (
            state(owner, "hx[0] (h_0)", hx[0], expected, dtype),
            state(owner, "hx[1] (c_0)", hx[1], expected_c or expected, dtype),
        )
    if isinstance(hx, (tuple, list)):
        raise ArgumentError(f"{owner}: hx must be one tensor h_0, got a {type(hx).__name__}")
    return state(owner, "hx (h_0)", hx, expected, dtype), None
