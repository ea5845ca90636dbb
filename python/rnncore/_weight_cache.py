"""The cache of packed weights: what it holds, its size, emptying it.

The sequence kernels' forward packs a layer's ``W_ih`` and ``W_hh`` into panels
for its products. A call reuses the panels an earlier call packed when the
weights hold bitwise the same values (an entry keeps a copy to compare with), so
repeated inference calls stop paying for the packing, while any change to the
weights, in place or not, is seen by the next call. Weights that change between
calls, as in training, soon stop being copied (see ``rust/src/panel/cache.rs``).
The compiled decoders (``rnncore.decode``) pack their own layout once per
decoding call and do not use this cache.
"""

from __future__ import annotations

import numbers

from rnncore._native import kernels as _kernels
from rnncore.errors import ArgumentError, DTypeError

__all__ = ["clear_weight_cache", "set_weight_cache_limit", "weight_cache_info"]


def weight_cache_info() -> dict[str, int]:
    """The cache's state: ``entries``, ``bytes`` held (copies and panels),
    ``limit`` in bytes, and the ``hits`` and ``misses`` since it was cleared."""
    entries, held, limit, hits, misses = _kernels().weight_cache_stats()
    return {"entries": entries, "bytes": held, "limit": limit, "hits": hits, "misses": misses}


def set_weight_cache_limit(mib: int) -> None:
    """Let the cache hold at most ``mib`` MiB (0 turns it off), dropping the least
    recently used entries to fit. The default is 512, or ``RNNCORE_WEIGHT_CACHE_MB``."""
    if isinstance(mib, bool) or not isinstance(mib, numbers.Integral):
        raise DTypeError(f"mib must be an integer, got {type(mib).__name__}")
    if int(mib) < 0 or int(mib) > 1 << 40:
        raise ArgumentError(f"mib must lie in 0..2**40, got {int(mib)}")
    _kernels().set_weight_cache_limit(int(mib) << 20)


def clear_weight_cache() -> None:
    """Drop every entry and reset the counters."""
    _kernels().clear_weight_cache()
