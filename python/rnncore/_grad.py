"""Whether forward calls keep what a backward needs: :func:`no_grad` turns it
off, as ``torch.no_grad()`` does.

Under ``no_grad`` a recurrent layer's forward runs the kernels' inference
path: the same time loop and the same results, bit for bit, without the
``(T, N, G*H)`` gates and ``(T+1, N, H)`` states a backward would read (each
step's buffers are reused by the next), so an inference call allocates little
more than its output. The layer then keeps nothing, and a ``backward`` raises
:class:`~rnncore.errors.StateError`. The setting is per thread, like torch's.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

__all__ = ["enable_grad", "is_grad_enabled", "no_grad"]

_local = threading.local()

Fn = TypeVar("Fn", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """True unless this thread is inside :func:`no_grad`."""
    return getattr(_local, "depth", 0) == 0


class no_grad:  # named as torch's, used the same way
    """Context manager (or decorator) under which forward calls keep nothing
    for a backward::

        with rnncore.no_grad():
            output, state = lstm(x)

    Nests, and applies to the calling thread only.
    """

    def __enter__(self) -> no_grad:
        _local.depth = getattr(_local, "depth", 0) + 1
        return self

    def __exit__(self, *exc: object) -> None:
        _local.depth -= 1

    def __call__(self, fn: Fn) -> Fn:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapped  # type: ignore[return-value]


class enable_grad:  # named as torch's, used the same way
    """Context manager under which forward calls keep what a backward needs
    again, inside :class:`no_grad`: for calls that read what they kept (a
    layer's ``trace``, a torch autograd forward). Applies to the calling
    thread only."""

    def __enter__(self) -> enable_grad:
        self._saved = getattr(_local, "depth", 0)
        _local.depth = 0
        return self

    def __exit__(self, *exc: object) -> None:
        _local.depth = self._saved
