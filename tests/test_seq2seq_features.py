"""Seq2Seq on float source features (N, S, D): gradients, decoding, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from test_models import check_model_gradients

from rnncore.checkpoint import load_model
from rnncore.data import ExampleBatcher
from rnncore.decode.seq2seq import translate, translate_batch
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer


def model(attention="additive", **kw):
    cfg = Seq2SeqConfig(
        vocab_size=0, input_size=3, tgt_vocab_size=6, embedding_dim=4, hidden_size=5,
        attention=attention, dtype="float64", seed=1, **kw,
    )  # fmt: skip
    return Seq2Seq(cfg)


@pytest.mark.parametrize("attention", ["additive", "none"])
def test_gradients_on_features(attention, rng):
    m = model(attention)
    src, s_lens = rng.standard_normal((2, 4, 3)), np.array([4, 2])
    tgt, t_lens = np.array([[1, 3, 4, 2], [1, 5, 2, 0]]), np.array([4, 3])
    check_model_gradients(m, lambda: m.loss(src, s_lens, tgt, t_lens))
    assert "src_embedding" not in m._layers


def test_decoding_features_batched_and_alone(rng):
    m = model()
    sources = [rng.standard_normal((n, 3)) for n in (4, 1, 3)]
    together = translate_batch(m, sources, beam_size=3, max_length=5)
    for src, got in zip(sources, together):
        assert [h.ids for h in got] == [h.ids for h in translate(m, src, beam_size=3, max_length=5)]
    padded = np.zeros((3, 4, 3))
    for r, s in enumerate(sources):
        padded[r, : len(s)] = s
    greedy, _ = m.greedy(padded, np.array([4, 1, 3]), max_length=5)
    for src, out in zip(sources, greedy):
        (best,) = translate(m, src, beam_size=1, max_length=5)
        assert (best.ids[:-1] if best.ids[-1:] == [2] else best.ids) == out
    with pytest.raises(ShapeError, match=r"src must be \(N, S, 3\)"):
        m.loss(np.zeros((2, 4, 2)), None, np.array([[1, 2], [1, 2]]))
    with pytest.raises(ArgumentError, match=r"\(S, D\) features"):
        translate(m, np.zeros(4))
    with pytest.raises(ArgumentError, match="vocab_size must be 0"):
        Seq2SeqConfig(vocab_size=5, input_size=3, tgt_vocab_size=6)


def test_a_feature_model_trains_and_reloads(tmp_path):
    """Frames -> the sign pattern of their first feature, through the Trainer."""
    rng = np.random.default_rng(0)
    examples = []
    for _ in range(120):
        x = rng.standard_normal((int(rng.integers(2, 6)), 3)).astype(np.float32)
        examples.append((x, [3 + int(v > 0) for v in x[:, 0]]))

    def collate(batch):
        S = max(len(x) for x, _ in batch)
        src = np.zeros((len(batch), S, 3), np.float32)
        for r, (x, _) in enumerate(batch):
            src[r, : len(x)] = x
        s_lens = np.array([len(x) for x, _ in batch])
        t_lens = np.array([len(y) + 2 for _, y in batch])
        tgt = np.zeros((len(batch), t_lens.max()), np.int64)
        for r, (_, y) in enumerate(batch):
            tgt[r, : t_lens[r]] = [1, *y, 2]
        return (src, s_lens, tgt, t_lens), int((t_lens - 1).sum())

    cfg = Seq2SeqConfig(
        vocab_size=0, input_size=3, tgt_vocab_size=5, hidden_size=16, embedding_dim=8
    )
    m = Seq2Seq(cfg)
    batcher = ExampleBatcher(examples, collate, 16, lengths=[len(x) for x, _ in examples])
    optimizer = create("adam", dict(m.named_parameters()), lr=1e-2)
    config = TrainConfig(
        max_steps=60, eval_every=20, progress=False, plot=False, out_dir=str(tmp_path)
    )
    trainer = Trainer(m, optimizer, batcher, config)
    before = trainer.evaluate("val")
    assert trainer.fit().final_val_loss < 0.5 * before
    loaded, vocab, _ = load_model(tmp_path / "latest")
    assert isinstance(loaded, Seq2Seq) and loaded.config.input_size == 3 and vocab is None
    args = collate(examples[:4])[0]
    assert loaded.loss(*args) == m.eval().loss(*args)
