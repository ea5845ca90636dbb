"""One object, several threads: calls are serialised, and a backward that would
read another thread's forward is refused.

A layer or model keeps what its last forward computed for the backward that
follows. :class:`CallGuard` (a base class) wraps the subclass's ``forward``,
``loss``, ``trace`` and ``backward``:

- each runs under the object's own re-entrant lock, so two threads never run
  them on one object at the same time (gradients accumulate one call after
  the other);
- ``backward`` raises :class:`~rnncore.errors.StateError` if the forward it
  would differentiate ran in another thread, instead of returning the
  gradient of another thread's input.

The locks live outside the objects (a weak dictionary), so pickling and
``copy.deepcopy`` are unchanged and a copy gets its own.
"""

from __future__ import annotations

import functools
import itertools
import threading
import weakref
from typing import Any, Callable

from rnncore.errors import StateError

__all__ = ["CallGuard"]

FORWARDS = ("forward", "loss", "trace")  # calls that leave a trace for backward


class _Guard:
    __slots__ = ("lock", "thread")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.thread: int | None = None  # the thread of the last forward


_guards: weakref.WeakKeyDictionary[Any, _Guard] = weakref.WeakKeyDictionary()
_guards_lock = threading.Lock()


def _guard(obj: Any) -> _Guard:
    g = _guards.get(obj)
    if g is None:
        with _guards_lock:
            g = _guards.setdefault(obj, _Guard())
    return g


_local = threading.local()
_tokens = itertools.count(1)


def _token() -> int:
    """This thread's own number: unlike ``threading.get_ident()``, never reused
    by a later thread (it lives in thread-local storage, which dies with it)."""
    token = getattr(_local, "token", None)
    if token is None:
        token = _local.token = next(_tokens)
    return token


def _wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        g = _guard(self)
        with g.lock:
            me = _token()
            if name == "backward" and g.thread not in (None, me):
                raise StateError(
                    f"{type(self).__name__}.backward: the forward it would differentiate "
                    "ran in another thread; run forward and backward of one object in "
                    "the same thread (or give each thread its own copy)"
                )
            out = fn(self, *args, **kwargs)
            if name in FORWARDS:
                g.thread = me
            return out

    guarded._call_guarded = True  # type: ignore[attr-defined]
    return guarded


class CallGuard:
    """Base class: guards the ``forward``/``loss``/``trace``/``backward`` a
    subclass defines (see the module docstring)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in (*FORWARDS, "backward"):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_call_guarded", False):
                setattr(cls, name, _wrap(name, fn))
