"""rnncore.torch.LSTM(proj_size=P) against torch.nn.LSTM(proj_size=P): the same
state dict both ways, the same outputs and autograd gradients (float64 rounding,
float32 tolerances), packed sequences, and gradcheck on a tiny case."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

from rnncore.torch import _checks  # noqa: E402

TOL64 = {"rtol": 1e-10, "atol": 1e-12}
TOL32 = {"rtol": 2e-4, "atol": 2e-5}


def pair(D, H, P, dtype=torch.float64, **kwargs):
    """torch.nn.LSTM and rnncore.torch.LSTM with the same weights."""
    theirs = torch.nn.LSTM(D, H, proj_size=P, **kwargs, dtype=dtype)
    ours = rt.LSTM(D, H, proj_size=P, **kwargs, dtype=dtype)
    assert isinstance(ours, torch.nn.LSTM) and ours.proj_size == P
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    return theirs, ours


def leaves(*tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def flat(x):
    if isinstance(x, torch.nn.utils.rnn.PackedSequence):
        return [x.data]
    if isinstance(x, (tuple, list)):
        return [t for part in x for t in flat(part)]
    return [x]


def compare(theirs, ours, make_args, tol):
    """Both modules on the same inputs: outputs, then the gradients of a random loss."""
    results = []
    for module in (theirs, ours):
        args = make_args()
        outs = flat(module(*args))
        gen = torch.Generator().manual_seed(0)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
        inputs = [a for a in flat(args) if a.requires_grad]
        results.append((outs, torch.autograd.grad(loss, [*inputs, *module.parameters()])))
    (outs_t, grads_t), (outs_o, grads_o) = results
    assert [o.shape for o in outs_o] == [o.shape for o in outs_t]
    for a, b in zip(outs_t + list(grads_t), outs_o + list(grads_o), strict=True):
        torch.testing.assert_close(b, a, **tol)


@pytest.mark.parametrize(
    "layers, bidirectional, batch_first", [(1, False, False), (2, True, False), (2, True, True)]
)
def test_matches_torch_float64(layers, bidirectional, batch_first):
    T, N, D, H, P = 5, 3, 4, 6, 2
    kw = {"num_layers": layers, "bidirectional": bidirectional, "batch_first": batch_first}
    theirs, ours = pair(D, H, P, **kw)
    LD = layers * (2 if bidirectional else 1)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((N, T, D) if batch_first else (T, N, D), generator=gen, dtype=torch.float64)
    h = torch.randn(LD, N, P, generator=gen, dtype=torch.float64)
    c = torch.randn(LD, N, H, generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, c)
        return x_, (h_, c_)

    compare(theirs, ours, args, TOL64)
    compare(theirs, ours, lambda: leaves(x), TOL64)  # zero initial state
    out, (h_n, c_n) = ours(x)
    assert out.shape[-1] == (2 if bidirectional else 1) * P
    assert h_n.shape == (LD, N, P) and c_n.shape == (LD, N, H)


@settings(max_examples=25, deadline=None)
@given(
    T=st.integers(1, 6),
    N=st.integers(1, 5),
    D=st.integers(1, 17),
    H=st.integers(2, 17),
    data=st.data(),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
)
def test_shapes_hypothesis(T, N, D, H, data, layers, bidirectional):
    P = data.draw(st.integers(1, H - 1), label="P")
    theirs, ours = pair(D, H, P, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, N, D, generator=torch.Generator().manual_seed(T * N), dtype=torch.float64)
    compare(theirs, ours, lambda: leaves(x), TOL64)


def test_matches_torch_float32():
    theirs, ours = pair(5, 9, 4, dtype=torch.float32, num_layers=2, bidirectional=True)
    x = torch.randn(7, 3, 5, generator=torch.Generator().manual_seed(2))
    compare(theirs, ours, lambda: leaves(x), TOL32)


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_sequence(enforce_sorted):
    theirs, ours = pair(3, 5, 2, num_layers=2, bidirectional=True)
    gen = torch.Generator().manual_seed(4)
    lengths = [7, 5, 5, 2, 1] if enforce_sorted else [2, 7, 1, 5, 5]
    x = torch.randn(7, 5, 3, generator=gen, dtype=torch.float64)
    h = torch.randn(4, 5, 2, generator=gen, dtype=torch.float64)
    c = torch.randn(4, 5, 5, generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, c)
        return pack_padded_sequence(x_, lengths, enforce_sorted=enforce_sorted), (h_, c_)

    compare(theirs, ours, args, TOL64)


def test_state_dict_loads_both_ways():
    kw = {"num_layers": 2, "bidirectional": True, "proj_size": 3}
    ours = rt.LSTM(4, 7, **kw)
    theirs = torch.nn.LSTM(4, 7, **kw)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert theirs.load_state_dict(ours.state_dict()) == ([], [])
    x = torch.randn(5, 2, 4)
    with torch.no_grad():
        for a, b in zip(flat(ours(x)), flat(theirs(x)), strict=True):
            torch.testing.assert_close(a, b, **TOL32)


def test_gradcheck_float64():
    _, ours = pair(3, 3, 2, num_layers=2, bidirectional=True)
    gen = torch.Generator().manual_seed(6)
    shapes = [(4, 2, 3), (4, 2, 2), (4, 2, 3)]  # x (T, N, D), h0 (L*dirs, N, P), c0 (.., H)
    x, h, c = leaves(*(torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes))
    names = [n for n, _ in ours.named_parameters()]
    assert "weight_hr_l1_reverse" in names

    def fn(x, h, c, *weights):
        out, state = torch.func.functional_call(ours, dict(zip(names, weights)), (x, (h, c)))
        return (out, *flat(state))

    weights = leaves(*ours.parameters())
    assert torch.autograd.gradcheck(fn, (x, h, c, *weights))


def test_hx_of_the_wrong_shape_is_refused():
    _, ours = pair(3, 5, 2)
    x = torch.zeros(4, 2, 3, dtype=torch.float64)

    def zeros(*shape):
        return torch.zeros(*shape, dtype=torch.float64)

    ours(x, (zeros(1, 2, 2), zeros(1, 2, 5)))
    with pytest.raises(_checks.SizeError, match=r"h_0\) of size \(1, 2, 2\)"):
        ours(x, (zeros(1, 2, 5), zeros(1, 2, 5)))
    with pytest.raises(_checks.SizeError, match=r"c_0\) of size \(1, 2, 5\)"):
        ours(x, (zeros(1, 2, 2), zeros(1, 2, 2)))
