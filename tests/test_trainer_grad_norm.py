"""The gradient norm before clipping and the fraction of clipped steps in
``metrics.csv``, and the warnings for nearly-always clipping and non-finite norms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_trainer import make_trainer

from rnncore.optim import global_norm
from rnncore.train import read_metrics


def recorded_norms(trainer):
    """Run ``trainer.fit()``, returning the global norm of each step's gradients as
    backward left them (before clipping)."""
    norms = []
    backward = trainer.model.backward

    def spy():
        backward()
        norms.append(global_norm(trainer.model.grads))

    trainer.model.backward = spy
    trainer.fit()
    return norms


def test_grad_norm_and_clipped_fraction_are_logged(tmp_path):
    trainer = make_trainer(
        tmp_path / "a", max_steps=6, eval_every=0, log_every=2, grad_clip_norm=None
    )
    norms = recorded_norms(trainer)
    rows = read_metrics(tmp_path / "a" / "metrics.csv")
    assert [r["step"] for r in rows] == [2, 4, 6]
    for k, r in enumerate(rows):
        assert r["grad_norm"] == pytest.approx(np.mean(norms[2 * k : 2 * k + 2]), rel=1e-12)
        assert r["clipped_frac"] == 0.0

    clip = float(np.median(norms))  # about half of the steps are above it
    trainer = make_trainer(
        tmp_path / "b", max_steps=6, eval_every=0, log_every=3, grad_clip_norm=clip
    )
    norms = recorded_norms(trainer)
    rows = read_metrics(tmp_path / "b" / "metrics.csv")
    for k, r in enumerate(rows):
        part = norms[3 * k : 3 * k + 3]
        assert r["grad_norm"] == pytest.approx(np.mean(part), rel=1e-12)  # before clipping
        assert r["clipped_frac"] == pytest.approx(np.mean([n > clip for n in part]))


def test_clip_value_counts_as_clipping(tmp_path):
    trainer = make_trainer(
        tmp_path, max_steps=2, eval_every=0, log_every=1, grad_clip_norm=None, grad_clip_value=1e-9
    )
    trainer.fit()
    assert [r["clipped_frac"] for r in read_metrics(tmp_path / "metrics.csv")] == [1.0, 1.0]


def test_nearly_always_clipped_warns_once():
    trainer = make_trainer(max_steps=120, eval_every=0, grad_clip_norm=1e-6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit()
    hits = [w for w in caught if "clipping was active" in str(w.message)]
    assert len(hits) == 1 and hits[0].category is RuntimeWarning
    quiet = make_trainer(max_steps=120, eval_every=0, grad_clip_norm=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet.fit()


def test_non_finite_norm_warns_once_and_the_step_is_skipped(tmp_path):
    trainer = make_trainer(tmp_path, max_steps=5, eval_every=0, log_every=5, max_nonfinite=5)
    backward, calls = trainer.model.backward, []

    def poisoned():
        backward()
        calls.append(1)
        if len(calls) in (2, 3):
            trainer.model.grads["head.bias"][0] = np.inf

    trainer.model.backward = poisoned
    with pytest.warns(RuntimeWarning, match="not finite at step 2") as caught:
        trainer.fit()
    assert sum("not finite" in str(w.message) for w in caught) == 1
    assert trainer.guard.skipped == 2
    (row,) = read_metrics(tmp_path / "metrics.csv")
    assert np.isfinite(row["grad_norm"])  # the mean of the three finite steps


def test_old_metrics_files_are_still_read(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,epoch,train_loss,val_loss,lr,chars_per_s\n1,0,2.5,,0.001,10.0\n")
    (row,) = read_metrics(path)
    assert row["train_loss"] == 2.5 and row["grad_norm"] is None and row["clipped_frac"] is None
