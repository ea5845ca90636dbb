"""A progress bar with the loss and the speed in symbols per second.

Wraps ``tqdm``; it is shown only when asked for and stderr is a terminal, so
logs and test output stay clean.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

__all__ = ["Progress"]


class Progress:
    """Args:
    total: the step count to reach, or None when unknown.
    initial: the step count already done (on resume).
    enabled: show the bar (still hidden when stderr is not a terminal) and the
        lines passed to :meth:`write`.
    """

    def __init__(self, total: int | None, initial: int, enabled: bool) -> None:
        show = enabled and sys.stderr.isatty()
        self._echo = enabled
        self._bar = tqdm(
            total=total, initial=initial, disable=not show, unit="step", dynamic_ncols=True
        )

    def update(self, steps: int, loss: float | None, chars_per_s: float) -> None:
        """Advance by ``steps`` and show the latest loss and speed."""
        shown = "nan" if loss is None else f"{loss:.3f}"
        self._bar.set_postfix_str(f"loss {shown}, {chars_per_s:,.0f} chars/s", refresh=False)
        self._bar.update(steps)

    def write(self, message: str) -> None:
        """Print a line to stderr without breaking the bar (nothing if not enabled)."""
        if self._echo:
            self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()
