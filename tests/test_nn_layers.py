"""Sequence layers of :mod:`rnncore.nn` (RNN, LSTM, GRU) on each kernel backend.

Shapes for every combination of options; every gradient of a stacked
bidirectional layer against central finite differences; dropout; gradient
accumulation; state dicts and initialisation; and equivalences: batch_first vs
time-major, unbatched vs a batch of one, lengths vs each sequence run alone,
float32 vs float64.
"""

from __future__ import annotations

import copy
import importlib
import math
import pickle

import numpy as np
import pytest
from gradcheck import numeric_gradient

from rnncore import nn, reference
from rnncore.errors import ArgumentError

MODES = {  # kernel mode -> (class, extra constructor arguments)
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
    "gru_reset_before": (nn.GRU, {"reset_after": False}),
    "lstm_cifg": (nn.LSTM, {"cifg": True}),
    "lstm_peephole": (nn.LSTM, {"peephole": True}),
    "lstm_ln": (nn.LSTM, {"layer_norm": True}),
    "gru_ln": (nn.GRU, {"layer_norm": True}),
}
CELL_STATE = ("lstm", "lstm_cifg", "lstm_peephole", "lstm_ln")


def make(mode, backend, D, H, **kwargs):
    cls, extra = MODES[mode]
    return cls(D, H, **extra, **kwargs, backend=backend)


def flat(state):
    """``h`` or ``(h, c)`` as a list of arrays."""
    return list(state) if isinstance(state, tuple) else [state]


def apply(f, state):
    """``f`` on each array of ``h`` or ``(h, c)``, keeping the structure."""
    parts = [f(a) for a in flat(state)]
    return tuple(parts) if isinstance(state, tuple) else parts[0]


def like(state, rng):
    """Random float64 arrays with the structure and shapes of ``state``."""
    return apply(lambda a: rng.standard_normal(a.shape), state)


def initial_state(layer, N, rng, batched=True):
    """A random ``hx`` for ``layer``: (L*dirs, N, H), or (L*dirs, H) unbatched."""
    LD = layer.num_layers * (2 if layer.bidirectional else 1)
    shape = (LD, N, layer.hidden_size) if batched else (LD, layer.hidden_size)
    h = rng.standard_normal(shape).astype(layer.dtype)
    if isinstance(layer, nn.LSTM):
        return h, rng.standard_normal(shape).astype(layer.dtype)
    return h


def dot(a, b):
    return sum(float(np.sum(x * y)) for x, y in zip(flat(a), flat(b)))


def check_gradients(layer, run, x, hx, rng):
    """``layer.backward`` against finite differences of ``<output, R> + <state, S>``."""
    output, state = run()
    d_output, d_state = rng.standard_normal(output.shape), like(state, rng)
    layer.zero_grad()
    dx, d_hx = layer.backward(d_output, d_state)

    def loss():
        out, st = run()
        return dot(out, d_output) + dot(st, d_state)

    tol = {"rtol": 1e-6, "atol": 1e-8}
    np.testing.assert_allclose(dx, numeric_gradient(loss, x), **tol, err_msg="dx")
    for i, (h, dh) in enumerate(zip(flat(hx), flat(d_hx))):
        np.testing.assert_allclose(dh, numeric_gradient(loss, h), **tol, err_msg=f"d_hx[{i}]")
    assert list(layer.grads) == [name for name, _ in layer.named_parameters()]
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(
            layer.grads[name], numeric_gradient(loss, p), **tol, err_msg=name
        )


# ------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("case", ["batched", "unbatched", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("mode", MODES)
def test_shapes(mode, num_layers, bidirectional, batch_first, case, backend, rng):
    T, N, D, H = 5, 3, 4, 6
    dirs = 2 if bidirectional else 1
    layer = make(
        mode,
        backend,
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        batch_first=batch_first,
        seed=0,
    )
    lengths = np.array([5, 2, 4]) if case == "lengths" else None
    if case == "unbatched":
        x, out_shape, state_shape = (T, D), (T, dirs * H), (num_layers * dirs, H)
    else:
        x = (N, T, D) if batch_first else (T, N, D)
        out_shape = (N, T, dirs * H) if batch_first else (T, N, dirs * H)
        state_shape = (num_layers * dirs, N, H)
    x = rng.standard_normal(x).astype(np.float32)

    output, state = layer(x, lengths=lengths)
    assert output.shape == out_shape and output.dtype == np.float32
    assert isinstance(state, tuple) == (mode in CELL_STATE)
    for s in flat(state):
        assert s.shape == state_shape and s.dtype == np.float32

    dx, d_hx = layer.backward(np.ones_like(output))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert isinstance(d_hx, tuple) == (mode in CELL_STATE)
    for d in flat(d_hx):
        assert d.shape == state_shape and d.dtype == np.float32
    for name, p in layer.named_parameters():
        g = layer.grads[name]
        assert g.shape == p.shape and g.dtype == np.float32 and np.any(g != 0)


