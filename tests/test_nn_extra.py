"""Linear, Embedding, Dropout and the softmax cross-entropy of rnncore.nn.

Values and gradients against central finite differences (float64), against
torch.nn when torch is installed (same weights, same upstream gradients), and
against plain NumPy restatements; plus initialisation, state dicts, modes,
gradient accumulation and bad arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient

from rnncore import nn
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError, StateError
from rnncore.nn.functional import log_softmax, softmax, softmax_cross_entropy

TOL = {"rtol": 1e-6, "atol": 1e-8}


# ------------------------------------------------------------------ Linear


@pytest.mark.parametrize("lead", [(), (4,), (3, 2)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(lead, bias, rng):
    layer = nn.Linear(5, 3, bias=bias, dtype=np.float64, seed=0)
    x = rng.standard_normal((*lead, 5))
    r = rng.standard_normal((*lead, 3))  # upstream gradient
    y = layer(x)
    assert y.shape == (*lead, 3)
    np.testing.assert_allclose(y, x @ layer.weight.T + (layer.bias if bias else 0), rtol=1e-14)
    dx = layer.backward(r)

    def loss():
        return float(np.sum(layer(x) * r))

    np.testing.assert_allclose(dx, numeric_gradient(loss, x), **TOL)
    assert list(layer.grads) == (["weight", "bias"] if bias else ["weight"])
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(layer.grads[name], numeric_gradient(loss, p), **TOL)


def test_linear_init_accumulation_and_dtype(rng):
    a, b = nn.Linear(16, 8, seed=3), nn.Linear(16, 8, seed=3)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert a.weight.dtype == np.float32 and a.bias.shape == (8,)
    assert np.abs(a.weight).max() <= 0.25 and np.abs(a.weight).max() > 0.2  # U(-1/4, 1/4)
    assert nn.Linear(3, 2, bias=False).bias is None
    x = rng.standard_normal((5, 16)).astype(np.float32)
    d = rng.standard_normal((5, 8)).astype(np.float32)
    a(x)
    assert a.backward(d).dtype == np.float32
    once = a.grads["weight"].copy()
    a.backward(d)
    np.testing.assert_allclose(a.grads["weight"], 2 * once, rtol=1e-6)
    a.zero_grad()
    assert not a.grads["weight"].any() and not a.grads["bias"].any()


def test_linear_matches_torch(rng):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(6, 4, dtype=torch.float64)
    ours = nn.Linear(6, 4, dtype=np.float64, seed=0)
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    x = rng.standard_normal((2, 3, 6))
    r = rng.standard_normal((2, 3, 4))
    x_t = torch.tensor(x, requires_grad=True)
    y_t = theirs(x_t)
    (y_t * torch.tensor(r)).sum().backward()

    def close(a, b):  # 1e-13 of each array's scale: sums of 4-6 products whose
        # order differs between torch's and NumPy's kernels can cancel in one entry
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13 * np.abs(b).max())

    close(ours(x), y_t.detach().numpy())
    close(ours.backward(r), x_t.grad.numpy())
    for name, p in theirs.named_parameters():
        close(ours.grads[name], p.grad.numpy())


def test_linear_errors(rng):
    layer = nn.Linear(4, 2, seed=0)
    with pytest.raises(StateError, match="forward"):
        layer.backward(np.zeros((1, 2), np.float32))
    with pytest.raises(DTypeError, match="x"):
        layer(np.zeros((3, 4)))
    with pytest.raises(ShapeError, match="in_features=4"):
        layer(np.zeros((3, 5), np.float32))
    with pytest.raises(NonFiniteError, match="x"):
        layer(np.full((1, 4), np.nan, np.float32))
    layer(np.zeros((3, 4), np.float32))
    with pytest.raises(ShapeError, match="d_out"):
        layer.backward(np.zeros((2, 2), np.float32))
    with pytest.raises(ArgumentError, match="in_features"):
        nn.Linear(0, 2)
    with pytest.raises(ShapeError, match="weight"):
        layer.weight = np.zeros((4, 2))


# ------------------------------------------------------------------ Embedding


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 2, 3)])
def test_embedding_forward_and_scatter(shape, rng):
    emb = nn.Embedding(5, 3, dtype=np.float64, seed=0)
    ids = rng.integers(0, 5, shape)  # with repeats
    out = emb(ids)
    assert out.shape == (*shape, 3)
    np.testing.assert_array_equal(out, emb.weight[ids])
    d = rng.standard_normal((*shape, 3))
    assert emb.backward(d) is None
    onehot = np.eye(5)[ids.reshape(-1)]  # (M, V)
    np.testing.assert_allclose(emb.grads["weight"], onehot.T @ d.reshape(-1, 3), rtol=1e-13)

    def loss():
        return float(np.sum(emb(ids) * d))

    emb.zero_grad()
    emb(ids)
    emb.backward(d)
    np.testing.assert_allclose(emb.grads["weight"], numeric_gradient(loss, emb.weight), **TOL)


def test_embedding_init_and_padding(rng):
    w = nn.Embedding(2000, 50, seed=1).weight
    assert w.dtype == np.float32 and abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01  # N(0, 1)
    emb = nn.Embedding(4, 2, padding_idx=1, seed=0)
    assert not emb.weight[1].any()
    emb(np.array([1, 1, 2]))
    emb.backward(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(emb.grads["weight"], [[0, 0], [0, 0], [1, 1], [0, 0]])


def test_embedding_matches_torch(rng):
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(6, 3, padding_idx=2, dtype=torch.float64)
    ours = nn.Embedding(6, 3, padding_idx=2, dtype=np.float64, seed=0)
    ours.load_state_dict(theirs.state_dict())
    ids = rng.integers(0, 6, (4, 5))
    d = rng.standard_normal((4, 5, 3))
    out_t = theirs(torch.tensor(ids))
    (out_t * torch.tensor(d)).sum().backward()
    np.testing.assert_array_equal(ours(ids), out_t.detach().numpy())
    ours.backward(d)
    np.testing.assert_allclose(ours.grads["weight"], theirs.weight.grad.numpy(), rtol=1e-13)


def test_embedding_errors():
    emb = nn.Embedding(5, 2, seed=0)
    with pytest.raises(ArgumentError, match=r"ids must lie in 0\.\.4, got 5"):
        emb(np.array([0, 5]))
    with pytest.raises(ArgumentError, match="ids"):
        emb(np.array([-1]))
    with pytest.raises(DTypeError, match="ids"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(DTypeError, match="ids"):
        emb(np.array([True]))
    with pytest.raises(StateError, match="forward"):
        emb.backward(np.zeros((1, 2), np.float32))
    emb(np.array([[1, 2]]))
    with pytest.raises(ShapeError, match="d_out"):
        emb.backward(np.zeros((3, 2), np.float32))
    with pytest.raises(ArgumentError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)


# ------------------------------------------------------------------ Dropout


def test_dropout_train_and_eval(rng):
    drop = nn.Dropout(0.25, dtype=np.float64, seed=0)
    x = rng.standard_normal((200, 100))
    y = drop(x)
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / 0.75, rtol=1e-15)
    d = rng.standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(d), np.where(kept, d / 0.75, 0), rtol=1e-15)
    drop.eval()
    assert drop(x) is x and drop.backward(d) is d
    assert nn.Dropout(0.0, dtype=np.float64).train()(x) is x
    a, b = nn.Dropout(0.5, seed=4), nn.Dropout(0.5, seed=4)
    x32 = np.ones((10, 10), np.float32)
    np.testing.assert_array_equal(a(x32), b(x32))
    assert a(x32).dtype == np.float32
    assert not np.array_equal(a(x32), a(x32))  # a fresh mask per call


def test_dropout_errors():
    with pytest.raises(ArgumentError, match="p"):
        nn.Dropout(1.0)
    drop = nn.Dropout(0.5)
    with pytest.raises(StateError):
        drop.backward(np.zeros(3, np.float32))
    drop(np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match="d_out"):
        drop.backward(np.zeros(4, np.float32))


# ------------------------------------------------------------------ cross-entropy


def naive_cross_entropy(logits, targets, weights):
    """Sum of ``-w log softmax`` in float64 from the definition, and its normaliser."""
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    nll = -np.log(p[np.arange(len(targets)), targets])
    return float(np.sum(weights * nll)), float(np.sum(weights))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_value_and_gradient(reduction, rng):
    M, V = 6, 5
    logits = rng.standard_normal((M, V))
    targets = rng.integers(0, V, M)
    mask = np.array([1, 0, 1, 1, 0, 1], bool)
    targets[1] = 99  # masked: never read
    loss, d = softmax_cross_entropy(logits, targets, mask=mask, reduction=reduction)
    total, count = naive_cross_entropy(logits, np.where(mask, targets, 0), mask)
    assert loss == pytest.approx(total / count if reduction == "mean" else total, rel=1e-13)

    def f():
        return softmax_cross_entropy(logits, targets, mask=mask, reduction=reduction)[0]

    np.testing.assert_allclose(d, numeric_gradient(f, logits), **TOL)
    assert not d[~mask].any()


def test_cross_entropy_weights_and_ignore_index(rng):
    logits = rng.standard_normal((5, 4))
    targets = np.array([0, 3, -100, 2, 1])
    w = np.array([0.5, 2.0, 1.0, 0.0, 1.0])
    loss, d = softmax_cross_entropy(logits, targets, mask=w, ignore_index=-100)
    counted = w * (targets != -100)
    total, count = naive_cross_entropy(logits, np.maximum(targets, 0), counted)
    assert loss == pytest.approx(total / count, rel=1e-13)
    assert not d[2].any() and not d[3].any()
    loss, d = softmax_cross_entropy(logits, targets, mask=np.zeros(5))
    assert loss == 0.0 and not d.any()  # nothing counted


def test_cross_entropy_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = rng.standard_normal((8, 6)) * 3
    targets = rng.integers(0, 6, 8)
    targets[[2, 5]] = -1
    for reduction in ("mean", "sum"):
        t = torch.tensor(logits, requires_grad=True)
        ref = F.cross_entropy(t, torch.tensor(targets), ignore_index=-1, reduction=reduction)
        ref.backward()
        loss, d = softmax_cross_entropy(logits, targets, ignore_index=-1, reduction=reduction)
        assert loss == pytest.approx(ref.item(), rel=1e-13)
        np.testing.assert_allclose(d, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(
        log_softmax(logits), F.log_softmax(torch.tensor(logits), dim=-1).numpy(), rtol=1e-13
    )


def test_cross_entropy_is_stable_and_keeps_dtype():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 1e4]], np.float32)
    loss, d = softmax_cross_entropy(logits, np.array([0, 1]))
    assert loss == pytest.approx(np.log(2) / 2, rel=1e-6)
    assert d.dtype == np.float32 and np.isfinite(d).all()
    np.testing.assert_allclose(d, [[0, 0, 0], [0, -0.25, 0.25]], atol=1e-7)
    lp = log_softmax(logits)
    assert lp.dtype == np.float32 and np.isfinite(lp).all()
    np.testing.assert_allclose(softmax(logits).sum(axis=-1), 1, rtol=1e-6)
    loss, d = softmax_cross_entropy(np.array([[np.nan, 0.0]]), np.array([0]))
    assert np.isnan(loss)  # reported, not raised: the guard's business
    logits = np.array([[np.nan, 0.0], [1.0, 2.0]])  # a masked row may hold anything
    loss, d = softmax_cross_entropy(logits, np.array([0, 1]), mask=np.array([False, True]))
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)), rel=1e-14)
    assert not d[0].any() and np.isfinite(d).all()


def test_cross_entropy_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ArgumentError, match=r"targets must lie in 0\.\.3"):
        softmax_cross_entropy(x, np.array([0, 4, 1]))
    with pytest.raises(DTypeError, match="targets"):
        softmax_cross_entropy(x, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ShapeError, match="targets"):
        softmax_cross_entropy(x, np.array([0, 1]))
    with pytest.raises(ShapeError, match="logits"):
        softmax_cross_entropy(np.zeros((3, 4, 1)), np.array([0, 1, 2]))
    with pytest.raises(DTypeError, match="logits"):
        softmax_cross_entropy(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))
    with pytest.raises(ShapeError, match="mask"):
        softmax_cross_entropy(x, np.array([0, 1, 2]), mask=np.ones(2))
    with pytest.raises(NonFiniteError, match="mask"):
        softmax_cross_entropy(x, np.array([0, 1, 2]), mask=np.array([1, np.nan, 1]))
    with pytest.raises(ArgumentError, match="mask"):
        softmax_cross_entropy(x, np.array([0, 1, 2]), mask=np.array([1, -1, 1]))
    with pytest.raises(ArgumentError, match="reduction"):
        softmax_cross_entropy(x, np.array([0, 1, 2]), reduction="none")


def test_softmax_cross_entropy_layer(rng):
    ce = nn.SoftmaxCrossEntropy(ignore_index=0, reduction="sum")
    logits = rng.standard_normal((4, 3))
    targets = np.array([0, 1, 2, 1])
    with pytest.raises(StateError):
        ce.backward()
    loss = ce(logits, targets)
    expected, d = softmax_cross_entropy(logits, targets, ignore_index=0, reduction="sum")
    assert loss == expected
    np.testing.assert_array_equal(ce.backward(), d)
    np.testing.assert_allclose(ce.backward(0.5), d / 2, rtol=1e-15)
