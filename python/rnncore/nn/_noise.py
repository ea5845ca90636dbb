"""Dropout inside the recurrence of a sequence layer: the options, and the masks
one forward call draws.

- ``input_dropout`` (Keras's ``dropout``; Gal & Ghahramani 2016): one mask per
  sequence on each layer's input ``(N, D_k)``, the same at every step, shared by
  the two directions;
- ``recurrent_dropout`` (Keras's ``recurrent_dropout``): one mask per sequence
  ``(N, H)`` and direction on the state the recurrent products read (the kernel
  applies it inside its time loop; the state a GRU carries is not masked);
- ``zoneout`` and ``zoneout_cell`` (Krueger et al. 2017): each unit of the hidden
  (cell) state keeps its previous value with that probability at each step, a
  fresh ``(T, N, H)`` draw per call and direction; at evaluation every unit
  keeps that fraction of its previous value instead (the expectation).

Dropout masks are ``0`` or ``1 / (1 - p)``; none of them is drawn in eval mode.
Every draw comes from the layer's generator, so a seeded layer repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError
from rnncore.reference.cells import CELL_STATE, MUT_IH

Array = np.ndarray


@dataclass(frozen=True)
class NoiseConfig:
    """The four rates, each checked to lie in ``[0, 1)``."""

    input_dropout: float = 0.0
    recurrent_dropout: float = 0.0
    zoneout: float = 0.0
    zoneout_cell: float = 0.0

    @classmethod
    def checked(cls, mode: str, **rates: Any) -> NoiseConfig:
        """A config for cell ``mode``; names the rate a cell cannot take."""
        cfg = cls(**{k: _validate.probability(k, v) for k, v in rates.items()})
        if cfg.recurrent_dropout > 0 and mode in MUT_IH:
            raise ArgumentError(f"recurrent_dropout is not available for the {mode} cell")
        if cfg.zoneout_cell > 0 and mode not in CELL_STATE:
            raise ArgumentError(f"zoneout_cell is for the LSTM cells (a cell state), not {mode}")
        return cfg

    @property
    def active(self) -> bool:
        """Whether any rate is non-zero."""
        return any(
            v > 0
            for v in (self.input_dropout, self.recurrent_dropout, self.zoneout, self.zoneout_cell)
        )

    def repr_parts(self) -> list[str]:
        """``name=rate`` for each non-zero rate, for a layer's repr."""
        return [f"{k}={v}" for k, v in vars(self).items() if v > 0]


@dataclass
class LayerNoise:
    """What one layer of one forward call drew: ``inputs (N, D_k)`` or None, and
    per direction the keyword arguments of the kernel calls (the same for its
    forward and backward)."""

    inputs: Array | None
    kernel: list[dict[str, Array]]


def draw(
    cfg: NoiseConfig,
    training: bool,
    rng: np.random.Generator,
    shape: tuple[int, int, int, int],
    dirs: int,
    dtype: np.dtype,
) -> LayerNoise:
    """The masks of one layer: ``shape = (T, N, D_k, H)``; ``dirs`` directions."""
    T, N, D, H = shape
    inputs = None
    if training and cfg.input_dropout > 0:
        inputs = dropout_mask(rng, (N, D), cfg.input_dropout, dtype)
    kernel = []
    for _ in range(dirs):
        kw: dict[str, Array] = {}
        if training and cfg.recurrent_dropout > 0:
            kw["recurrent_mask"] = dropout_mask(rng, (N, H), cfg.recurrent_dropout, dtype)
        for name, rate in (("zoneout_h", cfg.zoneout), ("zoneout_c", cfg.zoneout_cell)):
            if rate > 0:
                kw[name] = _zoneout(rng, (T, N, H), rate, training, dtype)
        kernel.append(kw)
    return LayerNoise(inputs, kernel)


def dropout_mask(
    rng: np.random.Generator, shape: tuple[int, ...], p: float, dtype: np.dtype
) -> Array:
    """Inverted-dropout mask of ``shape``: 0 with probability ``p``, else ``1/(1-p)``."""
    keep = rng.random(shape) >= p
    return keep.astype(dtype) / dtype.type(1.0 - p)


def _zoneout(
    rng: np.random.Generator, shape: tuple[int, ...], p: float, training: bool, dtype: np.dtype
) -> Array:
    """How much of the previous state each unit keeps at each step: 1 with
    probability ``p`` else 0 in training, ``p`` everywhere at evaluation."""
    if not training:
        return np.full(shape, p, dtype)
    return (rng.random(shape) < p).astype(dtype)
