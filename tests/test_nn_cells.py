"""Cells of :mod:`rnncore.nn` (RNNCell, LSTMCell, GRUCell) against the sequence layers.

A cell step must equal a one-step sequence with the same weights; a cell unrolled
over T steps must equal the sequence layer, forward and (through the LIFO stack of
cached steps) backward. The layers themselves are checked against finite
differences in ``test_nn_layers.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import nn
from rnncore.errors import StateError

MODES = {  # kernel mode -> (cell class, layer class, extra constructor arguments)
    "rnn_tanh": (nn.RNNCell, nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, nn.LSTM, {}),
    "gru": (nn.GRUCell, nn.GRU, {}),
    "gru_reset_before": (nn.GRUCell, nn.GRU, {"reset_after": False}),
    "lstm_cifg": (nn.LSTMCell, nn.LSTM, {"cifg": True}),
    "lstm_peephole": (nn.LSTMCell, nn.LSTM, {"peephole": True}),
}
TOL = {"rtol": 1e-12, "atol": 1e-14}


def make_pair(mode, backend, D, H, seed=0, bias=True):
    """A float64 cell and a one-layer sequence layer with the same weights."""
    cell_cls, layer_cls, extra = MODES[mode]
    kw = {"bias": bias, "dtype": np.float64, "backend": backend}
    cell = cell_cls(D, H, **extra, seed=seed, **kw)
    layer = layer_cls(D, H, **extra, seed=seed + 1, **kw)
    layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
    return cell, layer


def flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def pack(parts, lstm):
    return tuple(parts) if lstm else parts[0]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("with_hx", [True, False], ids=["hx", "zeros"])
@pytest.mark.parametrize("mode", MODES)
def test_cell_step_equals_one_step_sequence(mode, with_hx, batched, backend, rng):
    N, D, H = 3, 4, 5
    lstm = mode in ("lstm", "lstm_cifg", "lstm_peephole")
    cell, layer = make_pair(mode, backend, D, H)
    lead = (N,) if batched else ()
    x = rng.standard_normal((*lead, D))  # (N, D) or (D,)
    hx = [rng.standard_normal((*lead, H)) for _ in range(2 if lstm else 1)] if with_hx else None
    state = cell(x, None if hx is None else pack(hx, lstm))
    assert isinstance(state, tuple) == lstm
    layer_hx = None if hx is None else pack([h[None] for h in hx], lstm)  # (1, N, H)
    output, layer_state = layer(x[None], layer_hx)  # a sequence of T = 1
    np.testing.assert_allclose(flat(state)[0], output[0], **TOL)
    for s, ls in zip(flat(state), flat(layer_state)):
        assert s.shape == (*lead, H)
        np.testing.assert_allclose(s, ls[0], **TOL)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("mode", MODES)
def test_unrolled_cell_equals_sequence_layer_forward_and_backward(mode, bias, backend, rng):
    T, N, D, H = 6, 2, 3, 4
    lstm = mode in ("lstm", "lstm_cifg", "lstm_peephole")
    cell, layer = make_pair(mode, backend, D, H, seed=3, bias=bias)
    x = rng.standard_normal((T, N, D))
    hx = [rng.standard_normal((N, H)) for _ in range(2 if lstm else 1)]
    d_output = rng.standard_normal((T, N, H))
    d_final = [rng.standard_normal((N, H)) for _ in hx]  # d_h_n (and d_c_n)

    output, layer_state = layer(x, pack([h[None] for h in hx], lstm))
    dx_layer, d_hx_layer = layer.backward(d_output, pack([d[None] for d in d_final], lstm))

    state = pack(hx, lstm)
    hs = []
    for t in range(T):
        state = cell(x[t], state)
        hs.append(flat(state)[0])
    np.testing.assert_allclose(np.stack(hs), output, **TOL)
    for s, ls in zip(flat(state), flat(layer_state)):
        np.testing.assert_allclose(s, ls[0], **TOL)

    d_h, d_c = d_final[0], (d_final[1] if lstm else None)
    dx = np.empty_like(x)
    for t in reversed(range(T)):  # last in, first out
        args = (d_output[t] + d_h, d_c) if lstm else (d_output[t] + d_h,)
        dx[t], d_prev = cell.backward(*args)
        d_h, d_c = (d_prev[0], d_prev[1]) if lstm else (d_prev, None)
    np.testing.assert_allclose(dx, dx_layer, **TOL)
    for d, dl in zip([d_h, d_c] if lstm else [d_h], flat(d_hx_layer)):
        np.testing.assert_allclose(d, dl[0], **TOL)
    for name, g in cell.grads.items():
        np.testing.assert_allclose(g, layer.grads[f"{name}_l0"], rtol=1e-11, atol=1e-13)
    with pytest.raises(StateError, match="no cached step"):
        cell.backward(d_h)  # the stack is empty again


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_cell_backward(mode, backend, rng):
    cell, _ = make_pair(mode, backend, 3, 4)
    lstm = mode in ("lstm", "lstm_cifg", "lstm_peephole")
    x = rng.standard_normal(3)
    hx = pack([rng.standard_normal(4) for _ in range(2 if lstm else 1)], lstm)
    cell(x, hx)
    d_h = rng.standard_normal(4)
    d_c = rng.standard_normal(4) if lstm else None
    dx, d_hx = cell.backward(d_h, d_c)
    g = {k: v.copy() for k, v in cell.grads.items()}
    cell.zero_grad()
    cell(x[None], pack([h[None] for h in flat(hx)], lstm))
    dx1, d_hx1 = cell.backward(d_h[None], None if d_c is None else d_c[None])
    assert dx.shape == (3,)
    np.testing.assert_array_equal(dx, dx1[0])
    for a, b in zip(flat(d_hx), flat(d_hx1)):
        assert a.shape == (4,)
        np.testing.assert_array_equal(a, b[0])
    for k, v in g.items():
        np.testing.assert_array_equal(v, cell.grads[k])


def test_eval_mode_caches_nothing_and_clear_cache_empties_the_stack(backend, rng):
    cell = nn.GRUCell(3, 4, seed=0, backend=backend)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    cell.eval()
    h = cell(x)
    with pytest.raises(StateError, match="eval mode caches nothing"):
        cell.backward(np.ones_like(h))
    cell.train()
    cell(x)
    cell(x, h)
    cell.backward(np.ones_like(h))  # pops the second step
    cell.clear_cache()
    with pytest.raises(StateError, match="no cached step"):
        cell.backward(np.ones_like(h))


def test_cell_grads_accumulate_and_zero_grad(backend, rng):
    cell = nn.LSTMCell(3, 4, dtype=np.float64, seed=1, backend=backend)
    x = rng.standard_normal((2, 3))
    hx = (rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))
    d_h = rng.standard_normal((2, 4))
    cell(x, hx)
    cell.backward(d_h)
    once = {k: v.copy() for k, v in cell.grads.items()}
    assert all(v.any() for v in once.values())
    cell(x, hx)
    cell(x, hx)
    cell.backward(d_h, None)
    cell.backward(d_h)
    for k, v in cell.grads.items():
        np.testing.assert_allclose(v, 3 * once[k], rtol=1e-12, atol=1e-14)
    cell.zero_grad()
    assert not any(v.any() for v in cell.grads.values())


def test_cell_parameters_and_repr():
    cell = nn.LSTMCell(3, 4, seed=0)
    names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert [n for n, _ in cell.named_parameters()] == names
    assert cell.weight_ih.shape == (16, 3) and cell.weight_hh.shape == (16, 4)
    assert nn.GRUCell(3, 4, bias=False, seed=0).state_dict().keys() == {"weight_ih", "weight_hh"}
    assert repr(cell) == "LSTMCell(3, 4)"
    assert repr(nn.RNNCell(3, 4, bias=False, nonlinearity="relu")) == (
        "RNNCell(3, 4, bias=False, nonlinearity='relu')"
    )
    assert repr(nn.GRUCell(3, 4, dtype=np.float64)) == "GRUCell(3, 4, dtype=float64)"
    a, b = nn.GRUCell(3, 4, seed=5), nn.GRUCell(3, 4, seed=5)
    np.testing.assert_array_equal(a.weight_hh, b.weight_hh)
    assert np.abs(a.weight_hh).max() <= 0.5
