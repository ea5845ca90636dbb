"""Sweeps, ensembles and the command line of rnncore.distributed, on a local Ray."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from rnncore.checkpoint import load_checkpoint  # noqa: E402
from rnncore.cli import main  # noqa: E402
from rnncore.decode import Ensemble, sample  # noqa: E402
from rnncore.distributed import format_table, sweep, train_ensemble  # noqa: E402
from rnncore.distributed_cli import grid_configs  # noqa: E402
from rnncore.errors import ArgumentError  # noqa: E402
from rnncore.train import read_metrics  # noqa: E402

TINY = {"rnn_size": 16, "num_layers": 1, "seq_length": 10, "batch_size": 4, "eval_every": 4}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "text.txt"
    rng = np.random.default_rng(0)
    words = ["the ", "cat ", "sat ", "on ", "a ", "mat. ", "dog ", "ran "]
    path.write_text("".join(rng.choice(words, 1500)), encoding="utf-8")
    return str(path)


def test_sweep_runs_each_config_in_its_own_directory_best_first(ray_local, tmp_path, corpus):
    configs = [
        {**TINY, "data": corpus, "max_steps": 8, "lr": 1e-5, "name": "slow"},
        {**TINY, "data": corpus, "max_steps": 8, "lr": 1e-2, "name": "fast"},
    ]
    rows = sweep(configs, tmp_path)
    assert [r.name for r in rows] == ["fast", "slow"]  # the higher rate learns more in 8 steps
    assert rows[0].best_val_loss < rows[1].best_val_loss
    for r in rows:
        assert r.error is None and r.steps == 8
        metrics = read_metrics(tmp_path / r.name / "metrics.csv")
        assert min(m["val_loss"] for m in metrics if m["val_loss"] is not None) == r.best_val_loss
        assert (tmp_path / r.name / "latest").is_dir()
    assert format_table(rows).splitlines()[1].startswith("fast ")


def test_sweep_checks_every_config_before_running_any(ray_local, tmp_path, corpus):
    good = {**TINY, "data": corpus, "max_steps": 2}
    with pytest.raises(ArgumentError, match="unknown setting 'hidden'"):
        sweep([good, {"hidden": 3}], tmp_path)
    with pytest.raises(ArgumentError, match="names must be unique"):
        sweep([{**good, "name": "a"}, {**good, "name": "a"}], tmp_path)
    with pytest.raises(ArgumentError, match="plain directory names"):
        sweep([{**good, "name": "../up"}], tmp_path)
    assert not any(tmp_path.iterdir())


def test_failed_run_is_reported_and_sorted_last(ray_local, tmp_path, corpus):
    configs = [
        {**TINY, "data": corpus, "max_steps": 2, "name": "bad", "val_fraction": 0.99},
        {**TINY, "data": corpus, "max_steps": 2, "name": "good"},
    ]
    rows = sweep(configs, tmp_path)
    assert [r.name for r in rows] == ["good", "bad"]
    assert rows[1].error and "fraction" in rows[1].error


def test_ensemble_members_differ_by_seed_and_decode(ray_local, tmp_path, corpus):
    ensemble = train_ensemble({**TINY, "data": corpus, "max_steps": 4}, 2, tmp_path)
    assert isinstance(ensemble, Ensemble) and len(ensemble.models) == 2
    seeds = [
        load_checkpoint(tmp_path / f"member-{k}" / "latest").state["model_config"]["seed"]
        for k in range(2)
    ]
    assert seeds == [0, 1]
    a, b = (m.state_dict() for m in ensemble.models)
    assert not all(np.array_equal(a[k], b[k]) for k in a)
    ids = sample(ensemble, prime_ids=[1, 2], length=20, seed=0)
    assert len(ids) == 1 and len(ids[0]) == 20  # one sample of 20 symbols


def test_grid_file_expands_to_every_combination():
    configs = grid_configs({"base": {"max_steps": 3}, "grid": {"lr": [0.1, 0.2], "rnn_size": [8]}})
    assert configs == [
        {"max_steps": 3, "lr": 0.1, "rnn_size": 8, "name": "lr=0.1-rnn_size=8"},
        {"max_steps": 3, "lr": 0.2, "rnn_size": 8, "name": "lr=0.2-rnn_size=8"},
    ]
    with pytest.raises(ArgumentError, match="non-empty list"):
        grid_configs({"grid": {"lr": []}})


def test_cli_train_with_workers_then_resume(ray_local, tmp_path, corpus, capsys):
    out = tmp_path / "run"
    args = ["--data", corpus, "--rnn-size", "16", "--batch-size", "4", "--seq-length", "10"]
    argv = ["train", *args, "--max-steps", "6", "--eval-every", "3", "--out", str(out)]
    assert main([*argv, "--workers", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "stopped at step 6" in printed
    assert "worker 0: 2 streams" in printed and "worker 1: 2 streams" in printed
    assert load_checkpoint(out / "latest").state["trainer"]["step"] == 6
    assert (out / "workers.csv").read_text().startswith("step,worker,streams,symbols_per_s")
    again = ["train", "--init-from", str(out), "--data", corpus, "--max-steps", "9"]
    assert main([*again, "--workers", "2"]) == 0
    assert "stopped at step 9" in capsys.readouterr().out


def test_cli_bad_worker_counts_and_addresses(ray_local, tmp_path, corpus, capsys):
    base = ["train", "--data", corpus, "--batch-size", "4", "--max-steps", "2"]
    base += ["--out", str(tmp_path)]
    assert main([*base, "--workers", "5"]) == 2
    assert "--workers: workers (5) must not exceed" in capsys.readouterr().err
    assert main([*base, "--workers", "0"]) == 2
    assert main([*base, "--ray-address", "127.0.0.1:9"]) == 2
    assert "--ray-address needs --workers" in capsys.readouterr().err
    assert main([*base, "--workers", "2", "--ray-address", "127.0.0.1:9"]) == 2
    assert "cannot reach 127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "latest").exists()


def test_cli_sweep(ray_local, tmp_path, corpus, capsys):
    grid = tmp_path / "grid.json"
    base = {**TINY, "data": corpus, "max_steps": 4}
    grid.write_text(json.dumps({"base": base, "grid": {"lr": [0.01, 0.001]}}))
    assert main(["sweep", "--grid", str(grid), "--out", str(tmp_path / "sw")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["name", "best_val_loss"] and len(lines) == 3
    table = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert {r["name"] for r in table} == {"lr=0.01", "lr=0.001"}


def test_cli_starts_and_stops_its_own_local_ray(tmp_path, corpus):
    """Without --ray-address the command starts Ray for the run, and nothing of
    it is left afterwards."""
    pytest.importorskip("ray")
    root = tempfile.mkdtemp(prefix="rnr-")
    env = {**os.environ, "RAY_TMPDIR": root}
    argv = ["--data", corpus, "--rnn-size", "8", "--batch-size", "4", "--max-steps", "3"]
    argv += ["--workers", "2", "--no-progress", "--out", str(tmp_path / "run")]
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rnncore", "train", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr
        assert "stopped at step 3" in done.stdout
        from conftest import _processes_using

        assert not _processes_using(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_cli_joins_an_existing_cluster(ray_local, tmp_path, corpus):
    address = ray_local.address_info["gcs_address"]
    argv = ["--data", corpus, "--rnn-size", "8", "--batch-size", "4", "--max-steps", "3"]
    argv += ["--workers", "2", "--ray-address", address, "--no-progress"]
    done = subprocess.run(
        [sys.executable, "-m", "rnncore", "train", *argv, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped at step 3" in done.stdout
    assert ray.is_initialized()  # the cluster outlives the command that joined it


def test_ray_that_cannot_start_is_one_line(tmp_path, corpus, capsys, monkeypatch):
    """Ray failing to start (it raises a bare Exception) is an error of rnncore's."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)

    def fail(*args, **kwargs):
        raise Exception("The current node timed out during startup")

    monkeypatch.setattr(ray, "init", fail)
    argv = ["train", "--data", corpus, "--batch-size", "4", "--max-steps", "2", "--workers", "2"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rnncore: error: could not start a local Ray") and err.count("\n") == 1
