"""The ``rnncore`` command, run as ``python -m rnncore`` in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnncore.checkpoint import load_checkpoint
from rnncore.corpus import default_corpus
from rnncore.train import read_metrics

TINY = ["--rnn-size", "16", "--num-layers", "1", "--seq-length", "16", "--batch-size", "4"]


def rnncore(*args, cwd, timeout=120):
    """Run ``python -m rnncore ARGS`` and return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "rnncore", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def corpus(tmp_path):
    """A few thousand characters of English in a file."""
    path = tmp_path / "small.txt"
    path.write_text(default_corpus()[:3000], encoding="utf-8")
    return path


def same_tensors(a, b):
    """Whether two checkpoints hold bitwise equal weights, optimizer and train tensors."""
    for name, tensors in a.tensor_files().items():
        other = b.tensor_files()[name]
        if tensors.keys() != other.keys():
            return False
        if not all(np.array_equal(tensors[k], other[k]) for k in tensors):
            return False
    return True


def test_train_then_sample(tmp_path, corpus):
    done = rnncore(
        "train",
        "--data",
        corpus,
        *TINY,
        "--max-steps",
        30,
        "--eval-every",
        10,
        "--dropout",
        0.1,
        "--out",
        "run",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "stopped at step 30" in done.stdout and done.stderr == ""
    run = tmp_path / "run"
    assert {"latest", "best", "metrics.csv"} <= set(os.listdir(run))
    assert (run / "metrics.csv").read_text().splitlines()[0] == (
        "step,epoch,train_loss,val_loss,lr,chars_per_s,grad_norm,clipped_frac"
    )
    ckpt = load_checkpoint(run / "latest")
    config = ckpt.state["model_config"]
    assert (config["cell"], config["hidden_size"], config["dropout"]) == ("lstm", 16, 0.1)
    assert ckpt.state["extra"]["settings"]["data"] == str(corpus)
    args = ("sample", "--checkpoint", run, "--length", 60, "--prime", "The ", "--seed", 3)
    first, again = rnncore(*args, cwd=tmp_path), rnncore(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout and first.stdout.startswith("The ")
    assert len(first.stdout) == 4 + 60 + 1  # prime, sample, newline
    greedy = rnncore(
        "sample", "--checkpoint", run / "best", "--temperature", 0, "--length", 20, cwd=tmp_path
    )
    assert greedy.returncode == 0 and len(greedy.stdout) == 21


@pytest.mark.parametrize(
    ("model", "cell"),
    [
        ("lstm", "lstm"),
        ("lstm-cifg", "lstm_cifg"),  # an alias
        ("lstm-peephole", "lstm_peephole"),
        ("gru", "gru"),
        ("gru_reset_before", "gru_reset_before"),
        ("rnn", "rnn_tanh"),  # char-rnn's name
        ("rnn_relu", "rnn_relu"),
    ],
)
def test_every_cell_trains_and_samples(model, cell, tmp_path, corpus):
    common = ("--max-steps", 4, "--eval-every", 2, "--out", "run", "--no-progress")
    done = rnncore("train", "--data", corpus, *TINY, "--model", model, *common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = load_checkpoint(tmp_path / "run" / "latest").state["model_config"]
    assert config["cell"] == cell
    args = ("sample", "--checkpoint", tmp_path / "run", "--length", 20, "--seed", 1)
    first, again = rnncore(*args, cwd=tmp_path), rnncore(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout and len(first.stdout) == 21


@pytest.mark.parametrize("model", ["mut1", "mut2", "mut3"])
def test_mut_cells_train_and_sample(model, tmp_path, corpus):
    """MUT1 and MUT2 add their input itself to a gate: with one-hot input they are
    a one-line error naming the fix, with --embedding-size equal to --rnn-size they
    train; MUT3 trains either way. Sampling runs the sequence layer."""
    common = ("--max-steps", 4, "--eval-every", 2, "--out", "run", "--no-progress")
    if model != "mut3":
        refused = rnncore("train", "--data", corpus, *TINY, "--model", model, *common, cwd=tmp_path)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert "embedding_dim (--embedding-size)" in refused.stderr
    embed = ("--embedding-size", 16)  # TINY's --rnn-size
    done = rnncore(
        "train", "--data", corpus, *TINY, *embed, "--model", model, *common, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    config = load_checkpoint(tmp_path / "run" / "latest").state["model_config"]
    assert config["cell"] == model and config["embedding_dim"] == 16
    args = ("sample", "--checkpoint", tmp_path / "run", "--length", 20, "--seed", 1)
    first, again = rnncore(*args, cwd=tmp_path), rnncore(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout and len(first.stdout) == 21


def test_init_flags_reach_the_model(tmp_path, corpus):
    flags = ("--model", "lstm", "--forget-bias", 1.5, "--init-hh", "orthogonal", "--max-steps", 1)
    done = rnncore("train", "--data", corpus, *TINY, *flags, "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = load_checkpoint(tmp_path / "run" / "latest").state["model_config"]
    assert (config["forget_bias"], config["init_hh"]) == (1.5, "orthogonal")


def test_killed_training_resumes_exactly(tmp_path, corpus):
    """SIGKILL a training process after it saved a checkpoint, continue with
    --init-from, and compare with one uninterrupted run of the same length."""
    common = ["--data", corpus, *TINY, "--dropout", 0.1, "--eval-every", 5, "--no-progress"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rnncore",
            "train",
            *map(str, common),
            "--max-steps",
            "1000000",
            "--out",
            "killed",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = tmp_path / "killed" / "latest" / "state.json"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            try:
                if json.loads(state.read_text())["trainer"]["step"] >= 20:
                    break
            except (OSError, ValueError, KeyError):
                pass  # not written yet, or being replaced right now
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before it was killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = load_checkpoint(tmp_path / "killed" / "latest")
    at = saved.state["trainer"]["step"]
    assert at >= 20 and at % 5 == 0
    end = at + 23  # ends between two checkpoints and inside the next epoch
    resumed = rnncore(
        "train",
        "--init-from",
        tmp_path / "killed" / "latest",
        "--data",
        corpus,
        "--max-steps",
        end,
        "--no-progress",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr
    straight = rnncore("train", *common, "--max-steps", end, "--out", "straight", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    a = load_checkpoint(tmp_path / "killed" / "latest")
    b = load_checkpoint(tmp_path / "straight" / "latest")
    assert a.state["trainer"]["step"] == b.state["trainer"]["step"] == end
    assert same_tensors(a, b)
    assert a.state["trainer"] == b.state["trainer"]
    rows = [read_metrics(tmp_path / d / "metrics.csv") for d in ("killed", "straight")]
    for r in rows:
        for row in r:
            row.pop("chars_per_s")
    assert rows[0] == rows[1]  # rows written after the checkpoint were dropped on resume
    assert not same_tensors(saved, b)  # and the resumed run did train further


def test_min_char_rnn_preset_and_its_resume(tmp_path, corpus):
    done = rnncore(
        "train",
        "--data",
        corpus,
        "--min-char-rnn",
        "--max-steps",
        8,
        "--eval-every",
        4,
        "--out",
        "mcr",
        "--no-progress",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ckpt = load_checkpoint(tmp_path / "mcr" / "latest")
    config = ckpt.state["model_config"]
    assert (config["cell"], config["hidden_size"], config["num_layers"]) == ("rnn_tanh", 100, 1)
    assert config["embedding_dim"] is None and config["dtype"] == "float64"
    settings = ckpt.state["extra"]["settings"]
    assert (settings["seq_length"], settings["batch_size"]) == (25, 1)
    meta = ckpt.state["optimizer"]["meta"]
    assert meta["type"] == "Adagrad" and meta["lr"] == 0.1 and meta["eps_inside_sqrt"] is True
    train = ckpt.state["train_config"]
    assert (train["grad_clip_value"], train["grad_clip_norm"]) == (5.0, None)
    assert train["loss_reduction"] == "sum"
    assert not any(k.endswith("bias_hh_l0") for k in ckpt.optimizer)  # frozen, as in the original
    more = rnncore(
        "train",
        "--init-from",
        tmp_path / "mcr",  # a run directory: its latest/
        "--data",
        corpus,
        "--max-steps",
        12,
        "--no-progress",
        cwd=tmp_path,
    )
    assert more.returncode == 0, more.stderr
    assert load_checkpoint(tmp_path / "mcr" / "latest").state["trainer"]["step"] == 12
    clash = rnncore("train", "--min-char-rnn", "--model", "lstm", cwd=tmp_path)
    assert clash.returncode == 2 and "--model" in clash.stderr


def test_default_corpus_and_word_level(tmp_path, corpus):
    default = rnncore(
        "train",
        *TINY,
        "--max-steps",
        3,
        "--eval-every",
        0,
        "--out",
        "d",
        "--no-progress",
        cwd=tmp_path,
    )
    assert default.returncode == 0, default.stderr
    ckpt = load_checkpoint(tmp_path / "d" / "latest")
    assert ckpt.state["vocab"]["symbols"] == sorted(set(default_corpus()))
    words = rnncore(
        "train",
        "--data",
        corpus,
        "--word-level",
        "--embedding-size",
        8,
        *TINY,
        "--max-steps",
        4,
        "--out",
        "w",
        "--no-progress",
        cwd=tmp_path,
    )
    assert words.returncode == 0, words.stderr
    assert load_checkpoint(tmp_path / "w" / "latest").state["vocab"]["kind"] == "word"
    drawn = rnncore(
        "sample",
        "--checkpoint",
        tmp_path / "w",
        "--length",
        5,
        "--prime",
        "the",
        "--seed",
        0,
        cwd=tmp_path,
    )
    assert drawn.returncode == 0, drawn.stderr
    assert drawn.stdout.startswith("the ")


def test_resume_on_other_data_says_so(tmp_path, corpus):
    assert (
        rnncore(
            "train",
            "--data",
            corpus,
            *TINY,
            "--max-steps",
            5,
            "--out",
            "r",
            "--no-progress",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text()[::-1], encoding="utf-8")
    done = rnncore(
        "train",
        "--init-from",
        tmp_path / "r" / "latest",
        "--data",
        other,
        "--max-steps",
        8,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "other data" in done.stderr


def test_errors_are_one_line_and_status_2(tmp_path, corpus):
    assert (
        rnncore(
            "train",
            "--data",
            corpus,
            *TINY,
            "--max-steps",
            2,
            "--out",
            "ok",
            "--no-progress",
            cwd=tmp_path,
        ).returncode
        == 0
    )
    model_file = tmp_path / "ok" / "latest" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:-7])  # truncated
    (tmp_path / "binary.txt").write_bytes(b"\x00\xff\xfe\x80" * 10)
    cases = [
        (("train", "--data", tmp_path / "missing.txt"), "missing.txt"),
        (("train", "--data", tmp_path / "binary.txt"), "not UTF-8"),
        (("sample", "--checkpoint", tmp_path / "ok", "--temperature", -1), "temperature"),
        (("sample", "--checkpoint", tmp_path / "nowhere"), "no checkpoint"),
        (("sample", "--checkpoint", tmp_path / "ok" / "latest"), "model.safetensors"),
        (("train", "--init-from", tmp_path / "ok" / "latest"), "model.safetensors"),
        (("sample", "--checkpoint", tmp_path / "ok" / "best", "--length", -1), "--length"),
        (("train", "--model", "gru", "--forget-bias", 1, "--max-steps", 1), "forget_bias"),
        (("train", "--model", "lstm", "--init-hh", "identity", "--max-steps", 1), "IRNN"),
        (("train", "--min-char-rnn", "--init-hh", "orthogonal"), "--init-hh"),
    ]
    for args, words in cases:
        done = rnncore(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert "Traceback" not in done.stderr and words in done.stderr
        assert done.stderr.startswith("rnncore: error:") and done.stderr.count("\n") == 1
