"""``rnncore.models.Seq2Seq``: gradients of the loss against finite differences, the
compiled kernels against the reference backend, masks, greedy decoding, learning a
small reversal task, and named errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import reference
from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import Adam, clip_grad_norm_

BOS, EOS = 1, 2


def batch(rng, N=3, S=6, T=5, V_src=7, V_tgt=6):
    src = rng.integers(0, V_src, (N, S))
    src_lengths = np.array([S, 3, 1][:N])
    tgt = rng.integers(3, V_tgt, (N, T))
    tgt[:, 0] = BOS
    tgt_lengths = np.array([T, 3, 2][:N])
    return src, src_lengths, tgt, tgt_lengths


def model(cell="lstm", attention="additive", bidirectional=True, **kwargs):
    cfg = Seq2SeqConfig(
        vocab_size=7, tgt_vocab_size=6, cell=cell, embedding_dim=4, hidden_size=5,
        num_layers=2, bidirectional=bidirectional, attention=attention, dtype="float64",
    )  # fmt: skip
    return Seq2Seq(cfg, **kwargs)


@pytest.mark.parametrize(
    ("cell", "attention", "bidirectional"),
    [("lstm", "additive", True), ("gru", "general", True), ("rnn_tanh", "dot", False)],
)
def test_gradients_match_finite_differences(cell, attention, bidirectional, rng):
    m = model(cell, attention, bidirectional)
    args = batch(rng)
    m.zero_grad()
    m.loss(*args)
    m.backward()
    for name, p in m.named_parameters():
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            plus = m.loss(*args)
            p[idx] = old - 1e-6
            minus = m.loss(*args)
            p[idx] = old
            numeric = (plus - minus) / 2e-6
            assert abs(m.grads[name][idx] - numeric) < 1e-8 + 1e-6 * abs(numeric), name


def test_compiled_equals_reference_backend(rng):
    ours, ref = model(), model(backend=reference)
    args = batch(rng)
    losses = []
    for m in (ours, ref):
        m.zero_grad()
        losses.append(m.loss(*args))
        m.backward()
    assert abs(losses[0] - losses[1]) < 1e-12
    for name in ours.grads:
        np.testing.assert_allclose(ours.grads[name], ref.grads[name], rtol=1e-9, atol=1e-12)


def test_padding_is_ignored(rng):
    m = model()
    src, src_lengths, tgt, tgt_lengths = batch(rng)
    loss = m.loss(src, src_lengths, tgt, tgt_lengths)
    src[1, 3:] = 0
    tgt[1, 3:] = 5
    tgt[2, 2:] = 0
    assert m.loss(src, src_lengths, tgt, tgt_lengths) == pytest.approx(loss, abs=1e-14)


def test_greedy_picks_the_argmax_of_its_own_prefix(rng):
    m = model()
    src, src_lengths, _, _ = batch(rng)
    outputs, weights = m.greedy(src, src_lengths, max_length=4)
    assert weights.shape[0] == 3 and weights.shape[2] == src.shape[1]
    assert np.all(weights[1, :, 3:] == 0.0)
    for b, out in enumerate(outputs):
        tgt_in = np.array([[BOS, *out]])
        logits, _ = m.logits(src[b : b + 1, : src_lengths[b]], None, tgt_in)
        choices = logits[0].argmax(axis=1)
        assert choices[: len(out)].tolist() == out
        if len(out) < 4:
            assert choices[len(out)] == EOS


def test_learns_to_reverse_short_sequences():
    cfg = Seq2SeqConfig(vocab_size=8, tgt_vocab_size=8, embedding_dim=16, hidden_size=32, seed=0)
    m = Seq2Seq(cfg)
    opt = Adam(dict(m.named_parameters()), lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(150):
        src = rng.integers(3, 8, (32, 5))
        tgt = np.concatenate([np.full((32, 1), BOS), src[:, ::-1], np.full((32, 1), EOS)], 1)
        m.zero_grad()
        m.loss(src, None, tgt)
        m.backward()
        clip_grad_norm_(m.grads, 5.0)
        opt.step(m.grads)
    src = rng.integers(3, 8, (50, 5))
    outputs, _ = m.greedy(src, max_length=8)
    exact = np.mean([out == row[::-1].tolist() for out, row in zip(outputs, src)])
    assert exact >= 0.9


def test_bad_input_raises_named_errors(rng):
    m = model()
    src, src_lengths, tgt, tgt_lengths = batch(rng)
    with pytest.raises(StateError):
        model().backward()
    with pytest.raises(ShapeError, match="tgt"):
        m.loss(src, src_lengths, tgt[:2], tgt_lengths[:2])
    with pytest.raises(ArgumentError, match="tgt_lengths"):
        m.loss(src, src_lengths, tgt, np.array([5, 1, 2]))
    with pytest.raises(ArgumentError, match="src"):
        m.loss(src + 7, src_lengths, tgt, tgt_lengths)
    with pytest.raises(ArgumentError, match="lengths"):
        m.loss(src, np.array([7, 1, 1]), tgt, tgt_lengths)
    with pytest.raises(ArgumentError, match="dot"):
        Seq2SeqConfig(vocab_size=3, tgt_vocab_size=3, attention="dot")
    with pytest.raises(ArgumentError, match="eos_id"):
        Seq2SeqConfig(vocab_size=3, tgt_vocab_size=2)
