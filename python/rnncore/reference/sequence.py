"""One direction of one recurrent layer over a whole sequence: the time loop, the
variable-length masking and the reverse direction, on top of :mod:`.cells`.

Masking (PyTorch's packed-sequence semantics): sequence ``b`` is active at step ``t``
iff ``t < lengths[b]``, in both directions. At an inactive step its state stays as it
was and its output is 0. Forward, the loop runs ``t = 0 .. T-1`` and ``h_n`` is the
state after step ``lengths[b] - 1``. Reverse, the loop runs ``t = T-1 .. 0``, so a
sequence keeps ``h0`` through its padded steps, starts at its own last step
``lengths[b] - 1`` and ends after step 0.

The backward runs the same loop the other way: at an inactive step the gradient of
the state passes through unchanged and ``d_output`` is ignored.

Dropout inside the recurrence (all optional, drawn by the caller):

- ``recurrent_mask (N, H)``: variational dropout (Gal & Ghahramani 2016) of the
  state the recurrent products read, ``h * mask``, the same mask at every step;
  the state a GRU carries (``z * h``) is not masked. Not for the MUT cells.
- ``zoneout_h (T, N, H)``: zoneout (Krueger et al. 2017), ``h_t = z_t * h_{t-1} +
  (1 - z_t) * h~_t`` with ``h~_t`` the cell's own new state; ``z`` is 0 or 1 in
  training and the rate itself at evaluation.
- ``zoneout_c (T, N, H)``: the same for the cell state of the lstm modes; the
  cell's ``h~_t`` is computed from its own update ``c~_t``.

``lstm`` with ``w_hr (P, H)`` is the LSTM with projections (torch's ``proj_size``,
:mod:`.projection`): ``h0``, ``h_n``, the output and their gradients have ``P``
features instead of ``H``, ``w_hh`` is ``(4H, P)``, and :func:`backward` returns
``dw_hr (P, H)`` as an eighth entry. It takes none of the dropout above.
"""

from __future__ import annotations

import numpy as np

from rnncore.errors import ArgumentError, DTypeError, ShapeError
from rnncore.reference.cells import (
    CELL_STATE,
    LAYER_NORM,
    MUT_IH,
    PEEPHOLE,
    SQUARE_INPUT,
    gate_count,
    gru_reset_before_step,
    gru_reset_before_step_backward,
    gru_step,
    gru_step_backward,
    lstm_cifg_step,
    lstm_cifg_step_backward,
    lstm_peephole_step,
    lstm_peephole_step_backward,
    lstm_step,
    lstm_step_backward,
    rnn_step,
    rnn_step_backward,
    weight_rows,
)
from rnncore.reference.layer_norm import (
    gru_ln_step,
    gru_ln_step_backward,
    layer_norm,
    layer_norm_backward,
    lstm_ln_step,
    lstm_ln_step_backward,
)
from rnncore.reference.mut_cells import mut_step, mut_step_backward
from rnncore.reference.projection import lstm_proj_step, lstm_proj_step_backward


