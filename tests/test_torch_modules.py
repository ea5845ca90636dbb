"""rnncore.torch modules against torch.nn: same state dict, same outputs and gradients.

Each rnncore.torch module loads the state dict of a torch.nn module; outputs,
final states and the gradients autograd computes (input, initial states, every
parameter) must agree to float64 rounding, and to float32 tolerances in float32.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

KINDS = {  # name -> (class name, extra constructor arguments)
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}
TOL64 = {"rtol": 1e-10, "atol": 1e-12}
TOL32 = {"rtol": 2e-4, "atol": 2e-5}


def pair(kind, D, H, cell=False, dtype=torch.float64, **kwargs):
    """A torch.nn module and its rnncore.torch twin with the same weights."""
    name, extra = KINDS[kind]
    name += "Cell" if cell else ""
    theirs = getattr(torch.nn, name)(D, H, **extra, **kwargs, dtype=dtype)
    ours = getattr(rt, name)(D, H, **extra, **kwargs, dtype=dtype)
    assert isinstance(ours, getattr(torch.nn, name))
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


def compare(theirs, ours, make_args, tol, seed=0):
    """Run both on the same inputs; compare outputs, then gradients of a random loss."""
    results = []
    for module in (theirs, ours):
        args = make_args()
        outs = flat(module(*args))
        gen = torch.Generator().manual_seed(seed)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
        inputs = [a for a in flat(args) if a.requires_grad]
        grads = torch.autograd.grad(loss, [*inputs, *module.parameters()])
        results.append((outs, grads))
    (outs_t, grads_t), (outs_o, grads_o) = results
    assert len(outs_t) == len(outs_o)
    for a, b in zip(outs_t, outs_o):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(b, a, **tol)
    for a, b in zip(grads_t, grads_o):
        torch.testing.assert_close(b, a, **tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_stack_matches_torch_float64(kind, bidirectional, batch_first):
    theirs, ours = pair(
        kind, 5, 4, num_layers=2, bidirectional=bidirectional, batch_first=batch_first
    )
    gen = torch.Generator().manual_seed(1)
    x = torch.randn((3, 6, 5) if batch_first else (6, 3, 5), generator=gen, dtype=torch.float64)
    h = torch.randn(2 * (2 if bidirectional else 1), 3, 4, generator=gen, dtype=torch.float64)
    c = torch.randn(h.shape, generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, c)
        return (x_, (h_, c_)) if kind == "lstm" else (x_, h_)

    compare(theirs, ours, args, TOL64)
    compare(theirs, ours, lambda: leaves(x), TOL64)  # hx None: zeros


@pytest.mark.parametrize("kind", KINDS)
def test_stack_matches_torch_float32(kind):
    theirs, ours = pair(kind, 7, 9, num_layers=2, bidirectional=True, dtype=torch.float32)
    x = torch.randn(11, 4, 7, generator=torch.Generator().manual_seed(2))
    compare(theirs, ours, lambda: leaves(x), TOL32)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input(kind):
    theirs, ours = pair(kind, 3, 2, num_layers=2, bidirectional=True)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    h = torch.randn(4, 2, generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, h * 0.5)
        return (x_, (h_, c_)) if kind == "lstm" else (x_, h_)

    compare(theirs, ours, args, TOL64)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_sequence(kind, enforce_sorted):
    theirs, ours = pair(kind, 3, 4, num_layers=2, bidirectional=True)
    gen = torch.Generator().manual_seed(4)
    lengths = [7, 5, 5, 2, 1] if enforce_sorted else [2, 7, 1, 5, 5]
    x = torch.randn(7, 5, 3, generator=gen, dtype=torch.float64)
    h = torch.randn(4, 5, 4, generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, -h)
        packed = pack_padded_sequence(x_, lengths, enforce_sorted=enforce_sorted)
        return (packed, (h_, c_)) if kind == "lstm" else (packed, h_)

    compare(theirs, ours, args, TOL64)
    out_t, _ = theirs(pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted))
    out_o, _ = ours(pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted))
    assert torch.equal(out_o.batch_sizes, out_t.batch_sizes)
    for a, b in [(out_t.sorted_indices, out_o.sorted_indices)]:
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batched", [True, False])
def test_cells_match_torch(kind, batched):
    theirs, ours = pair(kind, 5, 3, cell=True)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn((4, 5) if batched else (5,), generator=gen, dtype=torch.float64)
    h = torch.randn((4, 3) if batched else (3,), generator=gen, dtype=torch.float64)

    def args():
        x_, h_, c_ = leaves(x, h, h * 2)
        return (x_, (h_, c_)) if kind == "lstm" else (x_, h_)

    compare(theirs, ours, args, TOL64)
    compare(theirs, ours, lambda: leaves(x), TOL64)


@pytest.mark.parametrize("kind", KINDS)
def test_no_bias(kind):
    theirs, ours = pair(kind, 3, 2, num_layers=2, bias=False)
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    compare(theirs, ours, lambda: leaves(x), TOL64)
    theirs, ours = pair(kind, 3, 2, cell=True, bias=False)
    compare(theirs, ours, lambda: leaves(x[0]), TOL64)


@settings(max_examples=15, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    T=st.integers(1, 6),
    N=st.integers(1, 5),
    D=st.integers(1, 17),
    H=st.integers(1, 17),
    layers=st.integers(1, 2),
    bidirectional=st.booleans(),
)
def test_shapes_hypothesis(kind, T, N, D, H, layers, bidirectional):
    theirs, ours = pair(kind, D, H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(T, N, D, generator=torch.Generator().manual_seed(T * N), dtype=torch.float64)
    compare(theirs, ours, lambda: leaves(x), TOL64)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_gradcheck_float64(kind):
    _, ours = pair(kind, 3, 2, num_layers=2, bidirectional=True)
    gen = torch.Generator().manual_seed(6)
    shapes = [(4, 2, 3), (4, 2, 2), (4, 2, 2)]  # x (T, N, D), h0 and c0 (L*dirs, N, H)
    x, h, c = leaves(*(torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes))
    names = [n for n, _ in ours.named_parameters()]

    def fn(x, h, c, *weights):
        hx = (h, c) if kind == "lstm" else h
        out, state = torch.func.functional_call(ours, dict(zip(names, weights)), (x, hx))
        return (out, *flat(state))

    weights = leaves(*ours.parameters())
    assert torch.autograd.gradcheck(fn, (x, h, c, *weights))
