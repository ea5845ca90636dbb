"""``rnncore.models.Captioner``: gradients against finite differences for both ways
of conditioning, learning captions that are a function of the features, errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.models import Captioner, CaptionerConfig
from rnncore.optim import Adam, clip_grad_norm_

BOS, EOS = 1, 2
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
LETTERS = sorted(set("".join(NAMES)))


def captions(labels):
    """``(tgt (N, T), tgt_lengths)``: each label's name, letter ids from 3."""
    rows = [[BOS, *(3 + LETTERS.index(c) for c in NAMES[k]), EOS] for k in labels]
    T = max(len(r) for r in rows)
    tgt = np.zeros((len(rows), T), np.int64)
    for i, r in enumerate(rows):
        tgt[i, : len(r)] = r
    return tgt, np.array([len(r) for r in rows])


@pytest.mark.parametrize("condition", ["init", "input"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gradients_match_finite_differences(condition, cell, rng):
    cfg = CaptionerConfig(
        vocab_size=3 + len(LETTERS), feature_size=4, condition=condition, cell=cell,
        embedding_dim=3, hidden_size=5, num_layers=2, dtype="float64",
    )  # fmt: skip
    m = Captioner(cfg)
    features = rng.standard_normal((3, 4))
    tgt, lens = captions([1, 2, 7])
    m.zero_grad()
    m.loss(features, tgt, lens)
    m.backward()
    for name, p in m.named_parameters():
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            plus = m.loss(features, tgt, lens)
            p[idx] = old - 1e-6
            minus = m.loss(features, tgt, lens)
            p[idx] = old
            numeric = (plus - minus) / 2e-6
            assert abs(m.grads[name][idx] - numeric) < 1e-8 + 1e-6 * abs(numeric), name


@pytest.mark.parametrize("condition", ["init", "input"])
def test_learns_captions_that_are_a_function_of_the_features(condition):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 8))
    cfg = CaptionerConfig(
        vocab_size=3 + len(LETTERS), feature_size=8, condition=condition,
        embedding_dim=16, hidden_size=32, seed=0,
    )  # fmt: skip
    m = Captioner(cfg)
    opt = Adam(dict(m.named_parameters()), lr=0.01)
    for _ in range(150):
        labels = rng.integers(0, 10, 32)
        features = (centres[labels] + 0.1 * rng.standard_normal((32, 8))).astype(np.float32)
        tgt, lens = captions(labels)
        m.zero_grad()
        m.loss(features, tgt, lens)
        m.backward()
        clip_grad_norm_(m.grads, 5.0)
        opt.step(m.grads)
    labels = rng.integers(0, 10, 100)
    features = (centres[labels] + 0.1 * rng.standard_normal((100, 8))).astype(np.float32)
    outputs = m.greedy(features, max_length=8)
    words = ["".join(LETTERS[i - 3] for i in out if i >= 3) for out in outputs]
    assert np.mean([w == NAMES[k] for w, k in zip(words, labels)]) >= 0.95


def test_bad_input_raises_named_errors(rng):
    m = Captioner(CaptionerConfig(vocab_size=20, feature_size=4))
    tgt, lens = captions([1, 2])
    with pytest.raises(ShapeError, match="features"):
        m.loss(np.zeros((2, 5), np.float32), tgt, lens)
    with pytest.raises(ShapeError, match="tgt"):
        m.loss(np.zeros((3, 4), np.float32), tgt, lens)
    with pytest.raises(StateError):
        m.backward()
    with pytest.raises(ArgumentError, match="condition"):
        CaptionerConfig(vocab_size=20, feature_size=4, condition="both")
