"""Trainer: truncated BPTT, clipping, schedules, guard, validation, exact resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnncore.checkpoint import load_checkpoint, load_model
from rnncore.corpus import default_corpus
from rnncore.data import CharVocab, StreamBatcher, WordVocab, encode_file
from rnncore.decode import sample_text
from rnncore.errors import CheckpointError, NonFiniteError
from rnncore.models import CharLM, LMConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer, read_metrics
from rnncore.train.metrics import COLUMNS
from rnncore.train.plotting import have_matplotlib

TEXT = default_corpus()[:4000]
VOCAB = CharVocab.from_text(TEXT)
IDS = VOCAB.encode(TEXT)


def make_trainer(out=None, ids=IDS, cell="lstm", opt="adam", lr=3e-3, seed=1, **cfg):
    """A tiny model (H=16, 2 layers, dropout) on a few thousand characters."""
    model = CharLM(
        LMConfig(
            vocab_size=len(VOCAB), cell=cell, hidden_size=16, num_layers=2, dropout=0.2, seed=seed
        )
    )
    optimizer = create(opt, dict(model.named_parameters()), lr=lr)
    batcher = StreamBatcher(ids, 4, 16)
    settings = {
        "max_epochs": None,
        "eval_every": 7,
        "progress": False,
        "lr_decay": 0.8,
        "lr_decay_after": 1,
        "out_dir": None if out is None else str(out),
        **cfg,
    }
    return Trainer(model, optimizer, batcher, TrainConfig(**settings), vocab=VOCAB)


def assert_same_run(a: Trainer, b: Trainer) -> None:
    """Weights, optimizer, carried state, position, generator and counters agree bitwise."""
    ca, cb = a.checkpoint(), b.checkpoint()
    for name, tensors in ca.tensor_files().items():
        other = cb.tensor_files()[name]
        assert tensors.keys() == other.keys(), name
        for k in tensors:
            np.testing.assert_array_equal(tensors[k], other[k], err_msg=f"{name}: {k}")
    ta, tb = ca.state["trainer"], cb.state["trainer"]
    assert ta == tb
    assert ca.state["optimizer"] == cb.state["optimizer"]


def metrics_without_speed(path):
    return [{k: v for k, v in r.items() if k != "chars_per_s"} for r in read_metrics(path)]


def test_resume_from_a_checkpoint_continues_bit_for_bit(tmp_path):
    """130 steps straight (2+ epochs, lr decays, dropout on) equal 45 steps,
    a restore into fresh objects from latest/, and 85 more."""
    straight = make_trainer(tmp_path / "a", max_steps=130)
    straight.fit()
    first = make_trainer(tmp_path / "b", max_steps=45)
    assert first.fit().stop_reason == "max_steps"
    second = make_trainer(tmp_path / "b", max_steps=130, seed=5)  # other initial weights
    assert second.restore(load_checkpoint(tmp_path / "b" / "latest")) is True
    assert second.step == 45 and second.state is not None
    second.fit()
    assert straight.batcher.epoch >= 2 and straight.optimizer.lr < 3e-3  # decay happened
    assert_same_run(straight, second)
    assert straight.best_val_loss == second.best_val_loss
    assert metrics_without_speed(tmp_path / "a" / "metrics.csv") == metrics_without_speed(
        tmp_path / "b" / "metrics.csv"
    )
    on_disk = load_checkpoint(tmp_path / "b" / "latest")
    assert on_disk.state["trainer"]["step"] == 130


def test_seeded_runs_repeat_and_seeds_differ():
    a, b, c = (make_trainer(max_steps=20, seed=s) for s in (3, 3, 4))
    for t in (a, b, c):
        t.fit()
    assert_same_run(a, b)
    assert not np.array_equal(
        a.model.state_dict()["head.weight"], c.model.state_dict()["head.weight"]
    )


def test_training_on_a_memory_mapped_id_file_equals_training_in_memory(tmp_path):
    (tmp_path / "corpus.txt").write_text(TEXT, encoding="utf-8")
    ids = encode_file(tmp_path / "corpus.txt", VOCAB, tmp_path / "ids.npy")
    mapped, memory = make_trainer(ids=ids, max_steps=15), make_trainer(max_steps=15)
    for t in (mapped, memory):
        t.fit()
    assert isinstance(mapped.batcher.ids, np.memmap)
    assert_same_run(mapped, memory)


class Spy:
    """Wraps a model and records the state given to and returned by each training
    loss(); returns a NaN loss at the training calls numbered in ``nan_at``."""

    def __init__(self, model, nan_at=()):
        self._model, self.given, self.returned, self.calls = model, [], [], 0
        self._nan_at = set(nan_at)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def loss(self, inputs, targets, state=None, **kw):
        given = state
        loss, state = self._model.loss(inputs, targets, state, **kw)
        if not self._model.training:  # a validation pass
            return loss, state
        self.given.append(given)
        self.returned.append(state)
        self.calls += 1
        return (float("nan") if self.calls in self._nan_at else loss), state


def test_state_is_carried_within_an_epoch_and_reset_at_its_start():
    trainer = make_trainer(max_epochs=2, eval_every=0, cell="gru")
    spy = trainer.model = Spy(trainer.model)
    per_epoch = trainer.batcher.num_chunks("train")
    trainer.fit()
    assert spy.calls == 2 * per_epoch
    for i, given in enumerate(spy.given):
        if i % per_epoch == 0:
            assert given is None
        else:
            assert given is spy.returned[i - 1]


def test_a_non_finite_step_is_skipped_and_too_many_stop_training():
    trainer = make_trainer(max_steps=6, eval_every=0, opt="sgd", lr=0.1, max_nonfinite=3)
    spy = trainer.model = Spy(trainer.model, nan_at={3})
    before = {}
    original_step = trainer.train_step

    def step():
        before[trainer.step] = trainer.model.state_dict()["head.weight"].copy()
        return original_step()

    trainer.train_step = step
    trainer.fit()
    head = trainer.model.state_dict()["head.weight"]
    assert trainer.guard.skipped == 1 and trainer.optimizer.steps == 5
    np.testing.assert_array_equal(before[2], before[3])  # step 3 (index 2) changed nothing
    assert not np.array_equal(before[3], head)
    assert spy.given[3] is None  # the state of the bad step was not carried
    bad = make_trainer(max_steps=10, eval_every=0, max_nonfinite=3)
    bad.model = Spy(bad.model, nan_at={2, 3, 4})
    with pytest.raises(NonFiniteError, match="3 steps in a row"):
        bad.fit()


@pytest.mark.parametrize("mode", ["value", "norm"])
def test_gradients_are_clipped_before_the_update(mode):
    clip = 1e-3
    cfg = (
        {"grad_clip_value": clip, "grad_clip_norm": None}
        if mode == "value"
        else {"grad_clip_norm": clip}
    )
    trainer = make_trainer(max_steps=1, eval_every=0, opt="sgd", lr=1.0, **cfg)
    before = trainer.model.state_dict()
    trainer.fit()
    deltas = [trainer.model.state_dict()[k] - v for k, v in before.items()]
    if mode == "value":
        assert max(float(np.abs(d).max()) for d in deltas) <= clip * (1 + 1e-5)
    else:
        norm = np.sqrt(sum(float((d.astype(np.float64) ** 2).sum()) for d in deltas))
        assert clip * 0.99 < norm <= clip * (1 + 1e-4)


def test_learning_rate_follows_the_schedules(tmp_path):
    trainer = make_trainer(tmp_path / "s", max_epochs=3, eval_every=0, log_every=1)
    trainer.fit()
    per_epoch = trainer.batcher.num_chunks("train")
    rows = read_metrics(tmp_path / "s" / "metrics.csv")
    assert [r["lr"] for r in rows] == pytest.approx(
        [3e-3 * 0.8 ** ((r["step"] - 1) // per_epoch) for r in rows]
    )
    cosine = make_trainer(
        tmp_path / "c",
        max_steps=20,
        eval_every=0,
        log_every=1,
        cosine=True,
        warmup_steps=4,
        min_lr=1e-4,
    )
    cosine.fit()
    lrs = [r["lr"] for r in read_metrics(tmp_path / "c" / "metrics.csv")]
    assert lrs[:4] == pytest.approx([3e-3 * k / 4 for k in (1, 2, 3, 4)])
    assert lrs[4] == pytest.approx(3e-3) and lrs[-1] < lrs[10] < lrs[5]
    assert lrs[-1] > 1e-4


def test_limits_stop_the_run():
    assert make_trainer(max_epochs=1, eval_every=0).fit().stop_reason == "max_epochs"
    result = make_trainer(max_steps=10**6, minutes=0.002, eval_every=0).fit()
    assert result.stop_reason == "minutes" and 0.1 <= result.seconds < 5
    frozen = make_trainer(max_steps=500, lr=0.0, eval_every=3, patience=2)  # never improves
    result = frozen.fit()
    assert result.stop_reason == "patience" and result.steps == 9  # evals at 3, 6, 9


def test_validation_keeps_the_best_checkpoint_and_metrics(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=40, eval_every=10, log_every=4)
    result = trainer.fit()
    rows = read_metrics(tmp_path / "metrics.csv")
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    assert header == "step,epoch,train_loss,val_loss,lr,chars_per_s,grad_norm,clipped_frac"
    assert [r["step"] for r in rows] == [4, 8, 10, 12, 16, 20, 24, 28, 30, 32, 36, 40]
    vals = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    assert len(vals) == 4 and result.best_val_loss == min(vals)
    assert all(r["chars_per_s"] > 0 and r["train_loss"] > 0 for r in rows)
    model, vocab, ckpt = load_model(tmp_path / "best")
    assert vocab == VOCAB and ckpt.state["trainer"]["best_val_loss"] == min(vals)
    rebuilt = make_trainer(max_steps=1)
    rebuilt.model = model
    assert rebuilt.evaluate() == pytest.approx(min(vals), rel=1e-6)
    rng_before = trainer.model.rng.bit_generator.state
    trainer.evaluate()
    assert trainer.model.rng.bit_generator.state == rng_before
    if have_matplotlib():
        assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (tmp_path / "loss.png").exists()


def test_restore_on_other_data_keeps_weights_but_restarts_the_stream(tmp_path):
    make_trainer(tmp_path, max_steps=12).fit()
    other = make_trainer(ids=IDS[::-1].copy(), max_steps=20)
    assert other.restore(load_checkpoint(tmp_path / "latest")) is False
    assert other.step == 12 and other.batcher.epoch == 0 and other.batcher.position == 0
    assert other.state is None and other.optimizer.steps == 12
    wrong = CharLM(LMConfig(vocab_size=len(VOCAB), hidden_size=8, seed=0))
    odd = make_trainer(max_steps=1)
    odd.model = wrong
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        odd.restore(load_checkpoint(tmp_path / "latest"))


def test_sampling_is_seeded_starts_with_the_prime_and_can_be_greedy(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=30)
    trainer.fit()
    model, vocab, _ = load_model(tmp_path / "latest")
    draw = [
        sample_text(model, vocab, length=80, prime="The ", temperature=0.8, seed=s)
        for s in (1, 1, 2)
    ]
    assert draw[0] == draw[1] != draw[2]
    assert draw[0].startswith("The ") and len(draw[0]) == 84
    greedy = {
        sample_text(model, vocab, length=30, prime="a", temperature=0.0, seed=s) for s in range(3)
    }
    assert len(greedy) == 1
    words = WordVocab.from_text(TEXT)
    lm = CharLM(LMConfig(vocab_size=len(words), hidden_size=8, num_layers=1, embedding_dim=8))
    text = sample_text(lm, words, length=5, prime="the", rng=np.random.default_rng(0))
    assert text.startswith("the ") and len(words.tokenize(text)) == 6


def test_config_rejects_bad_settings():
    with pytest.raises(ValueError, match="cosine"):
        TrainConfig(cosine=True)
    with pytest.raises(ValueError, match="at least one"):
        TrainConfig(max_epochs=None)
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=2, eval_every=0)
    assert dataclasses.asdict(TrainConfig())["loss_reduction"] == "mean"


def test_the_final_validation_is_logged_and_considered_for_best(tmp_path):
    # Stops at step 13, between the validations at 5 and 10: a third is run then.
    trainer = make_trainer(tmp_path, max_steps=13, eval_every=5, log_every=4)
    result = trainer.fit()
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [4, 5, 8, 10, 12, 13]
    vals = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    assert len(vals) == 3 and vals[-1] == result.final_val_loss
    assert result.best_val_loss == min(vals)
    _, _, best = load_model(tmp_path / "best")
    assert best.state["trainer"]["step"] == [5, 10, 13][vals.index(min(vals))]
    final = rows[-1]
    assert final["train_loss"] is None and final["chars_per_s"] is None
    # latest/ is written before the final validation, so a resume continues exactly
    latest = load_checkpoint(tmp_path / "latest")
    assert latest.state["trainer"]["best_val_loss"] == min(vals[:2])
    again = make_trainer(tmp_path, max_steps=15, eval_every=5, log_every=4)
    again.restore(latest)
    again.fit()
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.csv")]
    assert steps == [4, 5, 8, 10, 12, 15]  # the final row of step 13 is gone


def test_a_final_validation_better_than_the_best_goes_to_best(tmp_path):
    # A steadily falling loss: the final weights are the best ones.
    trainer = make_trainer(tmp_path, max_steps=23, eval_every=10, log_every=100)
    result = trainer.fit()
    assert result.final_val_loss is not None and result.final_val_loss == result.best_val_loss
    model, _, best = load_model(tmp_path / "best")
    assert best.state["trainer"]["step"] == 23
    rebuilt = make_trainer(max_steps=1)
    rebuilt.model = model
    assert rebuilt.evaluate() == pytest.approx(result.final_val_loss, rel=1e-6)


def test_the_test_part_is_scored_once_at_the_end():
    trainer = make_trainer(max_steps=10)
    seen = []
    evaluate = trainer.evaluate

    def counting(split="val"):
        seen.append(split)
        return evaluate(split)

    trainer.evaluate = counting
    result = trainer.fit()
    assert seen.count("test") == 1 and seen[-1] == "test"  # after training, only then
    assert result.test_loss is not None and np.isfinite(result.test_loss)
    assert result.test_loss == evaluate("test")  # the final weights' loss on the test part
    none = make_trainer(max_steps=2)
    none.batcher = StreamBatcher(IDS, 4, 16, (0.9, 0.1, 0.0))
    assert none.fit().test_loss is None  # no test part
