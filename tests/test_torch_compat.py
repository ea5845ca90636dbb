"""rnncore.nn against torch.nn: same weights, same inputs, same results.

Torch's state dict is loaded into our layer (and ours into torch's); outputs,
final states and, after a backward with the same upstream gradients, the
gradients of the input, of the initial state and of every parameter must agree
to float64 rounding. Variable lengths go through torch's packed sequences.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import nn

torch = pytest.importorskip("torch")

MODES = {  # kernel mode -> (torch class, our class, extra constructor arguments)
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}
TOL = {"rtol": 1e-10, "atol": 1e-12}


def pair(mode, backend, D, H, cell=False, **kwargs):
    """A float64 torch module and ours with torch's weights."""
    name, extra = MODES[mode]
    name += "Cell" if cell else ""
    theirs = getattr(torch.nn, name)(D, H, **extra, **kwargs, dtype=torch.float64)
    ours = getattr(nn, name)(D, H, **extra, **kwargs, dtype=np.float64, seed=0, backend=backend)
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    return theirs, ours


def tensor(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def flat(state):
    return list(state) if isinstance(state, (tuple, list)) else [state]


def check_backward(theirs, ours, out_t, state_t, out, state, inputs_t, rng):
    """Same upstream gradients into both; compare input, state and parameter gradients."""
    d_output = rng.standard_normal(out.shape)
    d_state = [rng.standard_normal(s.shape) for s in flat(state)]
    loss = (out_t * torch.tensor(d_output)).sum()
    for s_t, d in zip(flat(state_t), d_state):
        loss = loss + (s_t * torch.tensor(d)).sum()
    loss.backward()
    dx, d_hx = ours.backward(d_output, tuple(d_state) if len(d_state) == 2 else d_state[0])
    grads = [dx, *flat(d_hx)]
    assert len(grads) == len(inputs_t)
    for g, t in zip(grads, inputs_t):
        np.testing.assert_allclose(g, t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time_major", "batch_first"])
@pytest.mark.parametrize("mode", MODES)
def test_layer_matches_torch(mode, batch_first, with_lengths, backend, rng):
    T, N, D, H = 6, 4, 3, 5
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": batch_first}
    theirs, ours = pair(mode, backend, D, H, **kw)
    x = rng.standard_normal((N, T, D) if batch_first else (T, N, D))
    hx = [rng.standard_normal((4, N, H)) for _ in range(2 if mode == "lstm" else 1)]
    lengths = np.array([6, 2, 5, 1]) if with_lengths else None
    x_t, hx_t = tensor(x), [tensor(h) for h in hx]
    packed = x_t
    if with_lengths:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x_t, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
    out_t, state_t = theirs(packed, tuple(hx_t) if len(hx) == 2 else hx_t[0])
    if with_lengths:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out_t, batch_first=batch_first, total_length=T
        )
    out, state = ours(x, tuple(hx) if len(hx) == 2 else hx[0], lengths)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    for s, s_t in zip(flat(state), flat(state_t)):
        np.testing.assert_allclose(s, s_t.detach().numpy(), **TOL)
    check_backward(theirs, ours, out_t, state_t, out, state, [x_t, *hx_t], rng)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_without_bias_matches_torch(mode, backend, rng):
    theirs, ours = pair(mode, backend, 3, 4, num_layers=3, bias=False)
    x_t = tensor(rng.standard_normal((5, 3)))  # (T, D)
    out_t, state_t = theirs(x_t)
    out, state = ours(x_t.detach().numpy())
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    for s, s_t in zip(flat(state), flat(state_t)):
        np.testing.assert_allclose(s, s_t.detach().numpy(), **TOL)
    # torch gives no gradient for a default zero state; ours returns it, checked elsewhere
    d_output = rng.standard_normal(out.shape)
    (out_t * torch.tensor(d_output)).sum().backward()
    dx, _ = ours.backward(d_output)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_our_weights_load_into_torch(mode, backend, rng):
    name, extra = MODES[mode]
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": True}
    ours = getattr(nn, name)(3, 5, **extra, **kw, seed=7, backend=backend)  # float32
    theirs = getattr(torch.nn, name)(3, 5, **extra, **kw)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)  # (N, T, D)
    out, state = ours(x)
    with torch.no_grad():
        out_t, state_t = theirs(torch.from_numpy(x))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, out_t.numpy(), rtol=1e-5, atol=1e-6)
    for s, s_t in zip(flat(state), flat(state_t)):
        np.testing.assert_allclose(s, s_t.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_state_dict_keys_and_shapes_equal_torch(mode, bias, bidirectional):
    name, extra = MODES[mode]
    kw = {"num_layers": 3, "bias": bias, "bidirectional": bidirectional}
    theirs = getattr(torch.nn, name)(3, 5, **extra, **kw).state_dict()
    ours = getattr(nn, name)(3, 5, **extra, **kw).state_dict()
    assert list(ours) == list(theirs)
    assert [v.shape for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("mode", MODES)
def test_cell_matches_torch(mode, batched, backend, rng):
    N, D, H = 3, 4, 5
    theirs, ours = pair(mode, backend, D, H, cell=True)
    lead = (N,) if batched else ()
    x_t = tensor(rng.standard_normal((*lead, D)))
    hx_t = [tensor(rng.standard_normal((*lead, H))) for _ in range(2 if mode == "lstm" else 1)]
    hx = [h.detach().numpy() for h in hx_t]
    state_t = theirs(x_t, tuple(hx_t) if len(hx) == 2 else hx_t[0])
    state = ours(x_t.detach().numpy(), tuple(hx) if len(hx) == 2 else hx[0])
    for s, s_t in zip(flat(state), flat(state_t)):
        np.testing.assert_allclose(s, s_t.detach().numpy(), **TOL)
    d_state = [rng.standard_normal(s.shape) for s in flat(state)]
    sum((s_t * torch.tensor(d)).sum() for s_t, d in zip(flat(state_t), d_state)).backward()
    dx, d_hx = ours.backward(*d_state)
    for g, t in zip([dx, *flat(d_hx)], [x_t, *hx_t]):
        np.testing.assert_allclose(g, t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)
