"""Data-parallel training on Ray against the single-process Trainer.

W workers on N/W streams each must end where one process on N streams ends:
the same parameters, optimizer state, carried state, validation losses and
dropout masks, clipping of the global norm included; a killed worker and a
restarted driver must not change the result.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rnncore.checkpoint import load_checkpoint  # noqa: E402
from rnncore.data import StreamBatcher  # noqa: E402
from rnncore.distributed import DataParallelTrainer, connect, shard_rows  # noqa: E402
from rnncore.distributed.shard import ShardGenerator  # noqa: E402
from rnncore.errors import ArgumentError, NonFiniteError  # noqa: E402
from rnncore.models import CharLM, LMConfig  # noqa: E402
from rnncore.optim import create  # noqa: E402
from rnncore.train import TrainConfig, Trainer, read_metrics  # noqa: E402

V, N, T = 13, 5, 7  # N = 5 streams: two workers take 3 and 2
IDS = np.random.default_rng(1).integers(0, V, 3000)


def make(cell="lstm", dtype="float64", optimizer="adam", hidden=8, seed=3):
    config = LMConfig(
        vocab_size=V,
        cell=cell,
        hidden_size=hidden,
        num_layers=2,
        embedding_dim=5,
        dropout=0.3,  # between the layers and before the head
        dtype=dtype,
        seed=seed,
    )
    model = CharLM(config)
    return model, create(optimizer, dict(model.named_parameters()), lr=1e-2)


def config(**kw):
    base = {
        "max_steps": 20,
        "max_epochs": None,
        "grad_clip_norm": 0.5,  # small: every step is clipped
        "eval_every": 10,
        "max_val_chunks": 3,
        "progress": False,
        "plot": False,
    }
    return TrainConfig(**{**base, **kw})


def run(workers, cfg, **make_kw):
    """``(trainer, result)`` after training; ``workers=None`` is the plain Trainer.
    The trainer's model, optimizer and carried state hold the run's end."""
    model, opt = make(**make_kw)
    batcher = StreamBatcher(IDS, N, T)
    if workers is None:
        trainer = Trainer(model, opt, batcher, cfg)
        return trainer, trainer.fit()
    with DataParallelTrainer(model, opt, batcher, cfg, workers=workers) as trainer:
        result = trainer.fit()
        trainer.checkpoint()  # gathers the workers' state into the driver's copy
    return trainer, result


def relative_error(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def assert_same_run(dist, single, tol):
    """Parameters, optimizer buffers and the carried state agree within ``tol``
    (relative to each array's largest entry); 0 means bitwise."""
    pairs = [(dist.model.state_dict(), single.model.state_dict())]
    pairs.append((dist.optimizer.state_dict()[0], single.optimizer.state_dict()[0]))
    states = [dist.state, single.state]
    pairs.append(tuple({str(i): s for i, s in enumerate(x)} for x in states))
    for got, want in pairs:
        assert got.keys() == want.keys()
        for k in want:
            if tol == 0:
                assert np.array_equal(got[k], want[k]), k
            else:
                assert relative_error(got[k], want[k]) <= tol, (k, relative_error(got[k], want[k]))
    assert dist.model.rng.bit_generator.state == single.model.rng.bit_generator.state
    assert dist.step == single.step == 20


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_two_workers_equal_one_process_float64(ray_local, cell):
    single, r1 = run(None, config(), cell=cell)
    dist, r2 = run(2, config(), cell=cell)
    assert_same_run(dist, single, 1e-12)
    assert r2.best_val_loss == pytest.approx(r1.best_val_loss, rel=1e-12)
    assert r2.last_train_loss == pytest.approx(r1.last_train_loss, rel=1e-12)


@pytest.mark.parametrize(("optimizer", "tol"), [("sgd", 1e-6), ("adam", 1e-5)])
def test_two_workers_equal_one_process_float32(ray_local, optimizer, tol):
    # Not bitwise: the gradient of N rows is summed in another order than the
    # gradients of N/W rows added up. After 20 steps the parameters differ by
    # ~4e-8 (SGD) and ~7e-7 (Adam, which rescales tiny gradient entries) of
    # their largest entry.
    single, _ = run(None, config(), dtype="float32", optimizer=optimizer)
    dist, _ = run(2, config(), dtype="float32", optimizer=optimizer)
    assert_same_run(dist, single, tol)


def test_one_worker_equals_the_plain_trainer(ray_local):
    # W = 1 draws the same masks and sums nothing: only the mean's scaling differs.
    single, _ = run(None, config())
    dist, _ = run(1, config())
    assert_same_run(dist, single, 1e-12)


def test_dropout_masks_are_drawn_per_stream():
    """Rows lo:hi of a sharded draw are those rows of the full draw."""
    full = np.random.default_rng(5).random((4, 6, 3), dtype=np.float32)
    for lo, hi in shard_rows(6, 4):
        g = ShardGenerator(np.random.default_rng(5).bit_generator, lo, hi, 6)
        assert np.array_equal(g.random((4, hi - lo, 3), dtype=np.float32), full[:, lo:hi])
    with pytest.raises(ArgumentError, match="masks"):
        ShardGenerator(np.random.default_rng(5).bit_generator, 0, 2, 6).random((4, 3))


@pytest.fixture(scope="module")
def uninterrupted(ray_local, tmp_path_factory):
    """A 2-worker run of 20 steps with checkpoints every 5 steps."""
    out = tmp_path_factory.mktemp("whole")
    trainer, _ = run(2, config(out_dir=str(out), checkpoint_every=5))
    return trainer


def test_killed_worker_rolls_back_and_ends_the_same(ray_local, tmp_path, uninterrupted):
    killed = []

    class KillAtStep8(DataParallelTrainer):
        def train_step(self):
            if self.step == 7 and not killed:  # after the checkpoint of step 5
                pid = ray.get(self.workers[1].pid.remote())
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return super().train_step()

    model, opt = make()
    cfg = config(out_dir=str(tmp_path), checkpoint_every=5)
    with KillAtStep8(model, opt, StreamBatcher(IDS, N, T), cfg, workers=2) as trainer:
        trainer.fit()
        trainer.checkpoint()
        assert len(trainer.workers) == 2  # the dead one was replaced
        assert ray.get(trainer.workers[1].pid.remote()) != killed[0]
    assert killed
    assert_same_run(trainer, uninterrupted, 0)
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == 20  # one row per step, no repeats
    rows = (tmp_path / "workers.csv").read_text().splitlines()[1:]
    pairs = [tuple(r.split(",")[:2]) for r in rows]
    assert len(pairs) == len(set(pairs)) and pairs[-1] == ("20", "1")


def test_restarted_driver_continues_exactly(ray_local, tmp_path, uninterrupted):
    first, _ = run(2, config(out_dir=str(tmp_path), max_steps=10, checkpoint_every=5))
    assert first.step == 10
    model, opt = make()
    cfg = config(out_dir=str(tmp_path), checkpoint_every=5)
    with DataParallelTrainer(model, opt, StreamBatcher(IDS, N, T), cfg, workers=2) as trainer:
        assert trainer.restore(load_checkpoint(tmp_path / "latest"))
        trainer.fit()
        trainer.checkpoint()
    assert_same_run(trainer, uninterrupted, 0)


def test_checkpoint_of_two_workers_resumes_in_one_process(ray_local, tmp_path):
    run(2, config(out_dir=str(tmp_path), max_steps=10))
    model, opt = make()
    single = Trainer(model, opt, StreamBatcher(IDS, N, T), config())
    assert single.restore(load_checkpoint(tmp_path / "latest"))
    single.fit()
    whole, _ = run(None, config())
    assert_same_run(single, whole, 1e-12)


# ---------------------------------------------------------------- bad input


def test_more_workers_than_streams_is_refused_before_ray():
    model, opt = make()
    with pytest.raises(ArgumentError, match=r"workers \(6\) must not exceed .* \(batch size 5\)"):
        DataParallelTrainer(model, opt, StreamBatcher(IDS, N, T), config(), workers=6)


def test_unreachable_address_fails_fast():
    import time

    started = time.monotonic()
    with pytest.raises(ArgumentError, match=r"cannot reach 127\.0\.0\.1:9 "):
        connect("127.0.0.1:9", timeout=2.0)
    assert time.monotonic() - started < 5
    with pytest.raises(ArgumentError, match="HOST:PORT"):
        connect("no-port-here")


def test_replica_that_differs_is_refused_before_any_step(ray_local, tmp_path):
    model, opt = make()
    cfg = config(out_dir=str(tmp_path))
    other = DataParallelTrainer(
        model, opt, StreamBatcher(IDS, N, T), cfg, workers=2, setup=make(hidden=9)
    )
    with other, pytest.raises(ArgumentError, match=r"replica differs .* in config, parameters"):
        other.fit()
    assert other.step == 0 and not (tmp_path / "metrics.csv").exists()


def test_lost_worker_that_cannot_come_back_leaves_the_others_to_finish(ray_local, tmp_path):
    """With no CPU free for a replacement the run goes on with one worker: the
    same result up to rounding."""

    @ray.remote(num_cpus=1)
    class Holder:
        def ready(self):
            return True

    holder = []

    class KillAndTakeItsCpu(DataParallelTrainer):
        def train_step(self):
            if self.step == 7 and not holder:
                os.kill(ray.get(self.workers[1].pid.remote()), signal.SIGKILL)
                holder.append(Holder.remote())  # takes the CPU the dead worker frees
                ray.get(holder[0].ready.remote())
            return super().train_step()

    model, opt = make()
    cfg = config(out_dir=str(tmp_path), checkpoint_every=5)
    try:
        with KillAndTakeItsCpu(
            model, opt, StreamBatcher(IDS, N, T), cfg, workers=2, start_timeout=3.0
        ) as trainer:
            trainer.fit()
            trainer.checkpoint()
            assert len(trainer.workers) == 1
    finally:
        for h in holder:
            ray.kill(h)
    single, _ = run(None, config())
    assert_same_run(trainer, single, 1e-12)


def test_diverging_run_raises_the_guards_error(ray_local):
    model, opt = make(dtype="float32", optimizer="sgd")
    model.head.weight[...] = 3e38  # finite, but the logits overflow: every loss is NaN
    cfg = config(max_nonfinite=2, eval_every=0)
    with DataParallelTrainer(model, opt, StreamBatcher(IDS, N, T), cfg, workers=2) as trainer:
        with pytest.raises(NonFiniteError, match="steps in a row had a non-finite"):
            trainer.fit()


def test_import_without_ray_says_what_to_install(monkeypatch):
    import importlib
    import sys

    for name in [m for m in sys.modules if m.startswith("rnncore.distributed")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'rnncore\[ray\]'"):
        importlib.import_module("rnncore.distributed")
