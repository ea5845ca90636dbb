"""Skip training steps whose loss or gradients are not finite, up to a limit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import NonFiniteError

__all__ = ["NonFiniteGuard"]


class NonFiniteGuard:
    """Decide whether to apply an optimizer step: ``if guard.check(loss, grads): opt.step(grads)``.

    A step with a NaN or infinite loss or gradient entry is skipped (``check``
    returns False) and counted in :attr:`skipped`; a finite one resets the run of
    consecutive skips. The ``max_in_a_row``-th consecutive skip raises
    :class:`~rnncore.errors.NonFiniteError`: training has diverged and skipping
    no longer helps (lower the learning rate, clip gradients, or use float64).

    Args:
        max_in_a_row: consecutive non-finite steps tolerated before raising (>= 1).
    """

    def __init__(self, max_in_a_row: int = 5) -> None:
        self.max_in_a_row = _validate.positive_int("max_in_a_row", max_in_a_row)
        self.skipped = 0  # non-finite steps skipped in all
        self.in_a_row = 0  # non-finite steps since the last finite one

    def __repr__(self) -> str:
        return (
            f"NonFiniteGuard(max_in_a_row={self.max_in_a_row}, skipped={self.skipped}, "
            f"in_a_row={self.in_a_row})"
        )

    def check(self, loss: float, grads: Mapping[str, Any]) -> bool:
        """True if ``loss`` and every array of ``grads`` (name -> array) are finite."""
        bad = self._first_bad(loss, grads)
        if bad is None:
            self.in_a_row = 0
            return True
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.max_in_a_row:
            raise NonFiniteError(
                f"{self.in_a_row} steps in a row had a non-finite loss or gradient (the last: "
                f"{bad}); training has diverged: lower the learning rate, clip the gradients "
                "(clip_grad_norm_) or train in float64"
            )
        return False

    @staticmethod
    def _first_bad(loss: float, grads: Mapping[str, Any]) -> str | None:
        """What is not finite (``"loss = nan"``, ``"grads['w']"``), or None."""
        if not math.isfinite(float(loss)):
            return f"loss = {float(loss)}"
        for name, g in grads.items():
            if not np.isfinite(g).all():
                return f"grads[{name!r}]"
        return None

    def state_dict(self) -> dict[str, int]:
        """The counters, JSON-serialisable."""
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore the counters of :meth:`state_dict`."""
        self.skipped = int(state["skipped"])
        self.in_a_row = int(state["in_a_row"])
