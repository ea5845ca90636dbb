"""Layer normalisation (Ba et al. 2016) and the layer-normalised LSTM step, in
float64 NumPy.

``LN(v) = gain * (v - mean) / sqrt(var + EPS) + shift`` over the last axis, with
the biased variance. The LSTM (mode ``lstm_ln``)::

    a = LN_x(x @ w_ih.T) + b_ih + LN_h(h_prev @ w_hh.T) + b_hh      (N, 4H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), tanh(a_g), sigmoid(a_o)
    c_next = f * c_prev + i * g
    h_next = o * tanh(LN_c(c_next))

``w_ln (9H,)`` holds the gains of ``LN_x`` (4H), ``LN_h`` (4H) and ``LN_c`` (H) in
this order and ``b_ln (9H,)`` their shifts. As for every cell,
:mod:`rnncore.reference.sequence` computes the input term of all steps at once
(:func:`layer_norm` of ``x @ w_ih.T``, plus ``b_ih``) and the step below owns the
rest.
"""

from __future__ import annotations

import numpy as np

from rnncore.reference.cells import project_backward, sigmoid

EPS = 1e-5  # added to the variance, as torch.nn.LayerNorm


def layer_norm(v: np.ndarray, gain: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, tuple]:
    """``LN(v)`` over the last axis of ``v (..., W)``; ``gain``, ``shift (W,)``.

    Returns ``(LN(v), cache)``, the cache ``(v_hat, rstd (..., 1))``."""
    mean = v.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((v - mean) ** 2).mean(axis=-1, keepdims=True) + EPS)
    v_hat = (v - mean) * rstd
    return gain * v_hat + shift, (v_hat, rstd)


def layer_norm_backward(
    dy: np.ndarray, cache: tuple, gain: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`layer_norm`: ``dy`` the gradient of ``LN(v)``.

    Returns ``(dv, dgain (W,), dshift (W,))``, the parameter gradients summed over
    every leading axis."""
    v_hat, rstd = cache
    g = dy * gain
    dv = rstd * (
        g - g.mean(axis=-1, keepdims=True) - v_hat * (g * v_hat).mean(axis=-1, keepdims=True)
    )
    lead = tuple(range(dy.ndim - 1))
    return dv, (dy * v_hat).sum(axis=lead), dy.sum(axis=lead)


def lstm_ln_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ln: np.ndarray,
    b_ln: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One layer-normalised LSTM step (the module's equations).

    Args:
        x_proj: ``(N, 4H)`` the input term ``LN_x(x_t @ w_ih.T) + b_ih``.
        h_prev, c_prev: ``(N, H)``; w_hh: ``(4H, H)``; b_hh: ``(4H,)`` or None.
        w_ln, b_ln: ``(9H,)`` gains and shifts.

    Returns:
        ``(h_next (N, H), c_next (N, H), step_cache)``.
    """
    H = h_prev.shape[1]
    rec, ln_h = layer_norm(h_prev @ w_hh.T, w_ln[4 * H : 8 * H], b_ln[4 * H : 8 * H])
    a = x_proj + rec + (0.0 if b_hh is None else b_hh)  # (N, 4H)
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # each (N, H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_next = f * c_prev + i * g  # (N, H)
    y, ln_c = layer_norm(c_next, w_ln[8 * H :], b_ln[8 * H :])
    tanh_y = np.tanh(y)  # (N, H)
    return o * tanh_y, c_next, (h_prev, c_prev, i, f, g, o, tanh_y, ln_h, ln_c)


def lstm_ln_step_backward(
    dh_next: np.ndarray, dc_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray, w_ln: np.ndarray
) -> tuple:
    """Backward of :func:`lstm_ln_step`.

    Returns ``(dx_proj (N, 4H), dh_prev (N, H), dc_prev (N, H), dw_hh (4H, H),
    db_hh (4H,), dw_ln (9H,), db_ln (9H,))``; ``dx_proj`` is the gradient of the
    input term, and ``dw_ln``/``db_ln`` hold this step's part of the ``LN_h``
    and ``LN_c`` gradients (zeros in the ``LN_x`` slots)."""
    h_prev, c_prev, i, f, g, o, tanh_y, ln_h, ln_c = step_cache
    H = h_prev.shape[1]
    do = dh_next * tanh_y  # (N, H)
    dy = dh_next * o * (1.0 - tanh_y**2)  # (N, H) gradient of LN_c(c_next)
    dc_ln, dgain_c, dshift_c = layer_norm_backward(dy, ln_c, w_ln[8 * H :])
    dc = dc_next + dc_ln  # (N, H) total gradient of c_next
    da = np.concatenate(  # (N, 4H) gradient of the pre-activations, order i, f, g, o
        [dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f), dc * i * (1.0 - g**2),
         do * o * (1.0 - o)],
        axis=1,
    )  # fmt: skip
    d_rec, dgain_h, dshift_h = layer_norm_backward(da, ln_h, w_ln[4 * H : 8 * H])
    dh_prev, dw_hh, _ = project_backward(d_rec, h_prev, w_hh)
    zeros = np.zeros(4 * H)
    dw_ln = np.concatenate([zeros, dgain_h, dgain_c])
    db_ln = np.concatenate([zeros, dshift_h, dshift_c])
    return da, dh_prev, dc * f, dw_hh, da.sum(axis=0), dw_ln, db_ln


