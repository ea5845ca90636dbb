"""rnncore.models: CharLM, SequenceClassifier and SequenceTagger.

Every parameter gradient against central finite differences (float64, on each
kernel backend); the same computation in torch (nn.LSTM/GRU/RNN, nn.Linear,
cross_entropy, packed sequences) when torch is installed; truncated BPTT against
one long sequence; step-by-step sampling against the full forward; configs,
state dicts, the shared generator, dropout and bad arguments.
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
from gradcheck import numeric_gradient

from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError, StateError
from rnncore.models import (
    CharLM,
    ClassifierConfig,
    LMConfig,
    SequenceClassifier,
    SequenceTagger,
    TaggerConfig,
)
from rnncore.optim import Adam, NonFiniteGuard, clip_grad_norm_

CELLS = ["lstm", "lstm_cifg", "lstm_peephole", "gru", "gru_reset_before", "rnn_tanh", "rnn_relu"]
TORCH = {"lstm": ("LSTM", {}), "gru": ("GRU", {}), "rnn_tanh": ("RNN", {}), "rnn_relu": ("RNN", {})}
TORCH["rnn_relu"] = ("RNN", {"nonlinearity": "relu"})


def check_model_gradients(model, loss):
    """``model.backward`` after ``loss()`` against finite differences of ``loss()``."""
    loss()
    model.zero_grad()
    model.backward()
    assert list(model.grads) == [name for name, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            model.grads[name], numeric_gradient(loss, p), rtol=1e-5, atol=1e-8, err_msg=name
        )


def flat(state):
    """``h`` or ``(h, c)`` as a list of arrays."""
    return list(state) if isinstance(state, tuple) else [state]


def random_state(model, N, rng):
    L, H = model.config.num_layers, model.config.hidden_size
    h = rng.standard_normal((L, N, H)) * 0.5
    lstm = model.config.cell in ("lstm", "lstm_cifg", "lstm_peephole")
    return (h, rng.standard_normal((L, N, H))) if lstm else h


def lm(cell="lstm", embedding_dim=None, backend=None, **kw):
    kw = {"hidden_size": 3, "num_layers": 2, "dtype": "float64", "seed": 1, **kw}
    config = LMConfig(vocab_size=5, cell=cell, embedding_dim=embedding_dim, **kw)
    return CharLM(config, backend=backend)


# ------------------------------------------------------------------ CharLM gradients


@pytest.mark.parametrize("embedding_dim", [None, 2], ids=["onehot", "embedding"])
@pytest.mark.parametrize("cell", CELLS)
def test_charlm_gradients(cell, embedding_dim, backend, rng):
    model = lm(cell, embedding_dim, backend)
    x, y = rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    state = random_state(model, 2, rng)
    check_model_gradients(model, lambda: model.loss(x, y, state, mask)[0])


@pytest.mark.parametrize(
    ("cell", "embedding_dim"), [("mut1", 3), ("mut2", 3), ("mut3", None), ("mut3", 2)]
)
def test_charlm_gradients_mut(cell, embedding_dim, backend, rng):
    """The MUT cells: MUT1 and MUT2 read an embedding of the hidden size (they add
    their input itself), MUT3 also one-hot input."""
    model = lm(cell, embedding_dim, backend)
    assert not model.decodes_compiled
    x, y = rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    mask = np.array([[1, 1, 0], [1, 0, 1]], bool)
    state = random_state(model, 2, rng)
    check_model_gradients(model, lambda: model.loss(x, y, state, mask)[0])


@pytest.mark.parametrize("cell", ["mut1", "mut2"])
def test_mut1_and_mut2_models_need_an_input_of_the_hidden_size(cell):
    with pytest.raises(ArgumentError, match=r"input size \(5: .*must equal hidden_size \(3\)"):
        lm(cell)  # one-hot over V = 5
    with pytest.raises(ArgumentError, match="embedding_dim"):
        lm(cell, embedding_dim=2)
    config = ClassifierConfig(vocab_size=0, input_size=3, num_classes=2, hidden_size=3, cell=cell)
    SequenceClassifier(config)  # float features of the hidden size


def test_charlm_gradients_with_dropout(backend, rng):
    model = lm("gru", 2, backend, dropout=0.4, hidden_size=4)
    x, y = rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    saved = copy.deepcopy(model.rng.bit_generator.state)

    def loss():  # the same dropout masks on every call
        model.rng.bit_generator.state = saved
        return model.loss(x, y)[0]

    check_model_gradients(model, loss)


def test_charlm_sum_reduction_and_mask(rng):
    model = lm()
    x, y = rng.integers(0, 5, (3, 4)), rng.integers(0, 5, (3, 4))
    mean, _ = model.loss(x, y)
    total, _ = model.loss(x, y, reduction="sum")
    assert total == pytest.approx(12 * mean, rel=1e-13)
    mask = np.ones((3, 4), bool)
    mask[1, 2:] = False
    masked, _ = model.loss(x, y, mask=mask)
    y2 = y.copy()
    y2[1, 2:] = (y2[1, 2:] + 1) % 5  # masked targets do not matter
    assert model.loss(x, y2, mask=mask)[0] == masked != mean


# ------------------------------------------------------------------ CharLM against torch


@pytest.mark.parametrize("embedding_dim", [None, 4], ids=["onehot", "embedding"])
@pytest.mark.parametrize("cell", [c for c in CELLS if c in TORCH])  # torch: reset after only
def test_charlm_matches_torch(cell, embedding_dim, rng):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)  # torch's own initialisation: the same weights in any test order
    V, H, L, N, T = 6, 5, 2, 3, 4
    model = CharLM(LMConfig(V, cell, H, L, 0.0, embedding_dim, "float64", forget_bias=0.0, seed=0))
    name, extra = TORCH[cell]
    D = V if embedding_dim is None else embedding_dim
    rnn = getattr(torch.nn, name)(D, H, L, batch_first=True, dtype=torch.float64, **extra)
    head = torch.nn.Linear(H, V, dtype=torch.float64)
    mods = {"rnn": rnn, "head": head}
    if embedding_dim is not None:
        mods["embedding"] = torch.nn.Embedding(V, embedding_dim, dtype=torch.float64)
    model.load_state_dict(
        {f"{m}.{k}": v for m, mod in mods.items() for k, v in mod.state_dict().items()}
    )
    x, y = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
    mask = rng.random((N, T)) > 0.3
    state = random_state(model, N, rng)

    loss, new_state = model.loss(x, y, state, mask)
    model.zero_grad()
    model.backward()

    xt = torch.tensor(x)
    inp = mods["embedding"](xt) if embedding_dim else torch.nn.functional.one_hot(xt, V).double()
    st = tuple(map(torch.tensor, state)) if cell == "lstm" else torch.tensor(state)
    out, st_t = rnn(inp, st)
    targets = torch.tensor(np.where(mask, y, -100))
    ref = torch.nn.functional.cross_entropy(head(out).reshape(N * T, V), targets.reshape(-1))
    ref.backward()
    assert loss == pytest.approx(ref.item(), rel=1e-12)
    for ours, theirs in zip(flat(new_state), flat(st_t)):  # atol: entries near 0
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    for m, mod in mods.items():
        for k, p in mod.named_parameters():
            np.testing.assert_allclose(
                model.grads[f"{m}.{k}"], p.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=k
            )


# ------------------------------------------------------------------ CharLM behaviour


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_truncated_bptt_equals_one_long_sequence(cell, rng):
    model = lm(cell, hidden_size=4)
    x, y = rng.integers(0, 5, (2, 9)), rng.integers(0, 5, (2, 9))
    whole, final = model.loss(x, y)
    state, total = None, 0.0
    for t0, t1 in [(0, 4), (4, 5), (5, 9)]:
        loss, state = model.loss(x[:, t0:t1], y[:, t0:t1], state)
        total += loss * (t1 - t0)
    assert total / 9 == pytest.approx(whole, rel=1e-12)
    for a, b in zip(flat(state), flat(final)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("embedding_dim", [None, 3])
def test_step_matches_forward(embedding_dim, rng):
    model = lm("lstm", embedding_dim, dropout=0.5).eval()
    x = rng.integers(0, 5, (3, 6))
    logits, final = model.forward(x)
    assert logits.shape == (3, 6, 5)
    state = model.initial_state(3)
    for t in range(6):
        log_probs, state = model.step(x[:, t], state)
        expected = logits[:, t] - np.log(np.exp(logits[:, t]).sum(axis=1, keepdims=True))
        np.testing.assert_allclose(log_probs, expected, rtol=1e-12)
    for a, b in zip(state, final):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_parameters_grads_and_zero_grad(rng):
    model = lm("lstm", 2)
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "embedding.weight" and names[-2:] == ["head.weight", "head.bias"]
    assert "rnn.weight_ih_l1" in names and list(model.grads) == names
    assert model.num_parameters() == sum(p.size for p in model.parameters())
    x = rng.integers(0, 5, (2, 3))
    model.loss(x, x)
    model.backward()
    once = {k: g.copy() for k, g in model.grads.items()}
    assert all(g.any() for g in once.values())
    model.backward()  # accumulates
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-12)
    model.zero_grad()
    assert not any(g.any() for g in model.grads.values())


def test_config_roundtrip_and_seed():
    config = LMConfig(vocab_size=7, cell="gru", hidden_size=4, embedding_dim=3, seed=5)
    d = json.loads(json.dumps(dataclasses.asdict(config)))
    assert LMConfig(**d) == config == LMConfig.from_dict(d)
    a, b = CharLM(config), CharLM(LMConfig(**d))
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p, q, err_msg=name)
        assert p.dtype == np.float32
    c = CharLM(dataclasses.replace(config, seed=6))
    assert not np.array_equal(a.head.weight, c.head.weight)
    with pytest.raises(ArgumentError, match="unknown LMConfig fields \\['cells'\\]"):
        LMConfig.from_dict({**d, "cells": "lstm"})
    with pytest.raises(ArgumentError, match="cell"):
        LMConfig(vocab_size=7, cell="transformer")
    with pytest.raises(DTypeError, match="dtype"):
        LMConfig(vocab_size=7, dtype="float16")
    with pytest.raises(ArgumentError, match="forget_bias"):
        LMConfig(vocab_size=7, cell="gru", forget_bias=1.0)
    with pytest.raises(ArgumentError, match="vocab_size"):
        LMConfig(vocab_size=0)
    with pytest.raises(ArgumentError, match="LMConfig"):
        CharLM(d)


def test_forget_bias():
    base = CharLM(LMConfig(vocab_size=4, hidden_size=3, num_layers=2, seed=2))
    char_rnn = CharLM(LMConfig(vocab_size=4, hidden_size=3, num_layers=2, forget_bias=1, seed=2))
    for k in range(2):
        delta = getattr(char_rnn.rnn, f"bias_ih_l{k}") - getattr(base.rnn, f"bias_ih_l{k}")
        np.testing.assert_allclose(delta, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0], atol=1e-6)
        np.testing.assert_array_equal(
            getattr(char_rnn.rnn, f"bias_hh_l{k}"), getattr(base.rnn, f"bias_hh_l{k}")
        )


def test_state_dict_roundtrip_and_atomic_load(rng):
    a, b = lm("gru", 2, seed=1), lm("gru", 2, seed=2)
    x, y = rng.integers(0, 5, (2, 4)), rng.integers(0, 5, (2, 4))
    b.load_state_dict(a.state_dict())
    assert a.loss(x, y)[0] == b.loss(x, y)[0]
    before = b.state_dict()
    bad = dict(a.state_dict(), **{"head.bias": np.zeros(7)})
    bad["embedding.weight"] = bad["embedding.weight"] + 1
    with pytest.raises(ShapeError, match="bias"):
        b.load_state_dict(bad)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)  # nothing changed
    with pytest.raises(ArgumentError, match=r"missing keys \['head\.bias'\]"):
        b.load_state_dict({k: v for k, v in before.items() if k != "head.bias"})


def test_rng_dropout_and_modes(rng):
    model = lm("lstm", dropout=0.5, hidden_size=8)
    x, y = rng.integers(0, 5, (4, 6)), rng.integers(0, 5, (4, 6))
    saved = copy.deepcopy(model.rng.bit_generator.state)
    first = model.loss(x, y)[0]
    assert model.loss(x, y)[0] != first  # fresh dropout masks
    model.rng.bit_generator.state = saved  # what a checkpoint restores
    assert model.loss(x, y)[0] == first
    model.rng = np.random.default_rng(9)
    assert all(layer.rng is model.rng for layer in (model.rnn, model.dropout, model.head))
    model.eval()
    assert model.loss(x, y)[0] == model.loss(x, y)[0]
    plain = lm("lstm", dropout=0.0, hidden_size=8)
    plain.load_state_dict(model.state_dict())
    assert model.loss(x, y)[0] == plain.loss(x, y)[0]
    assert model.train() is model and model.rnn.training and model.dropout.training


def test_word_level_vocabulary(rng):
    V = 3000
    model = CharLM(LMConfig(vocab_size=V, cell="gru", hidden_size=16, embedding_dim=8))
    x = rng.integers(0, V, (2, 5))
    loss, state = model.loss(x, np.roll(x, -1, axis=1))
    assert abs(loss - np.log(V)) < 0.5 and state.shape == (2, 2, 16)
    model.backward()
    touched = np.flatnonzero(np.abs(model.grads["embedding.weight"]).sum(axis=1))
    assert set(touched) <= set(x.ravel().tolist())


def test_learns_a_repeating_sequence():
    model = CharLM(LMConfig(vocab_size=4, cell="lstm", hidden_size=16, num_layers=1, seed=0))
    opt = Adam(dict(model.named_parameters()), lr=0.05)
    text = np.tile([0, 1, 2, 3, 2, 1], 20)
    x, y = text[:-1].reshape(1, -1), text[1:].reshape(1, -1)
    losses = []
    for _ in range(60):
        model.zero_grad()
        loss, _ = model.loss(x, y)
        model.backward()
        clip_grad_norm_(model.grads, 5.0)
        opt.step(model.grads)
        losses.append(loss)
    assert losses[0] > 1.2 and losses[-1] < 0.1


def test_non_finite_loss_gives_nan_grads():
    model = lm("rnn_tanh")
    model.head.bias[0] = np.nan  # a diverged parameter (bypasses the checks)
    x = np.zeros((1, 3), np.int64)
    loss, _ = model.loss(x, x)
    assert np.isnan(loss)
    model.backward()
    assert all(np.isnan(g).all() for g in model.grads.values())
    guard = NonFiniteGuard(max_in_a_row=2)
    assert not guard.check(loss, model.grads)
    with pytest.raises(NonFiniteError):
        guard.check(loss, model.grads)


def test_charlm_errors(rng):
    model = lm("lstm")
    x = rng.integers(0, 5, (2, 3))
    with pytest.raises(StateError, match="loss"):
        model.backward()
    with pytest.raises(ArgumentError, match=r"inputs must lie in 0\.\.4"):
        model.loss(x + 5, x)
    with pytest.raises(ArgumentError, match="targets"):
        model.loss(x, x - 1)
    with pytest.raises(DTypeError, match="inputs"):
        model.loss(x.astype(float), x)
    with pytest.raises(ShapeError, match="inputs"):
        model.loss(x[0], x[0])
    with pytest.raises(ShapeError, match="targets"):
        model.loss(x, x[:, :2])
    with pytest.raises(ShapeError, match="mask"):
        model.loss(x, x, mask=np.ones((3, 2)))
    with pytest.raises(ArgumentError, match=r"state must be a tuple \(h, c\)"):
        model.loss(x, x, np.zeros((2, 2, 3)))
    h = np.zeros((2, 2, 3))
    with pytest.raises(ShapeError, match=r"state\[1\]"):
        model.loss(x, x, (h, np.zeros((2, 3, 3))))
    with pytest.raises(NonFiniteError, match=r"state\[0\]"):
        model.loss(x, x, (h + np.nan, h))
    model.loss(x, x)
    model.step(x[:, 0], None)
    with pytest.raises(StateError):
        model.backward()  # step() replaced what backward needed
    with pytest.raises(ShapeError, match="ids"):
        model.step(x, None)


# ------------------------------------------------------------------ classifier


def classifier(pooling, bidirectional, backend=None, **kw):
    config = ClassifierConfig(
        vocab_size=6,
        num_classes=3,
        embedding_dim=2,
        hidden_size=3,
        num_layers=2,
        bidirectional=bidirectional,
        pooling=pooling,
        dtype="float64",
        **kw,
    )
    return SequenceClassifier(config, backend=backend)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_gradients(pooling, bidirectional, backend, rng):
    model = classifier(pooling, bidirectional, backend, cell="gru")
    ids, lengths, labels = rng.integers(0, 6, (3, 4)), np.array([4, 1, 3]), np.array([2, 0, 1])
    check_model_gradients(model, lambda: model.loss(ids, lengths, labels))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_ignores_padding(pooling, rng):
    model = classifier(pooling, True).eval()
    ids, lengths = rng.integers(0, 6, (3, 5)), np.array([5, 2, 3])
    logits = model(ids, lengths)
    assert logits.shape == (3, 3)
    for n, length in enumerate(lengths):  # each sequence alone, without its padding
        alone = model(ids[n : n + 1, :length])
        np.testing.assert_allclose(logits[n : n + 1], alone, rtol=1e-12)
    assert model.predict(ids, lengths).tolist() == logits.argmax(axis=1).tolist()


def test_classifier_last_pooling_matches_torch_packed(rng):
    torch = pytest.importorskip("torch")
    model = classifier("last", True, cell="lstm").eval()
    lstm = torch.nn.LSTM(2, 3, 2, bidirectional=True, batch_first=True, dtype=torch.float64)
    emb = torch.nn.Embedding(6, 2, dtype=torch.float64)
    head = torch.nn.Linear(6, 3, dtype=torch.float64)
    state = {f"rnn.{k}": v for k, v in lstm.state_dict().items()}
    state |= {f"embedding.{k}": v for k, v in emb.state_dict().items()}
    model.load_state_dict(state | {f"head.{k}": v for k, v in head.state_dict().items()})
    ids, lengths = rng.integers(0, 6, (4, 5)), np.array([5, 1, 3, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        emb(torch.tensor(ids)), torch.tensor(lengths), batch_first=True, enforce_sorted=False
    )
    _, (h_n, _) = lstm(packed)
    expected = head(torch.cat([h_n[-2], h_n[-1]], dim=1))  # last layer: forward, reverse
    np.testing.assert_allclose(model(ids, lengths), expected.detach().numpy(), rtol=1e-12)


def test_classifier_errors(rng):
    model = classifier("last", False)
    ids = rng.integers(0, 6, (2, 3))
    with pytest.raises(ArgumentError, match="labels"):
        model.loss(ids, None, np.array([0, 3]))
    with pytest.raises(ArgumentError, match="lengths"):
        model.loss(ids, np.array([4, 1]), np.array([0, 1]))
    with pytest.raises(StateError):
        model.backward()
    with pytest.raises(ArgumentError, match="pooling"):
        ClassifierConfig(vocab_size=3, num_classes=2, pooling="max")


# ------------------------------------------------------------------ tagger


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_tagger_gradients(bidirectional, backend, rng):
    config = TaggerConfig(
        vocab_size=5,
        num_tags=3,
        embedding_dim=None,
        hidden_size=3,
        bidirectional=bidirectional,
        dtype="float64",
    )
    model = SequenceTagger(config, backend=backend)
    ids, lengths, tags = rng.integers(0, 5, (3, 4)), np.array([2, 4, 1]), rng.integers(0, 3, (3, 4))
    check_model_gradients(model, lambda: model.loss(ids, lengths, tags))


def test_tagger_padding(rng):
    model = SequenceTagger(TaggerConfig(vocab_size=5, num_tags=3, hidden_size=4, dtype="float64"))
    ids, lengths = rng.integers(0, 5, (3, 6)), np.array([6, 2, 4])
    tags = rng.integers(0, 3, (3, 6))
    loss = model.loss(ids, lengths, tags)
    valid = np.arange(6)[None, :] < lengths[:, None]  # (N, T)
    other_ids, other_tags = ids.copy(), tags.copy()
    other_ids[~valid], other_tags[~valid] = 0, -100  # padding content and labels
    assert model.loss(other_ids, lengths, other_tags) == pytest.approx(loss, rel=1e-13)
    logits = model(ids, lengths)
    assert logits.shape == (3, 6, 3)
    np.testing.assert_allclose(model(other_ids, lengths)[valid], logits[valid], rtol=1e-12)
    pred = model.predict(ids, lengths)
    assert (pred[~valid] == -1).all() and (pred[valid] == logits.argmax(axis=2)[valid]).all()
    nll = -(logits - np.log(np.exp(logits).sum(axis=2, keepdims=True)))  # (N, T, C)
    picked = np.take_along_axis(nll, tags[..., None], axis=2)[..., 0]
    assert loss == pytest.approx(picked[valid].mean(), rel=1e-12)
    with pytest.raises(ArgumentError, match="tags"):
        model.loss(ids, lengths, np.where(valid, 3, 0))


def test_cell_names_have_one_table_of_aliases():
    from rnncore.models._base import CELL_ALIASES, CELLS
    from rnncore.nn._base import GATES

    assert set(CELLS) == set(GATES)  # the configs name the kernels' modes
    assert CELL_ALIASES == {
        "rnn": "rnn_tanh",
        "lstm-cifg": "lstm_cifg",
        "lstm-peephole": "lstm_peephole",
        "lstm-ln": "lstm_ln",
        "gru-reset-before": "gru_reset_before",
        "gru-ln": "gru_ln",
        "rnn-tanh": "rnn_tanh",
        "rnn-relu": "rnn_relu",
    }
    for alias, cell in CELL_ALIASES.items():
        assert LMConfig(vocab_size=3, cell=alias).cell == cell
        assert LMConfig(vocab_size=3, cell=cell).cell == cell
    with pytest.raises(ArgumentError, match=r"cell must be one of .*'rnn'"):
        LMConfig(vocab_size=3, cell="tanh")
