"""Float feature sequences (N, T, D) instead of token ids, and the masked MSE
objective of the tagger: gradients, masks, errors, training and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from test_models import check_model_gradients

from rnncore.checkpoint import load_model
from rnncore.data import ExampleBatcher
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError
from rnncore.models import ClassifierConfig, SequenceClassifier, SequenceTagger, TaggerConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer


def tagger(backend=None, **kw):
    kw = {"hidden_size": 3, "dtype": "float64", "seed": 1, "cell": "lstm", **kw}
    return SequenceTagger(TaggerConfig(vocab_size=0, input_size=4, **kw), backend=backend)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_mse_tagger_on_features_gradients(bidirectional, backend, rng):
    model = tagger(backend, num_tags=2, objective="mse", bidirectional=bidirectional)
    x, lengths = rng.standard_normal((3, 5, 4)), np.array([5, 2, 4])
    y = rng.standard_normal((3, 5, 2))
    check_model_gradients(model, lambda: model.loss(x, lengths, y))


def test_classifier_on_features_gradients(backend, rng):
    config = ClassifierConfig(
        vocab_size=0, input_size=4, num_classes=3, hidden_size=3, dtype="float64", cell="gru"
    )
    model = SequenceClassifier(config, backend=backend)
    x, lengths, labels = rng.standard_normal((3, 4, 4)), np.array([4, 1, 3]), np.array([2, 0, 1])
    check_model_gradients(model, lambda: model.loss(x, lengths, labels))
    assert "embedding" not in dict(model._layers)


def test_the_mse_is_the_masked_mean_and_padding_is_never_read(rng):
    model = tagger(num_tags=2, objective="mse").eval()
    x, lengths = rng.standard_normal((2, 4, 4)), np.array([4, 2])
    y = rng.standard_normal((2, 4, 2))
    out = model.predict(x, lengths)  # (N, T, C)
    assert out.shape == (2, 4, 2) and (out[1, 2:] == 0).all()
    want = (((out - y) ** 2)[0].sum() + ((out - y) ** 2)[1, :2].sum()) / (6 * 2)
    y_nan = y.copy()
    y_nan[1, 2:] = np.nan  # padded targets are not read
    x_pad = x.copy()
    x_pad[1, 2:] = 1e3  # nor padded features
    assert model.loss(x_pad, lengths, y_nan) == pytest.approx(want, rel=1e-12)
    assert model.loss(x, lengths, y) == pytest.approx(want, rel=1e-12)


def test_feature_misuse_is_named(rng):
    model = tagger(num_tags=2, objective="mse")
    with pytest.raises(ShapeError, match=r"x must be \(N, T, 4\)"):
        model.loss(rng.standard_normal((2, 3, 5)), None, rng.standard_normal((2, 3, 2)))
    with pytest.raises(DTypeError, match="x has dtype float32"):
        model.loss(np.zeros((2, 3, 4), np.float32), None, np.zeros((2, 3, 2)))
    with pytest.raises(ShapeError, match="targets"):
        model.loss(np.zeros((2, 3, 4)), None, np.zeros((2, 3)))
    bad = np.zeros((2, 3, 4))
    bad[0, 1, 2] = np.inf
    with pytest.raises(NonFiniteError, match="x"):
        model.loss(bad, None, np.zeros((2, 3, 2)))
    with pytest.raises(ArgumentError, match="vocab_size must be 0 with input_size=4"):
        TaggerConfig(vocab_size=5, num_tags=2, input_size=4)
    with pytest.raises(ArgumentError, match="objective"):
        TaggerConfig(vocab_size=5, num_tags=2, objective="l1")


def test_a_feature_tagger_learns_and_reloads_from_its_checkpoint(tmp_path):
    """Frames -> a running sum of their first feature: learnt by the Trainer."""
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(200):
        T = int(rng.integers(3, 9))
        x = rng.standard_normal((T, 4)).astype(np.float32)
        examples.append((x, np.cumsum(x[:, :1], axis=0) * 0.5))

    def collate(batch):
        T = max(len(x) for x, _ in batch)
        x = np.zeros((len(batch), T, 4), np.float32)
        y = np.zeros((len(batch), T, 1), np.float32)
        lengths = np.array([len(e[0]) for e in batch])
        for r, (a, b) in enumerate(batch):
            x[r, : len(a)], y[r, : len(b)] = a, b
        return (x, lengths, y), int(lengths.sum())

    config = TaggerConfig(vocab_size=0, input_size=4, num_tags=1, objective="mse", hidden_size=16)
    model = SequenceTagger(config)
    batcher = ExampleBatcher(examples, collate, 16, lengths=[len(e[0]) for e in examples])
    optimizer = create("adam", dict(model.named_parameters()), lr=1e-2)
    settings = TrainConfig(max_steps=150, eval_every=50, progress=False, plot=False)
    trainer = Trainer(
        model, optimizer, batcher, TrainConfig(**{**settings.__dict__, "out_dir": str(tmp_path)})
    )
    before = trainer.evaluate("val")
    result = trainer.fit()
    assert result.final_val_loss < 0.25 * before
    loaded, vocab, _ = load_model(tmp_path / "latest")
    assert isinstance(loaded, SequenceTagger) and vocab is None
    args = collate(examples[:3])[0]
    assert loaded.loss(*args) == model.eval().loss(*args)