def gru_ln_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_ln: np.ndarray,
    b_ln: np.ndarray,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple]:
    """One layer-normalised GRU step (PyTorch's reset-after equations with the
    recurrent term ``LN_h(h_prev @ w_hh.T) + b_hh``).

    Args:
        x_proj: ``(N, 3H)`` the input term ``LN_x(x_t @ w_ih.T) + b_ih``.
        h_prev: ``(N, H)``; w_hh: ``(3H, H)``; b_hh: ``(3H,)`` or None.
        w_ln, b_ln: ``(6H,)`` gains and shifts of ``LN_x`` (3H) and ``LN_h`` (3H).
        mask: ``(N, H)`` recurrent dropout mask or None (the product reads
            ``h_prev * mask``, the update ``z * h_prev`` the state itself).

    Returns:
        ``(h_next (N, H), step_cache)``.
    """
    H = h_prev.shape[1]
    h_rec = h_prev if mask is None else h_prev * mask
    rec, ln_h = layer_norm(h_rec @ w_hh.T, w_ln[3 * H :], b_ln[3 * H :])
    rec = rec + (0.0 if b_hh is None else b_hh)  # (N, 3H)
    x_r, x_z, x_n = np.split(x_proj, 3, axis=1)
    h_r, h_z, h_n = np.split(rec, 3, axis=1)
    r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
    n = np.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h_prev, (h_prev, h_rec, r, z, n, h_n, ln_h, mask)


def gru_ln_step_backward(
    dh_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray, w_ln: np.ndarray
) -> tuple:
    """Backward of :func:`gru_ln_step`: ``(dx_proj (N, 3H), dh_prev (N, H), dw_hh
    (3H, H), db_hh (3H,), dw_ln (6H,), db_ln (6H,))``, the last two holding this
    step's part of the ``LN_h`` gradients (zeros in the ``LN_x`` slots)."""
    h_prev, h_rec, r, z, n, h_n, ln_h, mask = step_cache
    H = h_prev.shape[1]
    dn_pre = dh_next * (1.0 - z) * (1.0 - n**2)  # (N, H)
    dr_pre = dn_pre * h_n * r * (1.0 - r)
    dz_pre = dh_next * (h_prev - n) * z * (1.0 - z)
    dx_proj = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)  # (N, 3H)
    d_rec = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # of LN_h(.) + b_hh
    d_prod, dgain, dshift = layer_norm_backward(d_rec, ln_h, w_ln[3 * H :])
    dh_rec, dw_hh, _ = project_backward(d_prod, h_rec, w_hh)
    dh_prev = dh_next * z + (dh_rec if mask is None else dh_rec * mask)
    zeros = np.zeros(3 * H)
    dw_ln, db_ln = np.concatenate([zeros, dgain]), np.concatenate([zeros, dshift])
    return dx_proj, dh_prev, dw_hh, d_rec.sum(axis=0), dw_ln, db_ln
