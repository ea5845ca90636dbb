"""Training-fault probes: a diverging run skips its bad steps, then stops with a
message naming the learning rate, and keeps the last good weights in latest/.

A step whose loss, gradients or update is not finite is undone (the
parameters and optimizer buffers are bitwise what they were) and counted; the
``max_nonfinite``-th in a row raises :class:`DivergedError`.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore.checkpoint import load_checkpoint
from rnncore.errors import DivergedError, NonFiniteError
from rnncore.optim import OPTIMIZERS, NonFiniteGuard, create

from .conftest import TINY, run_cli


def snapshot(opt):
    arrays = {("p", k): v.copy() for k, v in opt.params.items()}
    for buf, per in opt.state.items():
        arrays.update({(buf, k): v.copy() for k, v in per.items()})
    return arrays, opt.steps


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    lr=st.sampled_from([1e39, 1e300, float(np.finfo(np.float64).max)]),
    good_steps=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_an_update_that_overflows_is_undone_exactly(name, lr, good_steps, seed):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((3, 5)).astype(np.float32), "b": np.ones(4, np.float32)}
    opt = create(name, params, 1e-2)
    guard = NonFiniteGuard(max_in_a_row=3)
    grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params.items()}
    for _ in range(good_steps):
        assert guard.check(1.0, grads) and guard.step(opt, grads)
    before, steps = snapshot(opt)
    opt.lr = lr
    assert guard.screen(1.0, grads, lr) and not guard.step(opt, grads)
    after, steps_after = snapshot(opt)
    assert steps_after == steps and before.keys() == after.keys()
    for key in before:
        assert np.array_equal(before[key], after[key]), key  # bitwise, not close
    assert guard.in_a_row == 1 and guard.skipped == 1
    opt.lr = 1e-3
    assert guard.step(opt, grads) and guard.in_a_row == 0  # a good step ends the run
    opt.lr = lr
    guard.step(opt, grads)
    guard.step(opt, grads)
    with pytest.raises(DivergedError, match="learning rate"):
        guard.step(opt, grads)


def test_diverged_is_a_non_finite_error():
    assert issubclass(DivergedError, NonFiniteError) and issubclass(DivergedError, ValueError)


@pytest.mark.parametrize(
    "flags",
    [
        ("--lr", "1e300", *TINY),  # Adam, the layers' path, float32
        ("--lr", "1e308", "--min-char-rnn"),  # Adagrad in one fused call, float64
    ],
    ids=["layers", "fused"],
)
def test_a_diverging_cli_run_stops_naming_the_lr_and_keeps_good_weights(tiny_run, tmp_path, flags):
    (tmp_path / "text.txt").write_text((tiny_run.parent / "text.txt").read_text())
    args = ("train", "--data", "text.txt", *flags, "--max-steps", "40", "--out", "run")
    done = run_cli(*args, "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("rnncore: error:") and done.stderr.count("\n") == 1
    assert "learning rate 1e+30" in done.stderr and "latest" in done.stderr
    saved = load_checkpoint(tmp_path / "run" / "latest")
    assert all(np.isfinite(v).all() for v in saved.model.values())
    assert all(np.isfinite(v).all() for v in saved.optimizer.values())
    more = run_cli(
        "train", "--init-from", "run", "--data", "text.txt", "--lr", "1e-3",
        "--max-steps", saved.state["trainer"]["step"] + 3, "--no-progress", cwd=tmp_path,
    )  # fmt: skip
    assert more.returncode == 0, more.stderr


def test_a_short_run_says_how_many_steps_it_skipped(tiny_run, tmp_path):
    (tmp_path / "text.txt").write_text((tiny_run.parent / "text.txt").read_text())
    args = ("train", "--data", "text.txt", "--lr", "1e300", *TINY, "--max-steps", "3")
    done = run_cli(*args, "--out", "run", cwd=tmp_path)  # 3 < max_nonfinite: no error
    assert done.returncode == 0, done.stderr
    assert "3 steps skipped" in done.stdout
