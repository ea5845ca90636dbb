"""Undo one optimizer step: copies of the parameters and buffers taken before it.

Used by :meth:`rnncore.optim.NonFiniteGuard.step` to skip a step whose update
left a weight non-finite (a learning rate far too large): the copies are put
back, so the skipped step changed nothing. The copies are kept between steps
(one buffer per array, reused), which costs one more copy of the parameters
and optimizer buffers in memory and one copy of them per step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["StepUndo"]


def _arrays(optimizer: Any) -> dict[tuple[str, str], np.ndarray]:
    """Every array a step of ``optimizer`` writes: its parameters and buffers."""
    out = {("param", name): p for name, p in optimizer.params.items()}
    for buffer, per_param in optimizer.state.items():
        for name, a in per_param.items():
            out[(buffer, name)] = a
    return out


class StepUndo:
    """``save(opt)`` before a step, ``restore(opt)`` to return to that point."""

    def __init__(self) -> None:
        self._copies: dict[tuple[str, str], np.ndarray] = {}
        self._steps = 0

    def save(self, optimizer: Any) -> None:
        """Copy ``optimizer``'s parameters, buffers and step count."""
        for key, a in _arrays(optimizer).items():
            c = self._copies.get(key)
            if c is None or c.shape != a.shape or c.dtype != a.dtype:
                c = self._copies[key] = np.empty_like(a)
            np.copyto(c, a)
        self._steps = optimizer.steps

    def restore(self, optimizer: Any) -> None:
        """Put the copies of the last :meth:`save` back, in place."""
        for key, a in _arrays(optimizer).items():
            np.copyto(a, self._copies[key])
        optimizer.steps = self._steps
