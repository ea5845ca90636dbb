"""Named per-step activations from the cache a kernel forward returns.

The compiled kernels keep, for the backward, the activated gates ``(T, N, G*H)``,
the hidden states ``(T+1, N, H)`` and, for LSTMs, the cell states ``(T+1, N, H)``.
:func:`cache_arrays` slices them into named ``(T, N, H)`` arrays: ``h`` (the
state after step ``t``), ``c`` (LSTM), and the gates ``i, f, g, o`` (LSTM) or
``r, z, n`` (GRU). The NumPy reference keeps per-step tuples instead; they are
read into the same names, so a layer on either backend traces the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnncore.errors import ArgumentError
from rnncore.nn._base import Array

# Gate names of each kernel mode, in PyTorch's order within the (G*H, ...) weights.
# The layer-normalised cells keep their gates and states in the same layout.
GATE_NAMES = {
    "rnn_tanh": (),
    "rnn_relu": (),
    "lstm": ("i", "f", "g", "o"),
    "lstm_ln": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
    "gru_ln": ("r", "z", "n"),
}
LSTMS = ("lstm", "lstm_ln")


def names(mode: str) -> tuple[str, ...]:
    """The arrays a trace of ``mode`` holds: ``h``, ``c`` for LSTM, then the gates.

    Raises:
        ArgumentError: ``mode`` is a cell variant that traces do not cover yet.
    """
    if mode not in GATE_NAMES:
        raise ArgumentError(f"traces cover the {', '.join(GATE_NAMES)} cells, not {mode!r}")
    return ("h",) + (("c",) if mode in LSTMS else ()) + GATE_NAMES[mode]


def cache_arrays(mode: str, cache: Any, reverse: bool) -> dict[str, Array]:
    """``{name: (T, N, H)}`` of one direction of one layer, from its forward cache."""
    if isinstance(cache, dict) and "step_caches" in cache:
        return _reference_arrays(mode, cache["step_caches"])
    states = cache["states"]  # (T+1, N, H): slot t+1 (forward) or t (reverse) after step t
    after = slice(0, -1) if reverse else slice(1, None)
    out = {"h": states[after]}
    if mode in LSTMS:
        out["c"] = cache["cells"][after]
    gates = cache["gates"]  # (T, N, G*H), activated
    H = states.shape[-1]
    for j, name in enumerate(GATE_NAMES[mode]):
        out[name] = gates[..., j * H : (j + 1) * H]
    return out


def _reference_arrays(mode: str, steps: list[tuple]) -> dict[str, Array]:
    """The same names from :mod:`rnncore.reference`'s per-step caches."""
    cols: dict[str, list[Array]] = {k: [] for k in names(mode)}
    for s in steps:
        if mode in LSTMS:  # lstm_ln: tanh of the normalised c, then its two LN caches
            _, c_prev, i, f, g, o, tanh_c, *_ = s
            vals = {"h": o * tanh_c, "c": f * c_prev + i * g, "i": i, "f": f, "g": g, "o": o}
        elif mode == "gru_ln":
            h_prev, _, r, z, n, *_ = s
            vals = {"h": (1 - z) * n + z * h_prev, "r": r, "z": z, "n": n}
        elif mode == "gru":
            h_prev, r, z, n, *_ = s
            vals = {"h": (1 - z) * n + z * h_prev, "r": r, "z": z, "n": n}
        else:
            vals = {"h": s[1]}
        for k, v in vals.items():
            cols[k].append(v)
    return {k: np.stack(v) for k, v in cols.items()}
