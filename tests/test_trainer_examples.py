"""One Trainer for every model: batches of independent examples (ExampleBatcher),
validation, keep-best, test score, checkpoints of every model kind, exact resume,
and the scheduled-sampling schedule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnncore.checkpoint import load_checkpoint, load_model
from rnncore.data import (
    ExampleBatcher,
    PairVocabs,
    collate_captions,
    collate_labelled,
    collate_pairs,
    collate_tagged,
    date_pairs,
)
from rnncore.errors import ArgumentError, CheckpointError
from rnncore.models import (
    Captioner,
    CaptionerConfig,
    ClassifierConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceTagger,
    TaggerConfig,
)
from rnncore.optim import SamplingSchedule, create
from rnncore.train import TrainConfig, Trainer

PAIRS = date_pairs(240, seed=5)
VOCABS = PairVocabs.from_pairs(PAIRS)
ENCODED, UNKNOWN = VOCABS.encode(PAIRS)


def _run(model, examples, collate, out=None, lengths=None, **cfg):
    batcher = ExampleBatcher(examples, collate, 16, lengths=lengths, split=(0.8, 0.1, 0.1), seed=2)
    settings = {"max_epochs": None, "eval_every": 4, "progress": False, "plot": False, **cfg}
    if out is not None:
        settings["out_dir"] = str(out)
    optimizer = create("adam", dict(model.named_parameters()), lr=3e-3)
    return Trainer(model, optimizer, batcher, TrainConfig(**settings))


def _seq2seq(seed=0):
    config = Seq2SeqConfig(
        vocab_size=len(VOCABS.source),
        tgt_vocab_size=len(VOCABS.target),
        embedding_dim=8,
        hidden_size=12,
        dtype="float64",
        seed=seed,
    )
    return Seq2Seq(config)


def _pairs_trainer(out=None, seed=0, **cfg):
    lengths = [len(s) for s, _ in ENCODED]
    batcher = ExampleBatcher(ENCODED, collate_pairs, 16, lengths=lengths, seed=2)
    model = _seq2seq(seed)
    optimizer = create("adam", dict(model.named_parameters()), lr=3e-3)
    settings = {"max_epochs": None, "eval_every": 5, "progress": False, "plot": False, **cfg}
    if out is not None:
        settings["out_dir"] = str(out)
    return Trainer(model, optimizer, batcher, TrainConfig(**settings), vocab=VOCABS)


def test_the_batcher_splits_by_seed_and_covers_every_training_example_once_per_epoch():
    lengths = np.array([len(s) for s, _ in ENCODED])
    a = ExampleBatcher(ENCODED, collate_pairs, 16, lengths=lengths, seed=3)
    b = ExampleBatcher(ENCODED, collate_pairs, 16, lengths=lengths, seed=3)
    assert [a.part_size(s) for s in ("train", "val", "test")] == [216, 12, 12]
    for split in ("val", "test"):
        assert np.array_equal(a._parts[split], b._parts[split])
    seen = []
    for _ in range(a.num_chunks("train")):
        batch = a.next_batch()
        src, s_lens, _, t_lens = batch.args
        assert batch.symbols == int((t_lens - 1).sum())
        assert s_lens.max() - s_lens.min() <= 40  # bucketed: similar lengths together
        seen.extend(src[r, : s_lens[r]].tolist() for r in range(len(src)))
    assert a.epoch == 1 and a.position == 0
    train = sorted(list(ENCODED[i][0]) for i in a._parts["train"])
    assert sorted(seen) == train
    c = ExampleBatcher(ENCODED, collate_pairs, 16, lengths=lengths, seed=4)
    assert not np.array_equal(c._parts["val"], a._parts["val"])


def test_the_batcher_position_resumes_and_refuses_other_data():
    a = ExampleBatcher(ENCODED, collate_pairs, 8, seed=1)
    for _ in range(a.num_chunks("train") + 3):
        a.next_batch()
    b = ExampleBatcher(ENCODED, collate_pairs, 8, seed=1)
    b.load_state_dict(a.state_dict())
    x, y = a.next_batch(), b.next_batch()
    assert (x.epoch, x.index) == (y.epoch, y.index) == (1, 3)
    for u, v in zip(x.args, y.args):
        np.testing.assert_array_equal(u, v)
    other = ExampleBatcher(ENCODED[:-1], collate_pairs, 8, seed=1)
    assert not other.compatible(a.state_dict())
    with pytest.raises(ArgumentError, match="other data"):
        other.load_state_dict(a.state_dict())
    with pytest.raises(ArgumentError, match="batch_size"):
        ExampleBatcher(ENCODED, collate_pairs, 0)
    with pytest.raises(ArgumentError, match="at least one example"):
        ExampleBatcher([], collate_pairs, 4)


def test_seq2seq_trains_validates_keeps_the_best_and_scores_the_test_part(tmp_path):
    trainer = _pairs_trainer(tmp_path / "run", max_steps=12)
    first = trainer.evaluate("val")
    result = trainer.fit()
    assert result.stop_reason == "max_steps" and result.steps == 12
    assert result.final_val_loss < first  # it learns
    assert result.test_loss is not None and math.isfinite(result.test_loss)
    model, vocab, ckpt = load_model(tmp_path / "run" / "best")
    assert isinstance(model, Seq2Seq) and vocab == VOCABS
    assert ckpt.state["model_kind"] == "seq2seq"
    src, s_lens, tgt, t_lens = collate_pairs(ENCODED[:5])[0]
    trainer.model.eval()
    if result.best_val_loss == result.final_val_loss:
        assert model.loss(src, s_lens, tgt, t_lens) == trainer.model.loss(src, s_lens, tgt, t_lens)


def test_seq2seq_resume_continues_bit_for_bit(tmp_path):
    straight = _pairs_trainer(tmp_path / "a", max_steps=20)
    straight.fit()
    first = _pairs_trainer(tmp_path / "b", max_steps=9)
    first.fit()
    second = _pairs_trainer(tmp_path / "b", max_steps=20, seed=7)
    assert second.restore(load_checkpoint(tmp_path / "b" / "latest")) is True
    second.fit()
    for k, v in straight.model.state_dict().items():
        np.testing.assert_array_equal(v, second.model.state_dict()[k], err_msg=k)
    assert straight.checkpoint().state["trainer"] == second.checkpoint().state["trainer"]


@pytest.mark.parametrize("kind", ["classifier", "tagger", "captioner"])
def test_every_model_kind_trains_and_loads_from_its_checkpoint(tmp_path, kind):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 6, rng.integers(2, 9)).tolist() for _ in range(80)]
    if kind == "classifier":
        model = SequenceClassifier(ClassifierConfig(vocab_size=6, num_classes=2, hidden_size=8))
        examples, collate = [(s, int(s[0] % 2)) for s in seqs], collate_labelled
    elif kind == "tagger":
        model = SequenceTagger(TaggerConfig(vocab_size=6, num_tags=3, hidden_size=8))
        examples, collate = [(s, [x % 3 for x in s]) for s in seqs], collate_tagged
    else:
        config = CaptionerConfig(vocab_size=9, feature_size=4, hidden_size=8, embedding_dim=6)
        model = Captioner(config)
        examples = [
            (rng.standard_normal(4).astype(np.float32), [3 + x % 6 for x in s]) for s in seqs
        ]
        collate = collate_captions
    lengths = [len(e[1]) if kind == "captioner" else len(e[0]) for e in examples]
    trainer = _run(model, examples, collate, tmp_path / "run", lengths=lengths, max_steps=8)
    result = trainer.fit()
    assert result.steps == 8 and result.best_val_loss is not None
    loaded, vocab, _ = load_model(tmp_path / "run" / "latest")
    assert type(loaded) is type(model) and vocab is None
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v, err_msg=k)
    args = collate(examples[:4])[0]
    model.eval()
    assert loaded.loss(*args) == model.loss(*args)


def test_a_checkpoint_of_an_unknown_kind_or_mismatched_sizes_is_refused(tmp_path):
    trainer = _pairs_trainer(tmp_path / "run", max_steps=2)
    trainer.fit()
    path = tmp_path / "run" / "latest"

    def edit(change):
        ckpt = load_checkpoint(path)
        change(ckpt.state)
        from rnncore.checkpoint import save_checkpoint

        save_checkpoint(path, ckpt)

    edit(lambda s: s["model_config"].update(hidden_size=100000))
    with pytest.raises(CheckpointError, match=r"bridge\.weight .*needs float64 \(100000"):
        load_model(path)
    edit(lambda s: s["model_config"].update(hidden_size=12, num_layers=10**9))
    with pytest.raises(CheckpointError, match="needs 1000000000 layers"):
        load_model(path)
    edit(lambda s: (s["model_config"].update(num_layers=1), s.update(model_kind="gpt")))
    with pytest.raises(CheckpointError, match="unknown model_kind 'gpt'"):
        load_model(path)
    edit(lambda s: s.update(model_kind="seq2seq", vocab={"kind": "char", "symbols": ["a"]}))
    with pytest.raises(CheckpointError, match="invalid vocabulary"):
        load_model(path)
    target = VOCABS.to_dict()
    target["target"]["symbols"] = target["target"]["symbols"][:-1]
    edit(lambda s: s.update(vocab=target))
    with pytest.raises(CheckpointError, match="the target vocabulary has"):
        load_model(path)


def test_the_sampling_schedules_follow_their_formulas():
    lin = SamplingSchedule("linear", 100.0, floor=0.2)
    assert lin.teacher_prob(0) == 1.0 and lin.teacher_prob(50) == 0.5
    assert lin.teacher_prob(90) == 0.2 and lin.sampling_prob(50) == 0.5
    exp = SamplingSchedule("exponential", 0.99)
    assert exp.teacher_prob(10) == pytest.approx(0.99**10)
    sig = SamplingSchedule("inverse_sigmoid", 10.0)
    assert sig.teacher_prob(0) == pytest.approx(10 / 11)
    assert sig.teacher_prob(10**9) < 1e-300  # no overflow
    values = [sig.teacher_prob(i) for i in range(0, 200, 10)]
    assert values == sorted(values, reverse=True)
    for bad in [("linear", 0.0), ("exponential", 1.0), ("inverse_sigmoid", 0.5), ("cubic", 1.0)]:
        with pytest.raises(ArgumentError):
            SamplingSchedule(*bad)
    with pytest.raises(ArgumentError, match="sampling_k"):
        TrainConfig(sampling_decay="linear")
    with pytest.raises(ArgumentError, match="need a sampling_decay"):
        TrainConfig(sampling_k=3.0)


def test_scheduled_sampling_needs_a_model_that_samples():
    model = SequenceClassifier(ClassifierConfig(vocab_size=6, num_classes=2, hidden_size=8))
    batcher = ExampleBatcher([([1, 2], 0), ([3], 1)] * 10, collate_labelled, 4)
    optimizer = create("adam", dict(model.named_parameters()), lr=1e-3)
    config = TrainConfig(max_steps=2, sampling_decay="linear", sampling_k=10.0, progress=False)
    with pytest.raises(ArgumentError, match="scheduled sampling is for attention decoders"):
        Trainer(model, optimizer, batcher, config)
    plain = Seq2Seq(Seq2SeqConfig(vocab_size=5, tgt_vocab_size=5, attention="none"))
    optimizer = create("adam", dict(plain.named_parameters()), lr=1e-3)
    with pytest.raises(ArgumentError, match="a Seq2Seq on a ExampleBatcher has none"):
        Trainer(plain, optimizer, batcher, config)


def test_a_scheduled_sampling_run_repeats_and_resumes_bit_for_bit(tmp_path):
    decay = {"sampling_decay": "linear", "sampling_k": 12.0, "sampling_floor": 0.1}
    a = _pairs_trainer(tmp_path / "a", max_steps=14, **decay)
    seen = []
    loss = a.model.loss
    a.model.loss = lambda *args, **kw: (seen.append(kw.get("sampling_prob")), loss(*args, **kw))[1]
    a.fit()
    train_calls = [p for p in seen if p is not None]
    assert train_calls == [pytest.approx(min(0.9, i / 12.0)) for i in range(14)]
    b = _pairs_trainer(tmp_path / "b", max_steps=14, **decay)
    b.fit()
    for k, v in a.model.state_dict().items():
        np.testing.assert_array_equal(v, b.model.state_dict()[k], err_msg=k)
    teacher = _pairs_trainer(max_steps=14)
    teacher.fit()
    assert not np.array_equal(
        teacher.model.state_dict()["head.weight"], b.model.state_dict()["head.weight"]
    )
    first = _pairs_trainer(tmp_path / "c", max_steps=6, **decay)
    first.fit()
    second = _pairs_trainer(tmp_path / "c", max_steps=14, seed=3, **decay)
    assert second.restore(load_checkpoint(tmp_path / "c" / "latest"))
    second.fit()
    for k, v in b.model.state_dict().items():
        np.testing.assert_array_equal(v, second.model.state_dict()[k], err_msg=k)
