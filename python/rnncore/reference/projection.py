"""One step of the LSTM with projections (torch's ``proj_size``), in float64 NumPy.

The LSTM step of :func:`~rnncore.reference.cells.lstm_step` followed by a
projection of its hidden state without bias::

    r, c_next = lstm_step(x_proj, h_prev, c_prev, w_hh, b_hh)   # r = o * tanh(c_next)
    h_next = r @ w_hr.T

Shapes: N batch, H hidden (the cell state and the gates), P projection size
(``1 <= P < H``, the hidden state ``h``); ``x_proj (N, 4H)``, ``h_prev, h_next
(N, P)``, ``c_prev, c_next (N, H)``, ``w_hh (4H, P)``, ``b_hh (4H,)`` or None,
``w_hr (P, H)``.
"""

from __future__ import annotations

import numpy as np

from rnncore.reference.cells import lstm_step, lstm_step_backward


def lstm_proj_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_hr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One step: ``(h_next (N, P), c_next (N, H), step_cache)``."""
    r, c_next, lstm_cache = lstm_step(x_proj, h_prev, c_prev, w_hh, b_hh)  # r (N, H)
    h_next = r @ w_hr.T  # (N, P)
    return h_next, c_next, (lstm_cache, r)


def lstm_proj_step_backward(
    dh_next: np.ndarray,
    dc_next: np.ndarray,
    step_cache: tuple,
    w_hh: np.ndarray,
    w_hr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_proj_step` from ``dh_next (N, P)``, ``dc_next (N, H)``.

    Returns:
        ``(dx_proj (N, 4H), dh_prev (N, P), dc_prev (N, H), dw_hh (4H, P),
        db_hh (4H,), dw_hr (P, H))``.
    """
    lstm_cache, r = step_cache
    dr = dh_next @ w_hr  # (N, H) gradient of o * tanh(c_next)
    dw_hr = dh_next.T @ r  # (P, H)
    da, dh_prev, dc_prev, dw_hh, db_hh = lstm_step_backward(dr, dc_next, lstm_cache, w_hh)
    return da, dh_prev, dc_prev, dw_hh, db_hh, dw_hr
