"""Initialisations of the recurrent weights beyond torch's uniform default.

Each function changes a recurrent layer or cell in place and returns it:

- :func:`orthogonal_hh_`: every ``(H, H)`` gate block of every ``weight_hh`` a
  random orthogonal matrix (Saxe et al. 2014), drawn from the layer's generator;
- :func:`identity_hh_`: ``weight_hh`` the identity times ``scale`` and the biases
  zero, for Elman cells: with ReLU, Le et al.'s IRNN (2015);
- :func:`forget_bias_`: add a constant to the forget-gate block of an LSTM's
  ``bias_ih`` (Gers et al. 2000; Jozefowicz et al. 2015 recommend 1).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, TypeVar

import numpy as np

from rnncore.errors import ArgumentError
from rnncore.nn._base import CELL_STATE, GATES, KernelModule

__all__ = ["HH_INITS", "forget_bias_", "identity_hh_", "init_hh_", "orthogonal_hh_"]

HH_INITS = ("uniform", "orthogonal", "identity")  # the choices of init_hh_

M = TypeVar("M", bound=KernelModule)


def _recurrent(layer: Any) -> KernelModule:
    if not isinstance(layer, KernelModule):
        raise ArgumentError(
            f"layer must be a recurrent layer or cell of rnncore.nn, got {type(layer).__name__}"
        )
    return layer


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ArgumentError(f"{name} must be finite, got {value}")
    return float(value)


def _hh_params(layer: KernelModule) -> list[np.ndarray]:
    """The live ``weight_hh`` arrays ``(G*H, H)`` of every layer and direction."""
    return [p for name, p in layer.named_parameters() if name.startswith("weight_hh")]


def orthogonal_hh_(layer: M, gain: float = 1.0) -> M:
    """Set each ``(H, H)`` gate block of every ``weight_hh`` to ``gain`` times a
    random orthogonal matrix (the Q of a Gaussian matrix's QR decomposition, signs
    fixed so the draw is uniform), drawn from ``layer.rng``: same seed, same weights.
    With projections (``(H, P)`` blocks) the columns of each block are orthonormal.

    Raises:
        ArgumentError: ``layer`` is not a recurrent layer or cell; ``gain`` is not a
            finite number.
    """
    layer = _recurrent(layer)
    gain = _number("gain", gain)
    H = layer.hidden_size
    for w in _hh_params(layer):  # (G*H, H); (4H, P) for an LSTM with projections
        for g in range(w.shape[0] // H):
            a = layer.rng.standard_normal((H, w.shape[1]))
            q, r = np.linalg.qr(a)  # q (H, H), or (H, P) orthonormal columns
            q *= np.where(np.diag(r) < 0, -1.0, 1.0)  # columns with sign(R_jj)
            w[g * H : (g + 1) * H] = gain * q
    return layer


def identity_hh_(layer: M, scale: float = 1.0) -> M:
    """IRNN: ``weight_hh = scale * I`` and every bias zero, for Elman cells
    (``nn.RNN``/``nn.RNNCell``, tanh or relu); ``weight_ih`` is kept.

    Raises:
        ArgumentError: ``layer`` is not an Elman layer or cell (a gated cell's
            identity block would not be an identity map); ``scale`` not finite.
    """
    layer = _recurrent(layer)
    scale = _number("scale", scale)
    if GATES.get(layer._mode) != 1:
        raise ArgumentError(
            f"init 'identity' is for RNN/RNNCell (IRNN), not {type(layer).__name__} ({layer._mode})"
        )
    for name, p in layer.named_parameters():
        if name.startswith("weight_hh"):
            p[...] = scale * np.eye(layer.hidden_size)
        elif name.startswith("bias"):
            p[...] = 0
    return layer


def forget_bias_(layer: M, value: float) -> M:
    """Add ``value`` to the forget-gate block of every ``bias_ih`` of an LSTM layer
    or cell: ``[H:2H]`` (gates ``i|f|g|o``, also with ``peephole=True``), or
    ``[0:H]`` with ``cifg=True`` (gates ``f|g|o``).

    Raises:
        ArgumentError: ``layer`` is not an LSTM or has no bias; ``value`` not finite.
    """
    layer = _recurrent(layer)
    value = _number("forget_bias", value)
    if layer._mode not in CELL_STATE:
        raise ArgumentError(f"forget_bias is for LSTM/LSTMCell, not {type(layer).__name__}")
    biases = [p for name, p in layer.named_parameters() if name.startswith("bias_ih")]
    if not biases:
        raise ArgumentError("forget_bias needs a layer with bias=True")
    H = layer.hidden_size
    f = 0 if layer._mode == "lstm_cifg" else H  # where the forget block starts
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = [p[f : f + H] + p.dtype.type(value) for p in biases]
    if not all(np.isfinite(s).all() for s in shifted):
        raise ArgumentError(
            f"forget_bias={value} does not fit the layer's {layer.dtype}: the biases "
            "would not be finite"
        )
    for p, s in zip(biases, shifted):
        p[f : f + H] = s
    return layer


def init_hh_(layer: M, init: str) -> M:
    """Apply the ``weight_hh`` initialisation named ``init``: ``"uniform"`` (torch's,
    as constructed: nothing changes), ``"orthogonal"`` (:func:`orthogonal_hh_`) or
    ``"identity"`` (:func:`identity_hh_`)."""
    if init not in HH_INITS:
        raise ArgumentError(f"init_hh must be one of {list(HH_INITS)}, got {init!r}")
    if init == "orthogonal":
        return orthogonal_hh_(layer)
    if init == "identity":
        return identity_hh_(layer)
    return _recurrent(layer)
