"""Skip training steps whose loss or gradients are not finite, up to a limit."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import DivergedError
from rnncore.optim.undo import StepUndo

__all__ = ["NonFiniteGuard"]


class NonFiniteGuard:
    """Decide whether to apply an optimizer step: ``if guard.check(loss, grads): opt.step(grads)``.

    A step with a NaN or infinite loss or gradient entry is skipped (``check``
    returns False) and counted in :attr:`skipped`; so is a step whose update
    would leave a weight non-finite (the caller undoes it and calls
    :meth:`skip`). A finite one resets the run of consecutive skips. The
    ``max_in_a_row``-th consecutive skip raises
    :class:`~rnncore.errors.DivergedError` (a ``NonFiniteError``): training has
    diverged and skipping no longer helps (lower the learning rate, clip
    gradients, or use float64).

    Args:
        max_in_a_row: consecutive non-finite steps tolerated before raising (>= 1).
    """

    def __init__(self, max_in_a_row: int = 5) -> None:
        self.max_in_a_row = _validate.positive_int("max_in_a_row", max_in_a_row)
        self.skipped = 0  # non-finite steps skipped in all
        self.in_a_row = 0  # non-finite steps since the last finite one
        self._undo = StepUndo()  # for step(): the arrays before the last step

    def __repr__(self) -> str:
        return (
            f"NonFiniteGuard(max_in_a_row={self.max_in_a_row}, skipped={self.skipped}, "
            f"in_a_row={self.in_a_row})"
        )

    def check(self, loss: float, grads: Mapping[str, Any], lr: float | None = None) -> bool:
        """True if ``loss`` and every array of ``grads`` (name -> array) are finite;
        else :meth:`skip` (``lr``, the step's learning rate, for its message)."""
        if not self.screen(loss, grads, lr):
            return False
        self.in_a_row = 0
        return True

    def screen(self, loss: float, grads: Mapping[str, Any], lr: float | None = None) -> bool:
        """:meth:`check` without counting a pass as a good step: for a caller
        that then takes the step with :meth:`step` (or :meth:`passed`)."""
        bad = self._first_bad(loss, grads)
        return True if bad is None else self.skip(bad, lr)

    def passed(self) -> None:
        """A step was taken and kept: the run of consecutive skips ends."""
        self.in_a_row = 0

    def skip(self, reason: str, lr: float | None = None) -> bool:
        """Count a skipped step (``reason``: what was not finite); False, or
        :class:`~rnncore.errors.DivergedError` at the ``max_in_a_row``-th in a row."""
        self.skipped += 1
        self.in_a_row += 1
        if self.in_a_row >= self.max_in_a_row:
            at = "" if lr is None else f" at learning rate {lr:g}"
            raise DivergedError(
                f"{self.in_a_row} steps in a row had a non-finite loss, gradient or "
                f"update{at} (the last: {reason}); "
                "training has diverged: lower the learning rate, clip the gradients "
                "(clip_grad_norm_) or train in float64"
            )
        return False

    def step(self, optimizer: Any, grads: Mapping[str, Any]) -> bool:
        """``optimizer.step(grads)``, undone and counted as a skip (:meth:`skip`) if
        it leaves a parameter non-finite; True if it was kept."""
        self._undo.save(optimizer)
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            optimizer.step(grads)
        bad = _validate.first_non_finite(optimizer.params)
        if bad is None:
            self.passed()
            return True
        self._undo.restore(optimizer)
        return self.skip(f"the update made {bad} non-finite; it was undone", optimizer.lr)

    @staticmethod
    def _first_bad(loss: float, grads: Mapping[str, Any]) -> str | None:
        """What is not finite (``"loss = nan"``, ``"grads['w']"``), or None."""
        if not math.isfinite(float(loss)):
            return f"loss = {float(loss)}"
        name = _validate.first_non_finite(grads)
        return None if name is None else f"grads[{name!r}]"

    def state_dict(self) -> dict[str, int]:
        """The counters, JSON-serialisable."""
        return {"skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        """Restore the counters of :meth:`state_dict`."""
        self.skipped = int(state["skipped"])
        self.in_a_row = int(state["in_a_row"])
