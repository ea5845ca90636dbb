"""One time step of the MUT cells (Jozefowicz, Zaremba & Sutskever 2015, "An
Empirical Exploration of Recurrent Network Architectures"), forward and backward,
in float64 NumPy::

    MUT1: z = sigm(W_xz x + b_z)
          r = sigm(W_xr x + W_hr h + b_r)
          h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
    MUT2: z = sigm(W_xz x + W_hz h + b_z)
          r = sigm(x + W_hr h + b_r)
          h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
    MUT3: z = sigm(W_xz x + W_hz tanh(h) + b_z)
          r = sigm(W_xr x + W_hr h + b_r)
          h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)

Unlike the cells of :mod:`.cells`, a MUT step takes ``x_t (N, D)`` itself (MUT1
adds ``tanh(x)``, MUT2 ``x``, so both need ``D == H``) and the layer's whole
weights, laid out as :data:`~rnncore.reference.cells.MUT_IH` and
:data:`~rnncore.reference.cells.MUT_HH` say: every ``H``-row block of ``w_ih
(IH, D)``, ``w_hh (HH, H)``, ``b_ih (IH,)``, ``b_hh (HH,)`` feeds one gate, and the
bias of a gate (``b_z``, ``b_r``, ``b_h``) is the sum of its blocks of ``b_ih``
and ``b_hh``. The step cache holds what the backward needs; the backward returns
the gradient of every input: ``(dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh)``.
"""

from __future__ import annotations

import numpy as np

from rnncore.reference.cells import MUT_HH, MUT_IH, sigmoid


def _blocks(mode, w_ih, w_hh, b_ih, b_hh, H):
    """The named blocks: ``wx[g] (H, D)`` and ``wh[g] (H, H)`` for the gates ``g`` in
    ``"zrn"`` that have one, and ``b[g] (H,)`` the whole bias of each gate."""
    wx = {g: w_ih[k * H : (k + 1) * H] for k, g in enumerate(MUT_IH[mode])}
    wh = {g: w_hh[k * H : (k + 1) * H] for k, g in enumerate(MUT_HH[mode])}
    b = {g: np.zeros(H) for g in "zrn"}
    if b_ih is not None:
        for k, g in enumerate(MUT_IH[mode]):
            b[g] = b[g] + b_ih[k * H : (k + 1) * H]
        for k, g in enumerate(MUT_HH[mode]):
            b[g] = b[g] + b_hh[k * H : (k + 1) * H]
    return wx, wh, b


def mut_step(
    mode: str,
    x: np.ndarray,
    h_prev: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
) -> tuple[np.ndarray, tuple]:
    """One step of ``mode`` (``"mut1"``, ``"mut2"``, ``"mut3"``), equations above.

    Args:
        x: ``(N, D)`` input of this step.
        h_prev: ``(N, H)`` previous hidden state.
        w_ih: ``(IH, D)``; w_hh: ``(HH, H)``; b_ih: ``(IH,)``, b_hh: ``(HH,)`` or both None.

    Returns:
        ``(h_next (N, H), step_cache)``.
    """
    H = h_prev.shape[1]
    wx, wh, b = _blocks(mode, w_ih, w_hh, b_ih, b_hh, H)
    a_z = x @ wx["z"].T + b["z"]  # (N, H) update-gate pre-activation
    if mode == "mut2":
        a_z = a_z + h_prev @ wh["z"].T
    elif mode == "mut3":
        a_z = a_z + np.tanh(h_prev) @ wh["z"].T
    z = sigmoid(a_z)  # (N, H)
    x_r = x if mode == "mut2" else x @ wx["r"].T  # (N, H)
    r = sigmoid(x_r + h_prev @ wh["r"].T + b["r"])  # (N, H) reset gate
    rh = r * h_prev  # (N, H) the state after the reset
    x_n = np.tanh(x) if mode == "mut1" else x @ wx["n"].T  # (N, H)
    n = np.tanh(rh @ wh["n"].T + x_n + b["n"])  # (N, H) candidate state
    h_next = n * z + h_prev * (1.0 - z)  # (N, H)
    return h_next, (x, h_prev, z, r, n, rh)


def mut_step_backward(
    mode: str,
    dh_next: np.ndarray,
    step_cache: tuple,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
) -> tuple:
    """Backward of :func:`mut_step`.

    Args:
        dh_next: ``(N, H)`` gradient of ``h_next``.
        step_cache: what :func:`mut_step` returned.
        w_ih, w_hh: as given to :func:`mut_step`.

    Returns:
        ``(dx (N, D), dh_prev (N, H), dw_ih (IH, D), dw_hh (HH, H), db_ih (IH,),
        db_hh (HH,))``; the bias gradients are always computed (the caller drops
        them for a layer without bias).
    """
    x, h_prev, z, r, n, rh = step_cache
    H = h_prev.shape[1]
    wx, wh, _ = _blocks(mode, w_ih, w_hh, None, None, H)
    dn_pre = dh_next * z * (1.0 - n**2)  # (N, H)
    dz_pre = dh_next * (n - h_prev) * z * (1.0 - z)  # (N, H)
    drh = dn_pre @ wh["n"]  # (N, H) gradient of r * h_prev
    dr_pre = drh * h_prev * r * (1.0 - r)  # (N, H)
    dh_prev = dh_next * (1.0 - z) + drh * r + dr_pre @ wh["r"]  # (N, H)
    if mode == "mut2":
        dh_prev = dh_prev + dz_pre @ wh["z"]
    elif mode == "mut3":
        dh_prev = dh_prev + (dz_pre @ wh["z"]) * (1.0 - np.tanh(h_prev) ** 2)
    da = {"z": dz_pre, "r": dr_pre, "n": dn_pre}  # gradient of each gate's pre-activation
    dx = sum(da[g] @ wx[g] for g in MUT_IH[mode])  # (N, D)
    if mode == "mut1":
        dx = dx + dn_pre * (1.0 - np.tanh(x) ** 2)
    elif mode == "mut2":
        dx = dx + dr_pre
    # What each w_hh block multiplies: tanh(h) for MUT3's W_hz, r * h for W_hh.
    h_in = {"z": np.tanh(h_prev) if mode == "mut3" else h_prev, "r": h_prev, "n": rh}
    dw_ih = np.concatenate([da[g].T @ x for g in MUT_IH[mode]])  # (IH, D)
    dw_hh = np.concatenate([da[g].T @ h_in[g] for g in MUT_HH[mode]])  # (HH, H)
    db_ih = np.concatenate([da[g].sum(axis=0) for g in MUT_IH[mode]])  # (IH,)
    db_hh = np.concatenate([da[g].sum(axis=0) for g in MUT_HH[mode]])  # (HH,)
    return dx, dh_prev, dw_ih, dw_hh, db_ih, db_hh
