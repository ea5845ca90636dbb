"""``rnncore train --proj-size P``: an LSTM with projections trained from the
command line, saved, sampled, continued, and the flag's refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnncore.checkpoint import load_checkpoint
from rnncore.corpus import default_corpus

TINY = ["--rnn-size", "16", "--num-layers", "2", "--seq-length", "16", "--batch-size", "4"]


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
    path = tmp_path / "small.txt"
    path.write_text(default_corpus()[:3000], encoding="utf-8")
    return path


def test_train_sample_and_continue_with_a_projection(tmp_path, corpus):
    common = ("--data", corpus, "--no-progress")
    done = rnncore(
        "train", *TINY, "--proj-size", 6, "--max-steps", 8, "--eval-every", 4, "--out", "run",
        *common, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ckpt = load_checkpoint(tmp_path / "run" / "latest")
    assert ckpt.state["model_config"]["proj_size"] == 6
    assert ckpt.model["rnn.weight_hr_l1"].shape == (6, 16)
    assert ckpt.model["head.weight"].shape[1] == 6
    sample = rnncore("sample", "--checkpoint", tmp_path / "run", "--length", 20, cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr
    packed = rnncore("sample", "--checkpoint", tmp_path / "run", "--weights", "int8", cwd=tmp_path)
    assert packed.returncode == 2 and "no compiled decoder" in packed.stderr, packed.stderr
    more = rnncore(
        "train", "--init-from", tmp_path / "run", "--max-steps", 10, *common, cwd=tmp_path
    )
    assert more.returncode == 0, more.stderr
    assert load_checkpoint(tmp_path / "run" / "latest").state["trainer"]["step"] == 10
    clash = rnncore(
        "train", "--init-from", tmp_path / "run", "--proj-size", 3, *common, cwd=tmp_path
    )
    assert clash.returncode == 2 and "--proj-size differs" in clash.stderr


@pytest.mark.parametrize(
    "flags, words",
    [
        (("--proj-size", 16), "smaller than hidden_size"),
        (("--proj-size", -2), "positive integer or zero"),
        (("--proj-size", 4, "--model", "gru"), "plain LSTM"),
        (("--proj-size", 4, "--min-char-rnn"), "--proj-size"),
    ],
)
def test_bad_proj_size_is_one_line_and_status_2(tmp_path, corpus, flags, words):
    done = rnncore("train", "--data", corpus, *TINY, *flags, "--max-steps", 1, cwd=tmp_path)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