# ------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("mode", MODES)
def test_gradients_match_finite_differences(mode, with_lengths, backend, rng):
    T, N, D, H = 4, 3, 3, 2
    layer = make(mode, backend, D, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=1)
    x = rng.standard_normal((T, N, D))
    hx = initial_state(layer, N, rng)
    lengths = np.array([2, 4, 1]) if with_lengths else None
    check_gradients(layer, lambda: layer(x, hx, lengths), x, hx, rng)


def test_gradients_without_bias_batch_first(backend, rng):
    layer = nn.GRU(
        3,
        2,
        num_layers=2,
        bias=False,
        batch_first=True,
        bidirectional=True,
        dtype=np.float64,
        seed=2,
        backend=backend,
    )
    assert not any("bias" in name for name, _ in layer.named_parameters())
    x = rng.standard_normal((2, 3, 3))  # (N, T, D)
    hx = initial_state(layer, 2, rng)
    check_gradients(layer, lambda: layer(x, hx), x, hx, rng)


# ------------------------------------------------------------------------- dropout


def test_dropout_gradient_matches_finite_differences(backend, rng):
    """With the generator reset before each call the masks are fixed: a smooth function."""
    layer = nn.LSTM(
        3,
        2,
        num_layers=3,
        dropout=0.4,
        bidirectional=True,
        dtype=np.float64,
        seed=3,
        backend=backend,
    )
    x = rng.standard_normal((3, 2, 3))
    hx = initial_state(layer, 2, rng)

    def run():
        layer.rng = np.random.default_rng(7)
        return layer(x, hx)

    check_gradients(layer, run, x, hx, rng)


def test_dropout_masks_are_inverted_bernoulli(backend):
    p = 0.3
    layer = nn.GRU(4, 50, num_layers=3, dropout=p, bidirectional=True, seed=4, backend=backend)
    layer(np.ones((20, 10, 4), np.float32))
    masks = [m.output for m in layer._trace.masks]
    assert masks[-1] is None  # never after the last layer
    for mask in masks[:-1]:
        assert mask.shape == (20, 10, 100)
        np.testing.assert_allclose(np.unique(mask), [0.0, 1.0 / (1.0 - p)], rtol=1e-6)
        assert abs(np.mean(mask == 0) - p) < 0.02  # 20000 draws


def test_dropout_is_reproducible_and_drawn_from_the_layer_generator(backend, rng):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    a = nn.LSTM(4, 5, num_layers=2, dropout=0.5, seed=5, backend=backend)
    b = nn.LSTM(4, 5, num_layers=2, dropout=0.5, seed=5, backend=backend)
    out_a, _ = a(x)
    np.testing.assert_array_equal(out_a, b(x)[0])
    assert not np.allclose(out_a, a(x)[0])  # a fresh mask on every call
    a.rng, b.rng = np.random.default_rng(11), np.random.default_rng(11)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])


def test_dropout_inactive_in_eval_mode_and_after_the_last_layer(backend, rng):
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    layer = nn.GRU(4, 5, num_layers=2, dropout=0.5, seed=6, backend=backend)
    plain = nn.GRU(4, 5, num_layers=2, seed=0, backend=backend)
    plain.load_state_dict(layer.state_dict())
    assert layer.training and layer.eval() is layer and not layer.training
    np.testing.assert_array_equal(layer(x)[0], plain(x)[0])
    assert layer.train() is layer and layer.training
    assert not np.allclose(layer(x)[0], plain(x)[0])
    single = nn.GRU(4, 5, dropout=0.5, seed=6, backend=backend)  # one layer: nothing to drop
    np.testing.assert_array_equal(single(x)[0], single.eval()(x)[0])


# ------------------------------------------------------------------------- gradient buffers


