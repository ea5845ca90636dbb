"""Stopping a run cleanly on Ctrl-C (SIGINT) or SIGTERM.

Inside :func:`stop_requests`, the first of those signals does not stop the
program: it is recorded, and the training loop ends after the step it is in
(``Trainer.fit`` then saves ``latest/`` and returns with stop reason
``"interrupted"``). A second one raises :class:`KeyboardInterrupt` at once.
The handlers are installed only in the main thread (where Python runs signal
handlers) and the previous ones are put back on leaving.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StopRequest", "stop_requests"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """The signal that asked the run to stop (None: none yet)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def reason(self) -> str | None:
        """``"interrupted"`` once a stop was requested, else None."""
        return None if self.signal is None else "interrupted"

    def install(self) -> None:
        """Handle SIGINT and SIGTERM here (in the main thread; elsewhere nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for s in SIGNALS:
            self._previous[s] = signal.getsignal(s)
            signal.signal(s, self._handle)

    def restore(self) -> None:
        """Put back the handlers :meth:`install` replaced."""
        for s, handler in self._previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt  # the second request: stop now
        self.signal = signum
        print(
            f"\nrnncore: {signal.Signals(signum).name}: stopping after this step and saving "
            "latest/ (again to stop at once)",
            file=sys.stderr,
            flush=True,
        )


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Record SIGINT/SIGTERM in the returned :class:`StopRequest` while inside."""
    request = StopRequest()
    request.install()
    try:
        yield request
    finally:
        request.restore()
