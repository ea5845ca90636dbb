"""One time step of each recurrent cell, forward and backward, in float64 NumPy.

A cell receives its input already projected, ``x_proj = x_t @ w_ih.T + b_ih`` of
shape ``(N, G*H)``: :mod:`rnncore.reference.sequence` computes that product for all
T steps at once and turns ``dx_proj`` back into ``dx``, ``dw_ih`` and ``db_ih`` the
same way. The cell owns the recurrent half, ``h_prev @ w_hh.T + b_hh``.

Each ``*_step`` returns the next state and a ``step_cache`` tuple. The matching
``*_step_backward``, right below it, takes the gradient of the next state, that
cache and ``w_hh``, and returns the gradient of every input of the step:
``(dx_proj, dh_prev, [dc_prev,] dw_hh, db_hh)``. ``db_hh`` is always computed (it
is the gradient of a bias of zero when the layer has none; the caller drops it).

Shapes: N batch, H hidden, G gates (``rnn_*`` 1, ``lstm`` 4 in order i,f,g,o,
``gru`` and ``gru_reset_before`` 3 in order r,z,n, ``lstm_cifg`` 3 in order f,g,o,
``lstm_peephole`` 4 in order i,f,g,o); ``x_proj (N, G*H)``, ``h_prev``, ``h_next``,
``c_prev``, ``c_next (N, H)``, ``w_hh (G*H, H)``, ``b_hh (G*H,)`` or None; the
peephole LSTM also takes ``w_peep (3H,)`` (``p_i|p_f|p_o``) and its backward also
returns ``dw_peep (3H,)``.

The MUT cells (``mut1``, ``mut2``, ``mut3``) add ``x`` itself or ``tanh(h)`` to some
gates, so their steps take ``x`` and the whole layer's weights: they live in
:mod:`rnncore.reference.mut_cells`, with their row layouts.
"""

from __future__ import annotations

import numpy as np

from rnncore.errors import ArgumentError

# The cell modes and their gates G, in PyTorch's order within the (G*H, ...)
# weights (gates: -, -, i|f|g|o, r|z|n, r|z|n, f|g|o, i|f|g|o): the one Python table,
# used by rnncore.nn and rnncore.models too. The compiled kernels have theirs in
# rust/src/mode.rs (`Mode::gates`, exported as `_rnncore.gate_count`); a test
# checks that the two agree.
GATES = {
    "rnn_tanh": 1,
    "rnn_relu": 1,
    "lstm": 4,
    "gru": 3,
    "gru_reset_before": 3,
    "lstm_cifg": 3,
    "lstm_peephole": 4,
    "lstm_ln": 4,
    "gru_ln": 3,
    "mut1": 3,  # z|r|n, weights as MUT_IH / MUT_HH say
    "mut2": 3,
    "mut3": 3,
}
# the modes with a cell state c besides h
CELL_STATE = ("lstm", "lstm_cifg", "lstm_peephole", "lstm_ln")
PEEPHOLE = ("lstm_peephole",)  # the modes with peephole weights w_peep (3H,)
# the modes with layer normalisation: blocks of H in their gains w_ln and shifts b_ln
LAYER_NORM = {"lstm_ln": 9, "gru_ln": 6}
# The MUT cells (Jozefowicz, Zaremba & Sutskever 2015) have no unused weight rows:
# the gate (of z, r, n) that each H-row block of w_ih/b_ih and of w_hh/b_hh feeds,
# in row order. MUT1 w_ih = W_xz|W_xr, w_hh = W_hr|W_hh; MUT2 w_ih = W_xz|W_xh,
# w_hh = W_hz|W_hr|W_hh; MUT3 w_ih = W_xz|W_xr|W_xh, w_hh = W_hz|W_hr|W_hh. The
# compiled kernels have theirs in rust/src/cells/mut_cells.rs.
MUT_IH = {"mut1": "zr", "mut2": "zn", "mut3": "zrn"}
MUT_HH = {"mut1": "rn", "mut2": "zrn", "mut3": "zrn"}
SQUARE_INPUT = ("mut1", "mut2")  # the modes that add x itself: input size D must be H


def weight_rows(mode: str, H: int) -> tuple[int, int]:
    """Rows of ``(w_ih and b_ih, w_hh and b_hh)``: ``G*H`` each, but ``2H`` for
    MUT1's both and MUT2's ``w_ih`` (see :data:`MUT_IH`, :data:`MUT_HH`)."""
    G = gate_count(mode)
    if mode in MUT_IH:
        return len(MUT_IH[mode]) * H, len(MUT_HH[mode]) * H
    return G * H, G * H


