"""Weights from other libraries in rnncore's (PyTorch's) layout.

Keras stores a GRU layer as ``kernel (D, 3H)``, ``recurrent_kernel (H, 3H)`` and
``bias``, with the gates in the order ``z, r, n`` along the last axis; rnncore, like
PyTorch, stores ``weight_ih (3H, D)``, ``weight_hh (3H, H)`` with the gates in the
order ``r, z, n`` along the first axis. Both write ``h' = (1 - z) * n + z * h``.
Keras's ``reset_after=False`` (its default before Keras 2.3) is rnncore's
``GRU(..., reset_after=False)`` and has one bias, ``(3H,)``; ``reset_after=True``
(the default since) is PyTorch's GRU and has two, ``bias (2, 3H)`` = input bias
over recurrent bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, ShapeError

__all__ = ["from_keras_gru"]


def _reorder(a: np.ndarray, H: int) -> np.ndarray:
    """Keras's gate blocks ``z|r|n`` along the last axis -> ``r|z|n``."""
    return np.concatenate([a[..., H : 2 * H], a[..., :H], a[..., 2 * H :]], axis=-1)


def from_keras_gru(
    weights: Sequence[Any], *, reset_after: bool = False, layer: int = 0
) -> dict[str, np.ndarray]:
    """The state dict entries of one rnncore GRU layer from a Keras 3 GRU's weights.

    Args:
        weights: ``keras_layer.get_weights()``: ``[kernel (D, 3H), recurrent_kernel
            (H, 3H), bias]`` with ``bias (3H,)`` for ``reset_after=False`` or
            ``(2, 3H)`` for ``reset_after=True``; without the bias when the Keras
            layer has ``use_bias=False`` (then build the rnncore layer with
            ``bias=False``).
        reset_after: the Keras layer's ``reset_after``; build the rnncore layer
            with the same value (``nn.GRU(D, H, reset_after=...)``).
        layer: the index ``k`` in the parameter names (``weight_ih_l{k}``).

    Returns:
        ``{"weight_ih_l{k}": (3H, D), "weight_hh_l{k}": (3H, H)}`` plus
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(3H,)`` if there is a bias (with
        ``reset_after=False`` the single Keras bias goes to ``bias_ih`` and
        ``bias_hh`` is zero), float arrays ready for ``load_state_dict`` (with
        ``strict=False`` for one layer of a stack).

    The Keras layer must use its default activations (``tanh``, and ``sigmoid``
    for the gates); ``go_backwards=True`` corresponds to the ``_reverse``
    direction of a bidirectional rnncore layer.

    Raises:
        ArgumentError: ``weights`` does not hold two or three arrays, or a bad flag.
        ShapeError: the arrays' shapes do not fit one another.
    """
    reset_after = _validate.flag("reset_after", reset_after)
    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise ArgumentError(f"layer must be an integer >= 0, got {layer!r}")
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise ArgumentError(f"weights must be a list of arrays, got {type(weights).__name__}")
    if len(weights) not in (2, 3):
        raise ArgumentError(
            "weights must be [kernel, recurrent_kernel] or [kernel, recurrent_kernel, bias] "
            f"(keras_layer.get_weights()), got {len(weights)} arrays"
        )
    arrays = [np.asarray(w) for w in weights]
    for name, a in zip(("kernel", "recurrent_kernel", "bias"), arrays):
        if not np.issubdtype(a.dtype, np.floating):
            raise ArgumentError(f"weights ({name}) must hold floats, got dtype {a.dtype}")
    kernel, recurrent = arrays[0], arrays[1]
    if recurrent.ndim != 2 or recurrent.shape[1] != 3 * recurrent.shape[0] or not recurrent.size:
        raise ShapeError(f"recurrent_kernel must be (H, 3H), got shape {recurrent.shape}")
    H = recurrent.shape[0]
    if kernel.ndim != 2 or kernel.shape[1] != 3 * H:
        raise ShapeError(f"kernel must be (D, {3 * H}) with H = {H}, got shape {kernel.shape}")
    sfx = f"_l{layer}"
    out = {
        f"weight_ih{sfx}": np.ascontiguousarray(_reorder(kernel, H).T),  # (3H, D)
        f"weight_hh{sfx}": np.ascontiguousarray(_reorder(recurrent, H).T),  # (3H, H)
    }
    if len(arrays) == 3:
        bias = arrays[2]
        want = (2, 3 * H) if reset_after else (3 * H,)
        if bias.shape != want:
            raise ShapeError(
                f"bias must have shape {want} for reset_after={reset_after}, got {bias.shape}"
            )
        if reset_after:
            out[f"bias_ih{sfx}"], out[f"bias_hh{sfx}"] = _reorder(bias, H)  # (3H,) each
        else:
            out[f"bias_ih{sfx}"] = _reorder(bias, H)
            out[f"bias_hh{sfx}"] = np.zeros(3 * H, bias.dtype)
    return out
