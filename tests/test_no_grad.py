"""``rnncore.no_grad()``: forward calls that keep nothing for a backward.

The kernels' inference path (``forward(..., keep=False)``) against the forward
that keeps its cache, bit for bit, over modes, shapes, lengths, directions,
masks and thread counts (hypothesis); the layers and cells under the context;
the context itself (nesting, decorator, threads); and the errors."""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_layer_norm import LN_MODES
from test_layer_norm import make as make_ln
from test_recurrent_noise import MODES, make

import rnncore
import rnncore.nn as nn
from rnncore import _rnncore
from rnncore import reference as ref
from rnncore.corpus import default_corpus
from rnncore.data import CharVocab, StreamBatcher
from rnncore.errors import StateError
from rnncore.models import CharLM, LMConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer

ALL_MODES = [*MODES, *LN_MODES]


def kernel_call(impl, mode, args, kw, lengths, reverse, **extra):
    a = args
    return impl.forward(
        mode, a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
        lengths, reverse, **kw, **extra,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(ALL_MODES),
    T=st.integers(1, 9),
    N=st.integers(1, 12),
    D=st.integers(1, 20),
    H=st.sampled_from([1, 3, 16, 17, 33]),
    reverse=st.booleans(),
    ragged=st.booleans(),
    masks=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    threads=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_inference_path_gives_the_bits_of_the_kept_forward(
    mode, T, N, D, H, reverse, ragged, masks, dtype, threads, seed
):
    if mode in LN_MODES:
        args, kw = make_ln(T, N, D, H, mode=mode, seed=seed, noise=masks, dtype=dtype)
    else:
        args, kw = make(mode, T, N, D, H, seed=seed, rec=masks, zh=masks, zc=masks, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    lengths = rng.integers(1, T + 1, size=N) if ragged else None
    rnncore.set_num_threads(threads)
    try:
        kept = kernel_call(_rnncore, mode, args, kw, lengths, reverse)
        inferred = kernel_call(_rnncore, mode, args, kw, lengths, reverse, keep=False)
    finally:
        rnncore.set_num_threads(None)
    assert inferred[3] is None
    for name, a, b in zip(("output", "h_n", "c_n"), kept[:3], inferred[:3]):
        if a is None:
            assert b is None
        else:
            assert a.dtype == b.dtype and np.array_equal(a, b), name


def test_reference_backend_takes_keep():
    args, kw = make("lstm", 4, 3, 5, 6, seed=3)
    kept = kernel_call(ref, "lstm", args, kw, None, False)
    inferred = kernel_call(ref, "lstm", args, kw, None, False, keep=False)
    assert inferred[3] is None and isinstance(kept[3], dict)
    for a, b in zip(kept[:3], inferred[:3]):
        np.testing.assert_array_equal(a, b)


LAYERS = [
    lambda: nn.LSTM(5, 33, num_layers=2, bidirectional=True, seed=0),
    lambda: nn.LSTM(5, 12, proj_size=4, seed=0),
    lambda: nn.LSTM(5, 9, peephole=True, dtype=np.float64, seed=0),
    lambda: nn.LSTM(5, 9, layer_norm=True, seed=0),
    lambda: nn.GRU(5, 260, seed=0),
    lambda: nn.GRU(5, 17, reset_after=False, bidirectional=True, seed=0),
    lambda: nn.RNN(5, 7, nonlinearity="relu", num_layers=3, seed=0),
    lambda: nn.MUT2(5, 5, seed=0),
    lambda: nn.LSTM(5, 8, zoneout=0.3, recurrent_dropout=0.2, seed=0),
]


@pytest.mark.parametrize("make_layer", LAYERS)
def test_layers_give_the_same_bits_and_keep_nothing(make_layer):
    layer = make_layer()
    layer.eval()  # the same masks (none) in both calls
    x = np.random.default_rng(0).standard_normal((6, 9, 5)).astype(layer.dtype)
    lengths = np.array([6, 1, 3, 5, 6, 2, 4, 6, 1])
    out, state = layer(x, lengths=lengths)
    with rnncore.no_grad():
        assert not rnncore.is_grad_enabled()
        out2, state2 = layer(x, lengths=lengths)
    assert rnncore.is_grad_enabled()
    np.testing.assert_array_equal(out, out2)
    pairs = zip(state, state2) if isinstance(state, tuple) else [(state, state2)]
    for a, b in pairs:
        np.testing.assert_array_equal(a, b)
    with pytest.raises(StateError, match="no_grad"):
        layer.backward(np.ones_like(out))
    layer(x)  # a forward outside the context can be backpropagated again
    dx, _ = layer.backward(np.ones_like(out))
    assert dx.shape == x.shape


def test_a_cell_keeps_no_step_under_no_grad():
    cell = nn.LSTMCell(3, 4, seed=0)
    x = np.ones((2, 3), np.float32)
    want = cell(x)
    with rnncore.no_grad():
        got = cell(x)
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)
    cell.backward(np.ones((2, 4), np.float32))  # the step before the context
    with pytest.raises(StateError):
        cell.backward(np.ones((2, 4), np.float32))  # nothing else was kept


def test_the_context_nests_decorates_and_is_per_thread():
    seen = []

    @rnncore.no_grad()
    def inside():
        return rnncore.is_grad_enabled()

    with rnncore.no_grad():
        with rnncore.no_grad():
            pass
        assert not rnncore.is_grad_enabled()
        thread = threading.Thread(target=lambda: seen.append(rnncore.is_grad_enabled()))
        thread.start()
        thread.join()
    assert rnncore.is_grad_enabled()
    assert seen == [True]
    assert inside() is False and rnncore.is_grad_enabled()
    with pytest.raises(ValueError):
        with rnncore.no_grad():
            raise ValueError("leaves the context")
    assert rnncore.is_grad_enabled()


def test_evaluation_runs_without_grad_and_gives_the_loss():
    """Trainer.evaluate runs under no_grad: the loss of a pass that keeps
    everything, bit for bit, and no layer keeps a trace afterwards."""
    text = default_corpus()[:3000]
    vocab = CharVocab.from_text(text)
    config = LMConfig(vocab_size=len(vocab), hidden_size=24, num_layers=2, seed=0)
    model = CharLM(config)
    batcher = StreamBatcher(vocab.encode(text), 4, 16)
    optimizer = create("adam", dict(model.named_parameters()), lr=1e-3)
    trainer = Trainer(model, optimizer, batcher, TrainConfig(progress=False), vocab=vocab)
    model.eval()
    total, symbols, state = 0.0, 0, None
    for k in range(batcher.num_chunks("val")):
        inputs, targets = batcher.chunk("val", k)
        loss, state = model.loss(inputs, targets, state)  # keeps its traces
        total += float(loss) * inputs.size
        symbols += inputs.size
    model.train()
    assert trainer.evaluate() == total / symbols
    assert model.rnn._trace is None  # the evaluation's forwards kept nothing


def test_backends_under_no_grad():
    """The reference takes ``keep``; another backend is called as before (no
    ``keep`` keyword) and its cache is dropped."""
    calls = []

    def forward(*args, **kw):
        calls.append(kw.get("keep", "absent"))
        return ref.forward(*args, **{k: v for k, v in kw.items() if k != "keep"})

    other = types.SimpleNamespace(forward=forward, backward=ref.backward)
    x = np.random.default_rng(2).standard_normal((5, 3, 4))
    for backend in (ref, other):
        layer = nn.GRU(4, 6, dtype=np.float64, backend=backend, seed=1)
        want, _ = layer(x)
        with rnncore.no_grad():
            got, _ = layer(x)
        np.testing.assert_array_equal(want, got)
        with pytest.raises(StateError):
            layer.backward(np.ones_like(got))
    assert calls == ["absent", "absent"]


def test_trace_and_torch_autograd_keep_what_they_read_under_no_grad():
    layer = nn.LSTM(3, 5, seed=0)
    x = np.random.default_rng(3).standard_normal((4, 2, 3)).astype(np.float32)
    want, _ = layer.trace(x)
    with rnncore.no_grad():
        got, _ = layer.trace(x)
        with rnncore.enable_grad():
            assert rnncore.is_grad_enabled()
        assert not rnncore.is_grad_enabled()
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_array_equal(want[k], got[k])
    torch = pytest.importorskip("torch")
    from rnncore.torch import LSTM

    m = LSTM(3, 5)
    tx = torch.from_numpy(x).requires_grad_(True)
    with rnncore.no_grad():  # torch's autograd still records
        out, _ = m(tx)
    out.sum().backward()
    assert tx.grad is not None and tx.grad.shape == tx.shape
