"""Fixtures of the adversarial probes: the CLI run as a user runs it, and one
tiny trained run to decode from."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rnncore.corpus import default_corpus

TINY = ["--num-layers", "1", "--rnn-size", "8", "--seq-length", "16", "--batch-size", "4"]
TINY += ["--eval-every", "2", "--no-progress"]


def run_cli(*args, cwd, timeout=180):
    """``python -m rnncore ARGS`` in ``cwd``: the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "rnncore", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run directory trained for 4 steps on a little of the bundled corpus."""
    root = tmp_path_factory.mktemp("adv-run")
    (root / "text.txt").write_text(default_corpus()[:3000], encoding="utf-8")
    done = run_cli(
        "train", "--data", "text.txt", *TINY, "--max-steps", "4", "--out", "run", cwd=root
    )
    assert done.returncode == 0, done.stderr
    return root / "run"