@pytest.mark.parametrize("mode", MODES)
def test_grads_accumulate_and_zero_grad_resets(mode, backend, rng):
    layer = make(mode, backend, 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=7)
    buffers = {name: g for name, g in layer.grads.items()}
    assert all(not g.any() for g in buffers.values())
    x = rng.standard_normal((5, 2, 3))
    output, state = layer(x)
    d_output, d_state = rng.standard_normal(output.shape), like(state, rng)
    dx1, _ = layer.backward(d_output, d_state)
    once = {name: g.copy() for name, g in layer.grads.items()}
    dx2, _ = layer.backward(d_output, d_state)  # the same forward call, twice
    layer(x)
    layer.backward(d_output, d_state)
    np.testing.assert_array_equal(dx1, dx2)
    for name, g in layer.grads.items():
        assert g is buffers[name]
        np.testing.assert_allclose(g, 3 * once[name], rtol=1e-12, atol=1e-14)
    layer.zero_grad()
    assert all(g is buffers[name] and not g.any() for name, g in layer.grads.items())


# ------------------------------------------------------------------------- parameters


def test_parameter_names_shapes_and_order_follow_torch():
    lstm = nn.LSTM(3, 5, num_layers=2, bidirectional=True, seed=0)
    names = [
        f"{kind}_l{k}{sfx}"
        for k in range(2)
        for sfx in ("", "_reverse")
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    ]
    assert list(lstm.state_dict()) == names == [n for n, _ in lstm.named_parameters()]
    assert lstm.weight_ih_l0.shape == (20, 3) and lstm.weight_ih_l1_reverse.shape == (20, 10)
    assert lstm.weight_hh_l1.shape == (20, 5) and lstm.bias_hh_l0_reverse.shape == (20,)
    gru = nn.GRU(3, 5, num_layers=3, bias=False, seed=0)
    assert list(gru.state_dict()) == [f"weight_{t}_l{k}" for k in range(3) for t in ("ih", "hh")]
    assert gru.weight_ih_l2.shape == (15, 5)
    assert nn.RNN(3, 5, seed=0).weight_hh_l0.shape == (5, 5)


def test_same_seed_same_weights():
    a, b = nn.LSTM(4, 9, num_layers=2, seed=3), nn.LSTM(4, 9, num_layers=2, seed=3)
    c = nn.LSTM(4, 9, num_layers=2, rng=np.random.default_rng(3))
    d = nn.LSTM(4, 9, num_layers=2, seed=4)
    bound = 1 / math.sqrt(9)
    for name, p in a.named_parameters():
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, b.state_dict()[name])
        np.testing.assert_array_equal(p, c.state_dict()[name])
        assert not np.array_equal(p, d.state_dict()[name])
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.8 * bound


def ks_distance(a, b) -> float:
    """Largest gap between the empirical distribution functions of ``a`` and ``b``."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_every_parameter_is_uniform_on_one_over_sqrt_hidden(mode):
    """torch's documented initialisation, U(-1/sqrt(H), 1/sqrt(H)) for every
    weight and bias: each parameter within the bound, and all values together
    against that distribution (a Kolmogorov-Smirnov distance; at 14,000 to
    60,000 values sampling noise is below 0.012, a normal of the same variance
    is 0.057 away)."""
    layer = make(mode, None, 40, 64, num_layers=2, seed=5)
    bound = 1 / math.sqrt(64)
    for name, p in layer.named_parameters():
        assert np.abs(p).max() <= bound, name
    values = np.concatenate([p.ravel() for _, p in layer.named_parameters()])
    assert ks_distance(values, np.linspace(-bound, bound, 4001)) < 0.02


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh"])
def test_weights_are_drawn_like_torchs(mode):
    """Same names, shapes, dtype, and values from the same distribution as
    torch's layer of the same size (two-sample Kolmogorov-Smirnov distance)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cls, extra = MODES[mode]
    ours = make(mode, None, 40, 64, num_layers=2, seed=5)
    theirs = getattr(torch.nn, cls.__name__)(40, 64, num_layers=2, **extra)
    want = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    got = ours.state_dict()
    assert list(got) == list(want)
    for name, p in got.items():
        assert p.shape == want[name].shape and p.dtype == want[name].dtype, name
    pooled = [np.concatenate([v.ravel() for v in d.values()]) for d in (got, want)]
    assert ks_distance(*pooled) < 0.02