def forward(
    mode: str,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    lengths: np.ndarray | None = None,
    reverse: bool = False,
    *,
    w_peep: np.ndarray | None = None,
    w_hr: np.ndarray | None = None,
    w_ln: np.ndarray | None = None,
    b_ln: np.ndarray | None = None,
    recurrent_mask: np.ndarray | None = None,
    zoneout_h: np.ndarray | None = None,
    zoneout_c: np.ndarray | None = None,
    keep: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict | None]:
    """Run one direction of one layer over ``T`` steps, in float64.

    Args:
        mode: ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"``, ``"gru"``,
            ``"gru_reset_before"``, ``"lstm_cifg"``, ``"lstm_peephole"``, ``"mut1"``,
            ``"mut2"`` or ``"mut3"``.
        x: ``(T, N, D)`` inputs (``D == H`` for mut1 and mut2).
        h0: ``(N, H)`` initial hidden state.
        c0: ``(N, H)`` initial cell state for the lstm modes, None otherwise.
        w_ih: ``(G*H, D)``; w_hh: ``(G*H, H)``, gates stacked as in PyTorch (the MUTs:
            fewer rows, see :func:`~rnncore.reference.cells.weight_rows`).
        b_ih, b_hh: ``(G*H,)`` each (the rows of their matrix), or both None.
        lengths: ``(N,)`` integers in ``1..T`` in any order, or None (all ``T``).
        reverse: run from each sequence's own last step down to step 0.
        w_peep: ``(3H,)`` peephole weights ``p_i|p_f|p_o`` for lstm_peephole, None
            otherwise.
        w_hr: ``(P, H)`` projection (lstm only, ``1 <= P < H``): then ``h0`` is
            ``(N, P)`` and ``w_hh`` ``(4H, P)``; None for no projection.
        w_ln, b_ln: ``(B*H,)`` gains and shifts of the layer normalisations of
            lstm_ln (``B = 9``) and gru_ln (``B = 6``)
            (:mod:`rnncore.reference.layer_norm`), None otherwise.
        recurrent_mask, zoneout_h, zoneout_c: dropout inside the recurrence, see the
            module docstring; None for none.
        keep: False for a call no backward follows: ``cache`` is then None.

    Returns:
        ``(output (T, N, H), h_n (N, H), c_n (N, H) or None, cache)``; output is 0 at
        steps ``t >= lengths[b]``; ``cache`` is for :func:`backward` only. With
        ``w_hr`` output is ``(T, N, P)`` and ``h_n`` ``(N, P)``.
    """
    G = gate_count(mode)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = _float64(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    w_peep, w_hr = _float64(w_peep, w_hr)
    T, N, H, HS = _check_layer(mode, G, x, w_ih, w_hh, b_ih, b_hh, w_peep, w_hr)
    _check_shape("h0", h0, (N, HS))
    if (c0 is not None) != (mode in CELL_STATE):
        raise ArgumentError(
            "c0 must be given for lstm, lstm_cifg and lstm_peephole and only for them"
        )
    if c0 is not None:
        _check_shape("c0", c0, (N, H))
    lengths = _lengths(lengths, N, T)
    mask, zh, zc = _noise(mode, T, N, H, recurrent_mask, zoneout_h, zoneout_c)
    if w_hr is not None and not (mask is None and zh is None and zc is None):
        raise ArgumentError("the LSTM with projections (w_hr) takes no dropout masks")
    ln = _layer_norm_weights(mode, H, w_ln, b_ln)

    mut = mode in MUT_IH  # a MUT step takes x itself and all the weights
    x_proj = x @ w_ih.T  # (T, N, G*H) input projection of every step at once
    cache: dict = {}
    if ln is not None:
        x_proj, cache["ln_x"] = layer_norm(x_proj, ln[0][: G * H], ln[1][: G * H])
    if b_ih is not None and not mut:
        x_proj = x_proj + b_ih
    output = np.zeros((T, N, HS))
    h, c = h0, c0  # (N, HS), (N, H); c is None unless lstm
    step_caches = [None] * T
    for t in _time_steps(T, reverse):
        active = (t < lengths)[:, None]  # (N, 1) which sequences run step t
        if mut:
            h_next, step_caches[t] = mut_step(mode, x[t], h, w_ih, w_hh, b_ih, b_hh)
            c_next = None
        elif w_hr is not None:
            h_next, c_next, step_caches[t] = lstm_proj_step(x_proj[t], h, c, w_hh, b_hh, w_hr)
        else:
            h_next, c_next, step_caches[t] = _step(
                mode, x_proj[t], h, c, w_hh, b_hh, w_peep, mask, ln
            )
        if zc is not None:
            c_next = zc[t] * c + (1.0 - zc[t]) * c_next  # (N, H)
        if zh is not None:
            h_next = zh[t] * h + (1.0 - zh[t]) * h_next  # (N, H)
        output[t] = np.where(active, h_next, 0.0)  # (N, HS)
        h = np.where(active, h_next, h)  # (N, HS) frozen where inactive
        if c is not None:
            c = np.where(active, c_next, c)  # (N, H)
    return output, h, c, ({**cache, "step_caches": step_caches} if keep else None)


def backward(
    mode: str,
    x: np.ndarray,
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b_ih: np.ndarray | None,
    b_hh: np.ndarray | None,
    lengths: np.ndarray | None,
    reverse: bool,
    cache: dict,
    d_output: np.ndarray,
    d_h_n: np.ndarray | None = None,
    d_c_n: np.ndarray | None = None,
    *,
    w_peep: np.ndarray | None = None,
    w_hr: np.ndarray | None = None,
    w_ln: np.ndarray | None = None,
    b_ln: np.ndarray | None = None,
    recurrent_mask: np.ndarray | None = None,
    zoneout_h: np.ndarray | None = None,
    zoneout_c: np.ndarray | None = None,
) -> tuple:
    """Backpropagation through time for one :func:`forward` call, in float64.

    Args:
        mode, x, w_ih, w_hh, b_ih, b_hh, lengths, reverse: as given to :func:`forward`.
        cache: the cache :func:`forward` returned.
        d_output: ``(T, N, H)`` gradient of the output (ignored at padded steps).
        d_h_n: ``(N, H)`` gradient of ``h_n``, or None (zero).
        d_c_n: ``(N, H)`` gradient of ``c_n`` (the lstm modes), or None (zero).
        w_peep, w_hr, w_ln, b_ln, recurrent_mask, zoneout_h, zoneout_c: as given to
            :func:`forward` (with ``w_hr``, ``d_output`` is ``(T, N, P)`` and
            ``d_h_n`` ``(N, P)``).

    Returns:
        ``(dx (T, N, D), dh0 (N, H), dc0 (N, H) or None, dw_ih (G*H, D),
        dw_hh (G*H, H), db_ih (G*H,) or None, db_hh (G*H,) or None)``; ``dc0`` is
        None unless an lstm mode, the bias gradients are None for a layer without
        bias. For lstm_peephole an eighth entry follows, ``dw_peep (3H,)``; with
        ``w_hr`` one too, ``dw_hr (P, H)`` (``dh0`` is then ``(N, P)``, ``dw_hh``
        ``(4H, P)``); for lstm_ln and gru_ln an eighth and ninth, ``dw_ln`` and
        ``db_ln``.
    """
    G = gate_count(mode)
    x, w_ih, w_hh, b_ih, b_hh = _float64(x, w_ih, w_hh, b_ih, b_hh)
    d_output, d_h_n, d_c_n = _float64(d_output, d_h_n, d_c_n)
    w_peep, w_hr = _float64(w_peep, w_hr)
    T, N, H, HS = _check_layer(mode, G, x, w_ih, w_hh, b_ih, b_hh, w_peep, w_hr)
    _check_shape("d_output", d_output, (T, N, HS))
    lengths = _lengths(lengths, N, T)
    mask, zh, zc = _noise(mode, T, N, H, recurrent_mask, zoneout_h, zoneout_c)
    if w_hr is not None and not (mask is None and zh is None and zc is None):
        raise ArgumentError("the LSTM with projections (w_hr) takes no dropout masks")
    ln = _layer_norm_weights(mode, H, w_ln, b_ln)

    dh = np.zeros((N, HS)) if d_h_n is None else d_h_n  # (N, HS) gradient of the state
    dc = None  # (N, H) gradient of the cell state, the lstm modes only
    if mode in CELL_STATE:
        dc = np.zeros((N, H)) if d_c_n is None else d_c_n
    _check_shape("d_h_n", dh, (N, HS))
    if dc is not None:
        _check_shape("d_c_n", dc, (N, H))
    IH, HH = weight_rows(mode, H)
    mut = mode in MUT_IH  # a MUT step returns dx, dw_ih and db_ih itself
    dx_proj = np.zeros((T, N, G * H))  # gradient of x @ w_ih.T + b_ih
    dx, dw_ih, db_ih = np.zeros(x.shape), np.zeros((IH, x.shape[2])), np.zeros(IH)  # MUTs
    dw_hh = np.zeros((HH, HS))
    dw_hr = None if w_hr is None else np.zeros(w_hr.shape)  # (P, H)
    db_hh = np.zeros(HH)
    dw_peep = np.zeros(3 * H)  # gradient of w_peep, lstm_peephole only
    dw_ln = db_ln = np.zeros(0)  # the layer-normalised cells only
    if ln is not None:
        dw_ln, db_ln = np.zeros(ln[0].shape), np.zeros(ln[0].shape)
    for t in reversed(_time_steps(T, reverse)):
        active = (t < lengths)[:, None]  # (N, 1) which sequences ran step t
        dh_next = np.where(active, dh + d_output[t], 0.0)  # (N, HS)
        dc_next = None if dc is None else np.where(active, dc, 0.0)  # (N, H)
        keep_h = keep_c = 0.0  # what zoneout passes straight to the previous state
        if zh is not None:
            keep_h, dh_next = zh[t] * dh_next, (1.0 - zh[t]) * dh_next
        if zc is not None:
            keep_c, dc_next = zc[t] * dc_next, (1.0 - zc[t]) * dc_next
        step_cache = cache["step_caches"][t]
        if mut:
            grads = mut_step_backward(mode, dh_next, step_cache, w_ih, w_hh)
            dx[t], dh_prev, dw_ih_t, dw_hh_t, db_ih_t, db_hh_t = grads
            dc_prev = None
            dw_ih += dw_ih_t
            db_ih += db_ih_t
        elif mode == "gru_ln":
            grads = gru_ln_step_backward(dh_next, step_cache, w_hh, ln[0])
            dx_proj[t], dh_prev, dw_hh_t, db_hh_t, dw_ln_t, db_ln_t = grads
            dc_prev = None
            dw_ln += dw_ln_t
            db_ln += db_ln_t
        elif ln is not None:
            grads = lstm_ln_step_backward(dh_next, dc_next, step_cache, w_hh, ln[0])
            dx_proj[t], dh_prev, dc_prev, dw_hh_t, db_hh_t, dw_ln_t, db_ln_t = grads
            dw_ln += dw_ln_t
            db_ln += db_ln_t
            if mask is not None:  # the step saw h * mask; h feeds nothing else
                dh_prev = dh_prev * mask
        elif mode in PEEPHOLE:
            grads = lstm_peephole_step_backward(dh_next, dc_next, step_cache, w_hh, w_peep)
            dx_proj[t], dh_prev, dc_prev, dw_hh_t, db_hh_t, dw_peep_t = grads
            dw_peep += dw_peep_t
            if mask is not None:  # the step saw h * mask; h feeds nothing else
                dh_prev = dh_prev * mask
        elif w_hr is not None:
            grads = lstm_proj_step_backward(dh_next, dc_next, step_cache, w_hh, w_hr)
            dx_proj[t], dh_prev, dc_prev, dw_hh_t, db_hh_t, dw_hr_t = grads
            dw_hr += dw_hr_t
        else:
            dx_proj[t], dh_prev, dc_prev, dw_hh_t, db_hh_t = _step_backward(
                mode, dh_next, dc_next, step_cache, w_hh, mask
            )
        dh_prev = dh_prev + keep_h
        if dc_prev is not None:
            dc_prev = dc_prev + keep_c
        dh = np.where(active, dh_prev, dh)  # (N, HS) passes through where inactive
        if dc is not None:
            dc = np.where(active, dc_prev, dc)  # (N, H)
        dw_hh += dw_hh_t
        db_hh += db_hh_t

    if not mut:
        db_ih = dx_proj.sum(axis=(0, 1))  # (G*H,)
        if ln is not None:  # back through LN_x to x @ w_ih.T
            dx_proj, dgain, dshift = layer_norm_backward(dx_proj, cache["ln_x"], ln[0][: G * H])
            dw_ln[: G * H] += dgain
            db_ln[: G * H] += dshift
        dx = dx_proj @ w_ih  # (T, N, D)
        dw_ih = np.einsum("tng,tnd->gd", dx_proj, x)  # (G*H, D)
    if b_ih is None:
        db_ih = db_hh = None
    if mode in PEEPHOLE:
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_peep
    if ln is not None:
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_ln, db_ln
    if dw_hr is not None:
        return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh, dw_hr
    return dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh


def _step(mode, x_proj, h_prev, c_prev, w_hh, b_hh, w_peep=None, mask=None, ln=None):
    """One step of any mode: ``(h_next (N, H), c_next (N, H) or None, step_cache)``;
    ``w_peep (3H,)`` for lstm_peephole only; ``mask (N, H)`` recurrent dropout;
    ``ln = (w_ln, b_ln)`` for lstm_ln only."""
    if mode == "gru":
        h_next, step_cache = gru_step(x_proj, h_prev, w_hh, b_hh, mask)
        return h_next, None, step_cache
    if mode == "gru_ln":
        h_next, step_cache = gru_ln_step(x_proj, h_prev, w_hh, b_hh, *ln, mask)
        return h_next, None, step_cache
    if mode == "gru_reset_before":
        h_next, step_cache = gru_reset_before_step(x_proj, h_prev, w_hh, b_hh, mask)
        return h_next, None, step_cache
    if mask is not None:  # the other cells read h_prev only through W_hh
        h_prev = h_prev * mask
    if ln is not None:
        return lstm_ln_step(x_proj, h_prev, c_prev, w_hh, b_hh, *ln)
    if mode == "lstm_peephole":
        return lstm_peephole_step(x_proj, h_prev, c_prev, w_hh, b_hh, w_peep)
    if mode == "lstm":
        return lstm_step(x_proj, h_prev, c_prev, w_hh, b_hh)
    if mode == "lstm_cifg":
        return lstm_cifg_step(x_proj, h_prev, c_prev, w_hh, b_hh)
    nonlinearity = "relu" if mode == "rnn_relu" else "tanh"
    h_next, step_cache = rnn_step(x_proj, h_prev, w_hh, b_hh, nonlinearity)
    return h_next, None, step_cache


def _step_backward(mode, dh_next, dc_next, step_cache, w_hh, mask=None):
    """Backward of :func:`_step` for every mode but lstm_peephole (whose backward
    also returns the peephole gradient): ``(dx_proj (N, G*H), dh_prev (N, H),
    dc_prev (N, H) or None, dw_hh (G*H, H), db_hh (G*H,))``."""
    if mode in ("lstm", "lstm_cifg"):
        step_backward = lstm_step_backward if mode == "lstm" else lstm_cifg_step_backward
        dx_proj, dh_prev, dc_prev, dw_hh, db_hh = step_backward(dh_next, dc_next, step_cache, w_hh)
        return dx_proj, dh_prev if mask is None else dh_prev * mask, dc_prev, dw_hh, db_hh
    if mode == "gru":
        dx_proj, dh_prev, dw_hh, db_hh = gru_step_backward(dh_next, step_cache, w_hh)
    elif mode == "gru_reset_before":
        step_backward = gru_reset_before_step_backward
        dx_proj, dh_prev, dw_hh, db_hh = step_backward(dh_next, step_cache, w_hh)
    else:
        dx_proj, dh_prev, dw_hh, db_hh = rnn_step_backward(dh_next, step_cache, w_hh)
        dh_prev = dh_prev if mask is None else dh_prev * mask
    return dx_proj, dh_prev, None, dw_hh, db_hh


def _layer_norm_weights(mode, H, w_ln, b_ln):
    """``(w_ln, b_ln)`` in float64 for the layer-normalised modes, checked to be
    ``(B*H,)`` each (``B = LAYER_NORM[mode]``); None for the other modes (which
    must not be given them)."""
    w_ln, b_ln = _float64(w_ln, b_ln)
    if mode not in LAYER_NORM:
        if w_ln is not None or b_ln is not None:
            raise ArgumentError(f"w_ln and b_ln are for lstm_ln and gru_ln, not {mode}")
        return None
    B = LAYER_NORM[mode]
    if w_ln is None or b_ln is None:
        raise ArgumentError(f"{mode} needs w_ln and b_ln, ({B}H,) each")
    _check_shape("w_ln", w_ln, (B * H,))
    _check_shape("b_ln", b_ln, (B * H,))
    return w_ln, b_ln


def _noise(mode, T, N, H, recurrent_mask, zoneout_h, zoneout_c):
    """The dropout arrays of a call in float64, shape-checked: ``(mask (N, H),
    zoneout_h, zoneout_c (T, N, H))``, each None when not given."""
    mask, zh, zc = _float64(recurrent_mask, zoneout_h, zoneout_c)
    if mask is not None:
        if mode in MUT_IH:
            raise ArgumentError(f"recurrent dropout is not available for {mode}")
        _check_shape("recurrent_mask", mask, (N, H))
    if zh is not None:
        _check_shape("zoneout_h", zh, (T, N, H))
    if zc is not None:
        if mode not in CELL_STATE:
            raise ArgumentError(f"zoneout_c is for the lstm modes, not {mode}")
        _check_shape("zoneout_c", zc, (T, N, H))
    return mask, zh, zc


def _time_steps(T: int, reverse: bool) -> range:
    """The order in which the forward visits the steps."""
    return range(T - 1, -1, -1) if reverse else range(T)


def _float64(*arrays):
    """A float64 copy of each array (so nothing returned aliases an input); None stays None."""
    return [None if a is None else np.array(a, dtype=np.float64) for a in arrays]


def _check_shape(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.shape != shape:
        raise ShapeError(f"{name} has shape {array.shape}, expected {shape}")


def _check_layer(
    mode, G, x, w_ih, w_hh, b_ih, b_hh, w_peep=None, w_hr=None
) -> tuple[int, int, int, int]:
    """Check the shapes every call shares and return ``(T, N, H, HS)``, ``HS`` the
    width of ``h``: ``P`` with a projection ``w_hr (P, H)``, else ``H``."""
    if x.ndim != 3:
        raise ShapeError(f"x must be (T, N, D), got shape {x.shape}")
    T, N, D = x.shape
    if w_hr is not None:
        if mode != "lstm":
            raise ArgumentError(f"w_hr is the projection of lstm only, not of {mode}")
        if w_hr.ndim != 2 or not 1 <= w_hr.shape[0] < w_hr.shape[1]:
            raise ShapeError(f"w_hr must be (P, H) with 1 <= P < H, got shape {w_hr.shape}")
        HS, H = w_hr.shape
    else:
        H = HS = w_hh.shape[1] if w_hh.ndim == 2 else 0
    IH, HH = weight_rows(mode, H)
    if w_hh.ndim != 2 or w_hh.shape != (HH, HS):
        raise ShapeError(f"w_hh must be {(HH, HS)} for {mode}, got {w_hh.shape}")
    _check_shape("w_ih", w_ih, (IH, D))
    if mode in SQUARE_INPUT and D != H:
        raise ArgumentError(f"{mode} adds x itself to a gate: input size {D} must be H = {H}")
    if (b_ih is None) != (b_hh is None):
        raise ArgumentError("b_ih and b_hh must both be given or both be None")
    if b_ih is not None:
        _check_shape("b_ih", b_ih, (IH,))
        _check_shape("b_hh", b_hh, (HH,))
    if (w_peep is not None) != (mode in PEEPHOLE):
        raise ArgumentError("w_peep must be given for lstm_peephole and only for it")
    if w_peep is not None:
        _check_shape("w_peep", w_peep, (3 * H,))
    return T, N, H, HS


def _lengths(lengths, N: int, T: int) -> np.ndarray:
    """``(N,)`` integer lengths, checked to lie in ``1..T``; all ``T`` when None."""
    if lengths is None:
        return np.full(N, T)
    lengths = np.asarray(lengths)
    if lengths.shape != (N,):
        raise ShapeError(f"lengths has shape {lengths.shape}, expected ({N},)")
    if not np.issubdtype(lengths.dtype, np.integer):
        raise DTypeError(f"lengths must be integers, got {lengths.dtype}")
    if N > 0 and (lengths.min() < 1 or lengths.max() > T):
        raise ArgumentError(f"lengths must lie in 1..{T}, got {lengths.tolist()}")
    return lengths
