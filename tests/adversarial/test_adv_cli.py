"""CLI-fault probes: every user error is one line on stderr and exit status 2.

Each bad invocation of the table runs as a user runs it (a subprocess). It must
print ``rnncore: error: ...`` on one line, no traceback, exit 2, and change no
file outside its ``--out`` directory.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from .conftest import TINY, run_cli
from .test_adv_paths import tree

T = ("train", "--data", "text.txt", *TINY, "--max-steps", "2", "--out", "out")
S = ("sample", "--checkpoint", "run")

CASES = {
    "missing data": (("train", "--data", "missing.txt", "--out", "out"), "missing.txt"),
    "binary data": (("train", "--data", "binary.bin", "--out", "out"), "UTF-8"),
    "empty data": (("train", "--data", "empty.txt", "--out", "out"), "empty.txt"),
    "zero hidden size": ((*T, "--rnn-size", "0"), "rnn"),
    "negative batch": ((*T, "--batch-size", "-3"), "batch"),
    "zero seq length": ((*T, "--seq-length", "0"), "seq"),
    "fractions": ((*T, "--val-fraction", "0.6", "--test-fraction", "0.5"), "fraction"),
    "dropout above 1": ((*T, "--dropout", "1.5"), "dropout"),
    "nan lr": ((*T, "--lr", "nan"), "lr"),
    "out is a file": (("train", "--data", "text.txt", "--out", "text.txt"), "not a directory"),
    "model of a resumed run": (
        ("train", "--init-from", "run", "--data", "text.txt", "--model", "gru"),
        "--model",
    ),
    "negative temperature": ((*S, "--temperature", "-1"), "temperature"),
    "zero top-k": ((*S, "--top-k", "0"), "top"),
    "top-p above 1": ((*S, "--top-p", "2"), "top"),
    "negative length": ((*S, "--length", "-1"), "--length"),
    "no checkpoint": (("sample", "--checkpoint", "nowhere"), "nowhere"),
    "nested state.json": (("sample", "--checkpoint", "deep"), "state.json"),
    "huge integer in state.json": (("sample", "--checkpoint", "bigint"), "state.json"),
    "score a missing file": (("score", "--checkpoint", "run", "--file", "missing.txt"), "missing"),
    "inspect a missing file": (
        ("inspect", "--checkpoint", "run", "--file", "missing.txt", "--out", "out"),
        "missing",
    ),
    "sweep grid not JSON": (("sweep", "--grid", "text.txt", "--out", "out"), "text.txt"),
    "empty data path": (("train", "--data", "", "--out", "out"), "--data: an empty path"),
    "empty out path": (("train", "--data", "text.txt", "--out", ""), "--out: an empty path"),
    # argparse's own refusals, as one line too
    "not an integer": ((*T, "--rnn-size", "nan"), "--rnn-size"),
    "unknown cell": ((*T, "--model", "foo"), "--model"),
    "no checkpoint given": (("sample",), "--checkpoint"),
    "no command": ((), "command"),
    "unknown option": ((*S, "--temprature", "1"), "--temprature"),
    # values that overflow the float type, without NumPy's warnings
    "forget bias beyond float32": ((*T, "--forget-bias", "1e308"), "forget_bias"),
    "page-chars 0, before the analysis": (
        (
            "inspect",
            "--checkpoint",
            "run",
            "--file",
            "text.txt",
            "--out",
            "out",
            "--page-chars",
            "0",
        ),
        "page_chars",
    ),
    "settings not an object": (
        ("train", "--init-from", "nosettings", "--data", "text.txt", "--out", "out"),
        "extra.settings",
    ),
    "extra not an object": (
        ("train", "--init-from", "noextra", "--data", "text.txt", "--out", "out"),
        "extra.settings",
    ),
}


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_run):
    root = tmp_path_factory.mktemp("adv-cli")
    shutil.copy(tiny_run.parent / "text.txt", root / "text.txt")
    shutil.copytree(tiny_run, root / "run")
    (root / "binary.bin").write_bytes(b"\x00\xff\xfe\x80" * 10)
    (root / "empty.txt").write_text("")
    for name, text in (("deep", "[" * 100_000), ("bigint", '{"format": ' + "7" * 5000 + "}")):
        shutil.copytree(tiny_run / "latest", root / name)
        (root / name / "state.json").write_text(text)
    for name in ("nosettings", "noextra"):  # state.json edited: it is not hashed
        shutil.copytree(tiny_run / "latest", root / name)
        state = json.loads((root / name / "state.json").read_text())
        if name == "nosettings":
            state["extra"]["settings"] = None
        else:
            state["extra"] = "x"
        (root / name / "state.json").write_text(json.dumps(state))
    return root


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_invocation_is_one_line_and_status_2(home, case):
    args, words = CASES[case]
    before = {k: v for k, v in tree(home).items() if not k.startswith("out" + os.sep)}
    done = run_cli(*args, cwd=home)
    assert done.returncode == 2, (args, done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.startswith("rnncore: error:") and done.stderr.count("\n") == 1, done.stderr
    assert words in done.stderr, done.stderr
    after = {k: v for k, v in tree(home).items() if not k.startswith("out" + os.sep)}
    if "out" not in args:
        after.pop(os.path.join("rnncore-run", ".rnncore-run"), None)  # the default --out
    assert after == before
    shutil.rmtree(home / "out", ignore_errors=True)
    shutil.rmtree(home / "rnncore-run", ignore_errors=True)