@pytest.mark.parametrize("mode", MODES)
def test_state_dict_round_trip(mode, backend, rng):
    x = rng.standard_normal((4, 2, 3))
    a = make(mode, backend, 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=8)
    b = make(mode, backend, 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=9)
    assert not np.allclose(a(x)[0], b(x)[0])
    state = a.state_dict()
    live = dict(b.named_parameters())
    assert b.load_state_dict(state) == ([], [])
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    assert all(p is live[name] for name, p in b.named_parameters())  # copied in place
    state["weight_hh_l0"][:] = 0  # a copy: the layer does not change
    assert a.weight_hh_l0.any()


def test_load_state_dict_casts_and_reports_keys():
    src = nn.GRU(3, 4, num_layers=2, dtype=np.float64, seed=1)
    dst = nn.GRU(3, 4, num_layers=2, seed=2)
    partial = {k: v for k, v in src.state_dict().items() if k.endswith("l0")}
    partial["extra"] = np.zeros(3)
    result = dst.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"]
    assert result.unexpected_keys == ["extra"]
    assert dst.weight_ih_l0.dtype == np.float32
    np.testing.assert_array_equal(dst.weight_ih_l0, src.weight_ih_l0.astype(np.float32))
    assert not np.allclose(dst.weight_ih_l1, src.weight_ih_l1)


def test_parameters_are_the_live_arrays(backend, rng):
    layer = nn.RNN(3, 4, dtype=np.float64, seed=0, backend=backend)
    x = rng.standard_normal((5, 2, 3))
    before, _ = layer(x)
    assert list(layer.parameters())[1] is layer.weight_hh_l0
    layer.weight_hh_l0 *= 0.5  # in place, as an optimizer step
    assert not np.allclose(before, layer(x)[0])
    w = np.zeros((4, 4))
    layer.weight_hh_l0 = w  # assignment copies into the parameter
    assert layer.weight_hh_l0 is not w and not layer.weight_hh_l0.any()
    assert "weight_hh_l0" in dir(layer)


