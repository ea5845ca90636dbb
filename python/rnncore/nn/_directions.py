"""The two directions of a bidirectional layer, side by side on two cores.

The directions of one layer are independent calls of the kernels (each
releases the GIL), so with two or more kernel threads and enough work the
reverse direction runs in a second thread while the calling thread runs the
forward one. Each call gives the same bits wherever and whenever it runs (the
kernels' results do not depend on the thread count), so running them together
changes only the time. Small calls run one after the other: handing one to
another thread costs more than it saves.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

__all__ = ["MIN_WORK", "both"]

# Multiply-adds of one direction (T * N * G*H * (D + H)) from which the two run
# together: about 1 ms of kernel time, against ~30 us to hand one to the worker.
MIN_WORK = 4_000_000

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(1, thread_name_prefix="rnncore-direction")
    return _pool


def both(
    forward: Callable[[], Any], reverse: Callable[[], Any], work: int, kernels: Any
) -> tuple[Any, Any]:
    """``(forward(), reverse())``, the two together when ``work`` (multiply-adds of
    one) is at least :data:`MIN_WORK` and ``kernels`` (the module the calls run
    on) is the compiled one with two or more threads; else one after the other."""
    threads = getattr(kernels, "get_num_threads", None)
    if work < MIN_WORK or threads is None or threads() < 2:
        return forward(), reverse()
    pending = _worker().submit(reverse)
    try:
        first = forward()
    except BaseException:
        wait([pending])  # the reverse call reads the same arrays: let it end first
        raise
    return first, pending.result()
