"""nn.LSTM(proj_size=P), the LSTM with projections, against torch.nn.LSTM(proj_size=P).

Torch's state dict loads into ours and ours into torch's (``weight_hr_l{k}``,
``_reverse``); outputs, final states and, after the same upstream gradients,
the gradients of the input, of ``(h_0, c_0)`` and of every parameter agree to
float64 rounding, on the compiled kernels and on the reference; variable
lengths go through torch's packed sequences. Then the shapes, the thread-count
independence, and the errors of bad ``proj_size`` values and states.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnncore
from rnncore import nn
from rnncore.errors import ArgumentError, ShapeError

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-10, "atol": 1e-12}


def pair(backend, D, H, P, **kwargs):
    """A float64 torch.nn.LSTM(proj_size=P) and ours with its weights."""
    theirs = torch.nn.LSTM(D, H, proj_size=P, **kwargs, dtype=torch.float64)
    ours = nn.LSTM(D, H, proj_size=P, **kwargs, dtype=np.float64, seed=0, backend=backend)
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    return theirs, ours


def tensor(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize(
    "layers, bidirectional, batch_first",
    [(1, False, False), (2, True, False), (2, True, True), (3, False, True)],
)
def test_forward_and_backward_match_torch(
    layers, bidirectional, batch_first, with_lengths, backend, rng
):
    T, N, D, H, P = 6, 4, 3, 5, 2
    kw = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    theirs, ours = pair(backend, D, H, P, **kw)
    LD = layers * (2 if bidirectional else 1)
    x = rng.standard_normal((N, T, D) if batch_first else (T, N, D))
    h0, c0 = rng.standard_normal((LD, N, P)), rng.standard_normal((LD, N, H))
    lengths = np.array([6, 2, 5, 1]) if with_lengths else None
    x_t, h0_t, c0_t = tensor(x), tensor(h0), tensor(c0)
    inp = x_t
    if with_lengths:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            x_t, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
        )
    out_t, (h_t, c_t) = theirs(inp, (h0_t, c0_t))
    if with_lengths:
        out_t, _ = torch.nn.utils.rnn.pad_packed_sequence(
            out_t, batch_first=batch_first, total_length=T
        )
    out, (h_n, c_n) = ours(x, (h0, c0), lengths)
    dirs = 2 if bidirectional else 1
    assert out.shape == ((N, T, dirs * P) if batch_first else (T, N, dirs * P))
    assert h_n.shape == (LD, N, P) and c_n.shape == (LD, N, H)
    np.testing.assert_allclose(out, out_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(h_n, h_t.detach().numpy(), **TOL)
    np.testing.assert_allclose(c_n, c_t.detach().numpy(), **TOL)

    d_out, d_h, d_c = (rng.standard_normal(a.shape) for a in (out, h_n, c_n))
    loss = (out_t * torch.tensor(d_out)).sum() + (h_t * torch.tensor(d_h)).sum()
    (loss + (c_t * torch.tensor(d_c)).sum()).backward()
    dx, (dh0, dc0) = ours.backward(d_out, (d_h, d_c))
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **TOL)
    np.testing.assert_allclose(dh0, h0_t.grad.numpy(), **TOL)
    np.testing.assert_allclose(dc0, c0_t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)


def test_unbatched_without_bias_matches_torch(backend, rng):
    theirs, ours = pair(backend, 3, 6, 4, num_layers=2, bias=False)
    x_t = tensor(rng.standard_normal((5, 3)))  # (T, D)
    out_t, (h_t, c_t) = theirs(x_t)
    out, (h_n, c_n) = ours(x_t.detach().numpy())
    assert out.shape == (5, 4) and h_n.shape == (2, 4) and c_n.shape == (2, 6)
    for a, b in [(out, out_t), (h_n, h_t), (c_n, c_t)]:
        np.testing.assert_allclose(a, b.detach().numpy(), **TOL)
    d_out = rng.standard_normal(out.shape)
    (out_t * torch.tensor(d_out)).sum().backward()
    dx, (dh0, dc0) = ours.backward(d_out)
    assert dh0.shape == (2, 4) and dc0.shape == (2, 6)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), **TOL)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.grads[name], p.grad.numpy(), **TOL, err_msg=name)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_state_dict_keys_and_shapes_equal_torch(bias, bidirectional):
    kw = {"num_layers": 3, "bias": bias, "bidirectional": bidirectional, "proj_size": 2}
    theirs = torch.nn.LSTM(3, 5, **kw).state_dict()
    ours = nn.LSTM(3, 5, **kw).state_dict()
    assert list(ours) == list(theirs)
    assert [v.shape for v in ours.values()] == [tuple(v.shape) for v in theirs.values()]
    assert "weight_hr_l2" in ours and ("weight_hr_l2_reverse" in ours) == bidirectional


def test_our_weights_load_into_torch(rng):
    kw = {"num_layers": 2, "bidirectional": True, "batch_first": True, "proj_size": 3}
    ours = nn.LSTM(3, 5, **kw, seed=7)  # float32
    theirs = torch.nn.LSTM(3, 5, **kw)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)  # (N, T, D)
    out, (h_n, c_n) = ours(x)
    with torch.no_grad():
        out_t, (h_t, c_t) = theirs(torch.from_numpy(x))
    assert out.dtype == np.float32 and out.shape == (2, 6, 6)
    for a, b in [(out, out_t), (h_n, h_t), (c_n, c_t)]:
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6)


def test_bitwise_the_same_at_any_thread_count(rng):
    layer = nn.LSTM(5, 40, num_layers=2, bidirectional=True, proj_size=9, seed=3)
    x = rng.standard_normal((12, 37, 5)).astype(np.float32)  # N = 37: several shards
    lengths = 1 + np.arange(37) % 12
    runs = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            layer.zero_grad()
            out, (h_n, c_n) = layer(x, lengths=lengths)
            dx, (dh0, dc0) = layer.backward(np.ones_like(out))
            runs.append([out, h_n, c_n, dx, dh0, dc0, *layer.grads.values()])
    finally:
        rnncore.set_num_threads(None)
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "proj_size, match",
    [
        (-1, "positive integer or zero"),
        (5, "smaller than hidden_size"),
        (6, "smaller than hidden_size"),
        (1.5, "positive integer or zero"),
        (True, "positive integer or zero"),
    ],
)
def test_bad_proj_size_is_an_argument_error(proj_size, match):
    with pytest.raises(ArgumentError, match=match):
        nn.LSTM(3, 5, proj_size=proj_size)
    with pytest.raises(ValueError):  # ArgumentError is a ValueError, as torch raises
        nn.LSTM(3, 5, proj_size=proj_size)


@pytest.mark.parametrize("variant", ["cifg", "peephole"])
def test_proj_size_needs_the_plain_lstm(variant):
    with pytest.raises(ArgumentError, match="plain LSTM"):
        nn.LSTM(3, 5, proj_size=2, **{variant: True})


def test_states_have_the_projected_and_the_cell_shapes(rng):
    layer = nn.LSTM(3, 5, num_layers=2, proj_size=2, dtype=np.float64)
    x = rng.standard_normal((4, 3, 3))
    h0, c0 = np.zeros((2, 3, 2)), np.zeros((2, 3, 5))
    layer(x, (h0, c0))
    with pytest.raises(ShapeError, match=r"h_0.*proj_size"):
        layer(x, (np.zeros((2, 3, 5)), c0))
    with pytest.raises(ShapeError, match=r"c_0.*H\)"):
        layer(x, (h0, np.zeros((2, 3, 2))))
    out, _ = layer(x)
    with pytest.raises(ShapeError, match="d_h_n"):
        layer.backward(np.zeros_like(out), (np.zeros((2, 3, 5)), None))
    with pytest.raises(ShapeError, match="d_output"):
        layer.backward(np.zeros((4, 3, 5)))
    assert "proj_size=2" in repr(layer)
    with pytest.raises(ArgumentError, match="projections"):
        layer.trace(x)