# ------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("mode", MODES)
def test_batch_first_equals_transposed_time_major(mode, backend, rng):
    kw = {"num_layers": 2, "bidirectional": True, "dtype": np.float64, "seed": 10}
    tm = make(mode, backend, 3, 4, **kw)
    bf = make(mode, backend, 3, 4, batch_first=True, **kw)
    x = rng.standard_normal((5, 2, 3))  # (T, N, D)
    hx = initial_state(tm, 2, rng)
    out, state = tm(x, hx)
    out_bf, state_bf = bf(x.transpose(1, 0, 2), hx)
    np.testing.assert_allclose(out_bf, out.transpose(1, 0, 2), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(flat(state_bf), flat(state), rtol=1e-13, atol=1e-15)
    d_output, d_state = rng.standard_normal(out.shape), like(state, rng)
    dx, d_hx = tm.backward(d_output, d_state)
    dx_bf, d_hx_bf = bf.backward(d_output.transpose(1, 0, 2), d_state)
    np.testing.assert_allclose(dx_bf, dx.transpose(1, 0, 2), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(flat(d_hx_bf), flat(d_hx), rtol=1e-12, atol=1e-14)
    for name in tm.grads:
        np.testing.assert_allclose(bf.grads[name], tm.grads[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_equals_a_batch_of_one(mode, backend, rng):
    layer = make(mode, backend, 3, 4, num_layers=2, bidirectional=True, dtype=np.float64, seed=11)
    x = rng.standard_normal((5, 3))  # (T, D)
    hx = initial_state(layer, 1, rng, batched=False)
    out, state = layer(x, hx)
    d_output, d_state = rng.standard_normal(out.shape), like(state, rng)
    dx, d_hx = layer.backward(d_output, d_state)
    out1, state1 = layer(x[:, None], apply(lambda h: h[:, None], hx))  # N = 1
    dx1, d_hx1 = layer.backward(d_output[:, None], apply(lambda d: d[:, None], d_state))
    np.testing.assert_array_equal(out, out1[:, 0])
    np.testing.assert_array_equal(dx, dx1[:, 0])
    for a, b in zip(flat(state) + flat(d_hx), flat(state1) + flat(d_hx1)):
        np.testing.assert_array_equal(a, b[:, 0])


@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("mode", MODES)
def test_lengths_equal_each_sequence_run_alone(mode, batch_first, backend, rng):
    T, N, D, H = 5, 4, 3, 4
    kw = {"num_layers": 2, "bidirectional": True, "dtype": np.float64, "seed": 12}
    layer = make(mode, backend, D, H, batch_first=batch_first, **kw)
    alone = make(mode, backend, D, H, **kw)
    lengths = np.array([3, 5, 1, 4])
    x = rng.standard_normal((T, N, D))
    hx = initial_state(layer, N, rng)
    d_output = rng.standard_normal((T, N, 2 * H))
    d_state = like(hx, rng)
    tr = (lambda a: a.transpose(1, 0, 2)) if batch_first else (lambda a: a)  # (T, N) <-> (N, T)
    out, state = layer(tr(x), hx, lengths)
    out = tr(out)  # (T, N, 2H)
    dx, d_hx = layer.backward(tr(d_output), d_state)
    dx = tr(dx)  # (T, N, D)

    def pick(s, n):  # sequence n of a state, keeping the batch axis: (L*dirs, 1, H)
        return apply(lambda a: a[:, n : n + 1], s)

    for n, L in enumerate(lengths):
        assert not out[L:, n].any() and not dx[L:, n].any()
        out_n, state_n = alone(x[:L, n : n + 1], pick(hx, n))
        dx_n, d_hx_n = alone.backward(d_output[:L, n : n + 1], pick(d_state, n))
        np.testing.assert_allclose(out[:L, n : n + 1], out_n, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dx[:L, n : n + 1], dx_n, rtol=1e-12, atol=1e-14)
        for a, b in zip(flat(pick(state, n)) + flat(pick(d_hx, n)), flat(state_n) + flat(d_hx_n)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    for name, g in layer.grads.items():  # `alone` accumulated over the N sequences
        np.testing.assert_allclose(g, alone.grads[name], rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_hx_none_means_zeros(mode, backend, rng):
    layer = make(mode, backend, 3, 4, num_layers=2, dtype=np.float64, seed=13)
    x = rng.standard_normal((5, 2, 3))
    zeros = apply(np.zeros_like, initial_state(layer, 2, rng))
    out, state = layer(x)
    out0, state0 = layer(x, zeros)
    np.testing.assert_array_equal(out, out0)
    np.testing.assert_array_equal(flat(state), flat(state0))


@pytest.mark.parametrize("mode", MODES)
def test_float32_layer_agrees_with_float64(mode, backend, rng):
    l64 = make(mode, backend, 3, 8, num_layers=2, bidirectional=True, dtype=np.float64, seed=14)
    l32 = make(mode, backend, 3, 8, num_layers=2, bidirectional=True, seed=0)
    l32.load_state_dict(l64.state_dict())
    x = rng.standard_normal((6, 2, 3))
    out64, _ = l64(x)
    out32, _ = l32(x.astype(np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    d_output = rng.standard_normal(out64.shape)
    dx64, _ = l64.backward(d_output)
    dx32, _ = l32.backward(d_output.astype(np.float32))
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    for name, g in l64.grads.items():
        np.testing.assert_allclose(l32.grads[name], g, rtol=1e-4, atol=1e-5)


def test_default_backend_is_rust_compiled_kernels(rng):
    layer = nn.LSTM(3, 4, num_layers=2, seed=0)  # building a layer needs no kernels
    rust = nn.LSTM(3, 4, num_layers=2, seed=0, backend=importlib.import_module("rnncore._rnncore"))
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x)[0], rust(x)[0])


def test_repr_like_torch():
    assert repr(nn.LSTM(10, 20, num_layers=2, bidirectional=True)) == (
        "LSTM(10, 20, num_layers=2, bidirectional=True)"
    )
    assert repr(nn.GRU(3, 4, bias=False, batch_first=True, dropout=0.5)) == (
        "GRU(3, 4, bias=False, batch_first=True, dropout=0.5)"
    )
    assert repr(nn.RNN(3, 4)) == "RNN(3, 4)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu", dtype=np.float64)) == (
        "RNN(3, 4, nonlinearity='relu', dtype=float64)"
    )


def test_pickle_and_deepcopy_keep_weights_backend_and_last_forward(backend, rng):
    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.3, dtype=np.float64, seed=0, backend=backend)
    x = rng.standard_normal((5, 2, 3))
    output, _ = layer(x)
    clones = [pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)]
    d_output = rng.standard_normal(output.shape)
    dx, _ = layer.backward(d_output)  # through the forward with dropout
    expected, _ = layer.eval()(x)
    for clone in clones:
        assert clone._kernels is backend and clone.weight_hh_l1 is not layer.weight_hh_l1
        np.testing.assert_array_equal(clone.backward(d_output)[0], dx)
        np.testing.assert_array_equal(clone.eval()(x)[0], expected)


def test_lstm_cifg_flag():
    assert repr(nn.LSTM(3, 4, cifg=True)) == "LSTM(3, 4, cifg=True)"
    assert repr(nn.LSTMCell(3, 4, cifg=True)) == "LSTMCell(3, 4, cifg=True)"
    assert nn.LSTM(3, 4, cifg=True).weight_hh_l0.shape == (12, 4)  # gates f|g|o
    for cls in (nn.LSTM, nn.LSTMCell):
        with pytest.raises(ArgumentError, match="cifg"):
            cls(3, 4, cifg=None)


def test_lstm_peephole_flag():
    assert repr(nn.LSTM(3, 4, peephole=True)) == "LSTM(3, 4, peephole=True)"
    assert repr(nn.LSTMCell(3, 4, peephole=True)) == "LSTMCell(3, 4, peephole=True)"
    layer = nn.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True, seed=0)
    assert layer.weight_hh_l0.shape == (16, 4)  # gates i|f|g|o
    peep = [name for name, _ in layer.named_parameters() if "peep" in name]
    assert peep == [
        "weight_peep_l0", "weight_peep_l0_reverse", "weight_peep_l1", "weight_peep_l1_reverse"
    ]  # fmt: skip
    for name in peep:  # drawn like the other weights, U(-1/sqrt(H), 1/sqrt(H))
        p = getattr(layer, name)
        assert p.shape == (12,) and p.dtype == np.float32
        assert np.abs(p).max() <= 0.5 and np.any(p != 0)
    assert [n for n, _ in nn.LSTMCell(3, 4, peephole=True).named_parameters()][-1] == "weight_peep"
    assert not any("peep" in n for n, _ in nn.LSTM(3, 4).named_parameters())
    for cls in (nn.LSTM, nn.LSTMCell):
        with pytest.raises(ArgumentError, match="peephole"):
            cls(3, 4, peephole=1)
        with pytest.raises(ArgumentError, match="cifg=True and peephole=True"):
            cls(3, 4, cifg=True, peephole=True)


@pytest.mark.parametrize("backend", [None, reference], ids=["rust", "reference"])
def test_lstm_peephole_with_zero_peepholes_is_the_lstm(backend, rng):
    kw = {"num_layers": 2, "bidirectional": True, "dtype": np.float64, "backend": backend}
    plain = nn.LSTM(3, 4, seed=2, **kw)
    peep = nn.LSTM(3, 4, peephole=True, **kw)
    peep.load_state_dict(
        {
            **plain.state_dict(),
            **{n: np.zeros(12) for n, _ in peep.named_parameters() if "peep" in n},
        }
    )
    x, lengths = rng.standard_normal((5, 3, 3)), np.array([5, 2, 4])
    (out_a, state_a), (out_b, state_b) = plain(x, lengths=lengths), peep(x, lengths=lengths)
    np.testing.assert_allclose(out_a, out_b, rtol=1e-13, atol=1e-15)
    for a, b in zip(state_a, state_b):  # h_n, c_n
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    d_output = rng.standard_normal(out_a.shape)
    (dx_a, _), (dx_b, _) = plain.backward(d_output), peep.backward(d_output)
    np.testing.assert_allclose(dx_a, dx_b, rtol=1e-13, atol=1e-15)
    for name, g in plain.grads.items():
        np.testing.assert_allclose(g, peep.grads[name], rtol=1e-13, atol=1e-15, err_msg=name)
    assert all(np.any(peep.grads[n] != 0) for n in peep.grads if "peep" in n)


def test_gru_reset_after_flag():
    assert repr(nn.GRU(3, 4, reset_after=False)) == "GRU(3, 4, reset_after=False)"
    assert repr(nn.GRUCell(3, 4, reset_after=False)) == "GRUCell(3, 4, reset_after=False)"
    assert nn.GRU(3, 4).reset_after and not nn.GRUCell(3, 4, reset_after=False).reset_after
    for cls in (nn.GRU, nn.GRUCell):
        with pytest.raises(ArgumentError, match="reset_after"):
            cls(3, 4, reset_after="no")