def gate_count(mode: str) -> int:
    """Number of gates ``G`` of a cell mode: 1 (``rnn_tanh``, ``rnn_relu``), 4 (``lstm``,
    ``lstm_peephole``) or 3 (``gru``, ``gru_reset_before``, ``lstm_cifg``). Raises
    :class:`~rnncore.errors.ArgumentError` for any other mode."""
    if mode not in GATES:
        raise ArgumentError(f"unknown mode {mode!r}; expected one of {sorted(GATES)}")
    return GATES[mode]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-a))``, written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def project(h_prev: np.ndarray, w_hh: np.ndarray, b_hh: np.ndarray | None) -> np.ndarray:
    """Recurrent projection ``h_prev @ w_hh.T + b_hh``: ``(N, H) -> (N, G*H)``."""
    h_proj = h_prev @ w_hh.T  # (N, G*H)
    return h_proj if b_hh is None else h_proj + b_hh


def project_backward(
    dh_proj: np.ndarray, h_prev: np.ndarray, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`project`: ``dh_proj (N, G*H)`` ->
    ``(dh_prev (N, H), dw_hh (G*H, H), db_hh (G*H,))``."""
    return dh_proj @ w_hh, dh_proj.T @ h_prev, dh_proj.sum(axis=0)


# --- Elman RNN: h_next = act(x_proj + W_hh h_prev + b_hh), act = tanh or relu ---------


def rnn_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    nonlinearity: str = "tanh",
) -> tuple[np.ndarray, tuple]:
    """One Elman RNN step.

    ``h_next = act(x_proj + h_prev @ w_hh.T + b_hh)`` with ``act`` tanh or relu.

    Args:
        x_proj: ``(N, H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev: ``(N, H)`` previous hidden state.
        w_hh: ``(H, H)``; b_hh: ``(H,)`` or None.
        nonlinearity: ``"tanh"`` or ``"relu"``.

    Returns:
        ``(h_next (N, H), step_cache)``.
    """
    a = x_proj + project(h_prev, w_hh, b_hh)  # (N, H) pre-activation
    h_next = np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)  # (N, H)
    return h_next, (h_prev, h_next, nonlinearity)


def rnn_step_backward(
    dh_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`rnn_step`.

    Args:
        dh_next: ``(N, H)`` gradient of ``h_next``.
        step_cache: what :func:`rnn_step` returned.
        w_hh: ``(H, H)``.

    Returns:
        ``(dx_proj (N, H), dh_prev (N, H), dw_hh (H, H), db_hh (H,))``.
    """
    h_prev, h_next, nonlinearity = step_cache
    if nonlinearity == "tanh":
        da = dh_next * (1.0 - h_next**2)  # (N, H)
    else:
        da = dh_next * (h_next > 0.0)  # (N, H) relu passes the gradient where a > 0
    dh_prev, dw_hh, db_hh = project_backward(da, h_prev, w_hh)
    return da, dh_prev, dw_hh, db_hh


# --- LSTM: gates i, f, g, o; c_next = f*c_prev + i*g; h_next = o*tanh(c_next) ---------


def lstm_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One LSTM step (PyTorch's equations)::

        i, f, g, o = split(x_proj + h_prev @ w_hh.T + b_hh, 4)
        i, f, g, o = sigmoid(i), sigmoid(f), tanh(g), sigmoid(o)
        c_next = f * c_prev + i * g
        h_next = o * tanh(c_next)

    Args:
        x_proj: ``(N, 4H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev, c_prev: ``(N, H)`` previous hidden and cell states.
        w_hh: ``(4H, H)``; b_hh: ``(4H,)`` or None.

    Returns:
        ``(h_next (N, H), c_next (N, H), step_cache)``.
    """
    a = x_proj + project(h_prev, w_hh, b_hh)  # (N, 4H) pre-activations
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # each (N, H)
    i = sigmoid(a_i)  # (N, H) input gate
    f = sigmoid(a_f)  # (N, H) forget gate
    g = np.tanh(a_g)  # (N, H) candidate cell
    o = sigmoid(a_o)  # (N, H) output gate
    c_next = f * c_prev + i * g  # (N, H)
    tanh_c = np.tanh(c_next)  # (N, H)
    h_next = o * tanh_c  # (N, H)
    return h_next, c_next, (h_prev, c_prev, i, f, g, o, tanh_c)


def lstm_step_backward(
    dh_next: np.ndarray, dc_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_step`.

    Args:
        dh_next, dc_next: ``(N, H)`` gradients of ``h_next`` and ``c_next``.
        step_cache: what :func:`lstm_step` returned.
        w_hh: ``(4H, H)``.

    Returns:
        ``(dx_proj (N, 4H), dh_prev (N, H), dc_prev (N, H), dw_hh (4H, H), db_hh (4H,))``.
    """
    h_prev, c_prev, i, f, g, o, tanh_c = step_cache
    do = dh_next * tanh_c  # (N, H)
    dc = dc_next + dh_next * o * (1.0 - tanh_c**2)  # (N, H) total gradient of c_next
    di = dc * g  # (N, H)
    df = dc * c_prev  # (N, H)
    dg = dc * i  # (N, H)
    dc_prev = dc * f  # (N, H)
    da = np.concatenate(  # (N, 4H) gradient of the pre-activations, order i, f, g, o
        [di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)],
        axis=1,
    )
    dh_prev, dw_hh, db_hh = project_backward(da, h_prev, w_hh)
    return da, dh_prev, dc_prev, dw_hh, db_hh


# --- GRU ("reset after", as PyTorch): gates r, z, n; h_next = (1-z)*n + z*h_prev -------


def gru_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple]:
    """One GRU step (PyTorch's equations, reset gate applied after ``W_hn``)::

        r = sigmoid(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))
        h_next = (1 - z) * n + z * h_prev

    Args:
        x_proj: ``(N, 3H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev: ``(N, H)`` previous hidden state.
        w_hh: ``(3H, H)``; b_hh: ``(3H,)`` or None.
        mask: ``(N, H)`` recurrent dropout mask or None: the product reads
            ``h_prev * mask``, the update ``z * h_prev`` the state itself.

    Returns:
        ``(h_next (N, H), step_cache)``.
    """
    h_rec = h_prev if mask is None else h_prev * mask  # (N, H) what the product reads
    x_r, x_z, x_n = np.split(x_proj, 3, axis=1)  # each (N, H)
    h_r, h_z, h_n = np.split(project(h_rec, w_hh, b_hh), 3, axis=1)  # each (N, H)
    r = sigmoid(x_r + h_r)  # (N, H) reset gate
    z = sigmoid(x_z + h_z)  # (N, H) update gate
    n = np.tanh(x_n + r * h_n)  # (N, H) candidate state
    h_next = (1.0 - z) * n + z * h_prev  # (N, H)
    return h_next, (h_prev, r, z, n, h_n, mask)


def gru_step_backward(
    dh_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`gru_step`.

    The input and recurrent projections differ only in the n block: the gradient of
    ``W_in x + b_in`` is ``dn_pre``, that of ``W_hn h_prev + b_hn`` is ``dn_pre * r``.

    Args:
        dh_next: ``(N, H)`` gradient of ``h_next``.
        step_cache: what :func:`gru_step` returned.
        w_hh: ``(3H, H)``.

    Returns:
        ``(dx_proj (N, 3H), dh_prev (N, H), dw_hh (3H, H), db_hh (3H,))``.
    """
    h_prev, r, z, n, h_n, mask = step_cache
    h_rec = h_prev if mask is None else h_prev * mask
    dn = dh_next * (1.0 - z)  # (N, H)
    dz = dh_next * (h_prev - n)  # (N, H)
    dn_pre = dn * (1.0 - n**2)  # (N, H) gradient of W_in x + b_in + r * h_n
    dr = dn_pre * h_n  # (N, H)
    dr_pre = dr * r * (1.0 - r)  # (N, H)
    dz_pre = dz * z * (1.0 - z)  # (N, H)
    dx_proj = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)  # (N, 3H)
    dh_proj = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=1)  # (N, 3H)
    d_rec, dw_hh, db_hh = project_backward(dh_proj, h_rec, w_hh)
    d_rec = d_rec if mask is None else d_rec * mask
    dh_prev = d_rec + dh_next * z  # (N, H) plus the direct path z * h_prev
    return dx_proj, dh_prev, dw_hh, db_hh


# --- GRU with the reset before the product (Cho et al. 2014, Keras reset_after=False) --


def gru_reset_before_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple]:
    """One GRU step with the reset gate applied to the state before ``W_hn``::

        r = sigmoid(W_ir x + b_ir + W_hr h_prev + b_hr)
        z = sigmoid(W_iz x + b_iz + W_hz h_prev + b_hz)
        n = tanh(W_in x + b_in + W_hn (r * h_prev) + b_hn)
        h_next = (1 - z) * n + z * h_prev

    Args:
        x_proj: ``(N, 3H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev: ``(N, H)`` previous hidden state.
        w_hh: ``(3H, H)`` rows ``W_hr|W_hz|W_hn``; b_hh: ``(3H,)`` or None.
        mask: ``(N, H)`` recurrent dropout mask or None: the products (and the
            reset) read ``h_prev * mask``, the update ``z * h_prev`` the state itself.

    Returns:
        ``(h_next (N, H), step_cache)``.
    """
    H = h_prev.shape[1]
    h_rec = h_prev if mask is None else h_prev * mask  # (N, H) what the products read
    b_hh = np.zeros(3 * H) if b_hh is None else b_hh
    x_r, x_z, x_n = np.split(x_proj + b_hh, 3, axis=1)  # each (N, H)
    h_r, h_z = np.split(h_rec @ w_hh[: 2 * H].T, 2, axis=1)  # each (N, H)
    r = sigmoid(x_r + h_r)  # (N, H) reset gate
    z = sigmoid(x_z + h_z)  # (N, H) update gate
    rh = r * h_rec  # (N, H) the state after the reset
    n = np.tanh(x_n + rh @ w_hh[2 * H :].T)  # (N, H) candidate state
    h_next = (1.0 - z) * n + z * h_prev  # (N, H)
    return h_next, (h_prev, r, z, n, rh, mask)


def gru_reset_before_step_backward(
    dh_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`gru_reset_before_step`.

    Every bias is additive, so ``db_hh`` equals the gradient of the pre-activations
    ``dx_proj``; ``dw_hh`` stacks ``d[r z]^T h_prev`` and ``dn^T (r * h_prev)``.

    Args:
        dh_next: ``(N, H)`` gradient of ``h_next``.
        step_cache: what :func:`gru_reset_before_step` returned.
        w_hh: ``(3H, H)``.

    Returns:
        ``(dx_proj (N, 3H), dh_prev (N, H), dw_hh (3H, H), db_hh (3H,))``.
    """
    h_prev, r, z, n, rh, mask = step_cache
    H = h_prev.shape[1]
    h_rec = h_prev if mask is None else h_prev * mask
    dn_pre = dh_next * (1.0 - z) * (1.0 - n**2)  # (N, H)
    dz_pre = dh_next * (h_prev - n) * z * (1.0 - z)  # (N, H)
    drh = dn_pre @ w_hh[2 * H :]  # (N, H) gradient of r * h_rec
    dr_pre = drh * h_rec * r * (1.0 - r)  # (N, H)
    drz = np.concatenate([dr_pre, dz_pre], axis=1)  # (N, 2H)
    dx_proj = np.concatenate([dr_pre, dz_pre, dn_pre], axis=1)  # (N, 3H)
    d_rec = drh * r + drz @ w_hh[: 2 * H]  # (N, H) gradient of h_rec
    dh_prev = dh_next * z + (d_rec if mask is None else d_rec * mask)  # (N, H)
    dw_hh = np.concatenate([drz.T @ h_rec, dn_pre.T @ rh], axis=0)  # (3H, H)
    return dx_proj, dh_prev, dw_hh, dx_proj.sum(axis=0)


# --- LSTM with a coupled input-forget gate (CIFG): gates f, g, o; input gate 1 - f ------


def lstm_cifg_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One CIFG LSTM step (Greff et al. 2017), the input gate tied to ``1 - f``::

        f, g, o = split(x_proj + h_prev @ w_hh.T + b_hh, 3)
        f, g, o = sigmoid(f), tanh(g), sigmoid(o)
        c_next = f * c_prev + (1 - f) * g
        h_next = o * tanh(c_next)

    Args:
        x_proj: ``(N, 3H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev, c_prev: ``(N, H)`` previous hidden and cell states.
        w_hh: ``(3H, H)``; b_hh: ``(3H,)`` or None.

    Returns:
        ``(h_next (N, H), c_next (N, H), step_cache)``.
    """
    a = x_proj + project(h_prev, w_hh, b_hh)  # (N, 3H) pre-activations
    a_f, a_g, a_o = np.split(a, 3, axis=1)  # each (N, H)
    f = sigmoid(a_f)  # (N, H) forget gate; the input gate is 1 - f
    g = np.tanh(a_g)  # (N, H) candidate cell
    o = sigmoid(a_o)  # (N, H) output gate
    c_next = f * c_prev + (1.0 - f) * g  # (N, H)
    tanh_c = np.tanh(c_next)  # (N, H)
    return o * tanh_c, c_next, (h_prev, c_prev, f, g, o, tanh_c)


def lstm_cifg_step_backward(
    dh_next: np.ndarray, dc_next: np.ndarray, step_cache: tuple, w_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_cifg_step`.

    Returns:
        ``(dx_proj (N, 3H), dh_prev (N, H), dc_prev (N, H), dw_hh (3H, H), db_hh (3H,))``.
    """
    h_prev, c_prev, f, g, o, tanh_c = step_cache
    dc = dc_next + dh_next * o * (1.0 - tanh_c**2)  # (N, H) total gradient of c_next
    df = dc * (c_prev - g)  # (N, H) f weighs c_prev, 1 - f weighs g
    dg = dc * (1.0 - f)  # (N, H)
    do = dh_next * tanh_c  # (N, H)
    da = np.concatenate(  # (N, 3H) gradient of the pre-activations, order f, g, o
        [df * f * (1.0 - f), dg * (1.0 - g**2), do * o * (1.0 - o)], axis=1
    )
    dh_prev, dw_hh, db_hh = project_backward(da, h_prev, w_hh)
    return da, dh_prev, dc * f, dw_hh, db_hh


# --- LSTM with peephole connections: i and f see c_prev, o sees c_next ------------------


def lstm_peephole_step(
    x_proj: np.ndarray,
    h_prev: np.ndarray,
    c_prev: np.ndarray,
    w_hh: np.ndarray,
    b_hh: np.ndarray | None,
    w_peep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """One peephole LSTM step (Gers & Schmidhuber 2000), per-unit peephole weights::

        a_i, a_f, a_g, a_o = split(x_proj + h_prev @ w_hh.T + b_hh, 4)
        p_i, p_f, p_o = split(w_peep, 3)
        i = sigmoid(a_i + p_i * c_prev);  f = sigmoid(a_f + p_f * c_prev)
        g = tanh(a_g)
        c_next = f * c_prev + i * g
        o = sigmoid(a_o + p_o * c_next)
        h_next = o * tanh(c_next)

    Args:
        x_proj: ``(N, 4H)`` projected input ``x_t @ w_ih.T + b_ih``.
        h_prev, c_prev: ``(N, H)`` previous hidden and cell states.
        w_hh: ``(4H, H)``; b_hh: ``(4H,)`` or None; w_peep: ``(3H,)``.

    Returns:
        ``(h_next (N, H), c_next (N, H), step_cache)``.
    """
    a = x_proj + project(h_prev, w_hh, b_hh)  # (N, 4H) pre-activations
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)  # each (N, H)
    p_i, p_f, p_o = np.split(w_peep, 3)  # each (H,)
    i = sigmoid(a_i + p_i * c_prev)  # (N, H) input gate
    f = sigmoid(a_f + p_f * c_prev)  # (N, H) forget gate
    g = np.tanh(a_g)  # (N, H) candidate cell
    c_next = f * c_prev + i * g  # (N, H)
    o = sigmoid(a_o + p_o * c_next)  # (N, H) output gate, peeping at the new cell
    tanh_c = np.tanh(c_next)  # (N, H)
    return o * tanh_c, c_next, (h_prev, c_prev, c_next, i, f, g, o, tanh_c)


def lstm_peephole_step_backward(
    dh_next: np.ndarray,
    dc_next: np.ndarray,
    step_cache: tuple,
    w_hh: np.ndarray,
    w_peep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`lstm_peephole_step`.

    Returns:
        ``(dx_proj (N, 4H), dh_prev (N, H), dc_prev (N, H), dw_hh (4H, H), db_hh (4H,),
        dw_peep (3H,))``.
    """
    h_prev, c_prev, c_next, i, f, g, o, tanh_c = step_cache
    p_i, p_f, p_o = np.split(w_peep, 3)  # each (H,)
    da_o = dh_next * tanh_c * o * (1.0 - o)  # (N, H) output gate pre-activation
    # c_next reaches the loss through tanh(c_next), o's peephole and dc_next.
    dc = dc_next + dh_next * o * (1.0 - tanh_c**2) + da_o * p_o  # (N, H)
    da_i = dc * g * i * (1.0 - i)  # (N, H)
    da_f = dc * c_prev * f * (1.0 - f)  # (N, H)
    da_g = dc * i * (1.0 - g**2)  # (N, H)
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (N, 4H), order i, f, g, o
    dh_prev, dw_hh, db_hh = project_backward(da, h_prev, w_hh)
    dc_prev = dc * f + da_i * p_i + da_f * p_f  # (N, H) through f and the i, f peepholes
    dw_peep = np.concatenate(
        [(da_i * c_prev).sum(axis=0), (da_f * c_prev).sum(axis=0), (da_o * c_next).sum(axis=0)]
    )  # (3H,)
    return da, dh_prev, dc_prev, dw_hh, db_hh, dw_peep
