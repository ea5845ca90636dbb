"""``rnncore inspect`` and :func:`rnncore.diagnostics.report.write_report`: the files
written, what the page holds, and bad input (empty or too large files, unknown
characters, a cell out of range, a word-level model)."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from rnncore.corpus import default_corpus
from rnncore.data.vocab import CharVocab, WordVocab
from rnncore.diagnostics import report
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig

TINY = ["--rnn-size", "12", "--num-layers", "2", "--seq-length", "16", "--batch-size", "4"]


def rnncore(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "rnncore", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny model trained for a few steps, and a text file."""
    d = tmp_path_factory.mktemp("inspect")
    text = d / "text.txt"
    text.write_text(default_corpus()[:4000], encoding="utf-8")
    done = rnncore("train", "--data", text, *TINY, "--max-steps", 5, "--out", d / "run", cwd=d)
    assert done.returncode == 0, done.stderr
    return d


def test_inspect_writes_the_page(run):
    out = run / "page"
    done = rnncore(
        "inspect", "--checkpoint", run / "run", "--file", run / "text.txt", "--out", out,
        "--page-chars", 300, "--top", 2, cwd=run,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "in_quote" in done.stdout and "held-out" in done.stdout
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<script src" not in page and "http" not in page.split("<script")[0]  # self-contained
    assert 'id="cell"' in page and "found automatically" in page
    assert (out / "saturation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader(open(out / "cells.csv", encoding="utf-8")))
    assert rows and {"feature", "signal", "layer", "unit", "r", "r_held_out"} <= set(rows[0])
    assert all(-1 <= float(r["r"]) <= 1 for r in rows)


def test_unknown_characters_are_listed_and_skipped(run):
    f = run / "odd.txt"
    f.write_text("the \u2603 cat \u2603 sat \u00e6 on the mat. " * 10, encoding="utf-8")
    out = run / "odd"
    done = rnncore("inspect", "--checkpoint", run / "run", "--file", f, "--out", out, cwd=run)
    assert done.returncode == 0, done.stderr
    assert "'\u2603'" in done.stderr and "skipped" in done.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "skipped" in page and "\u2603" in page  # the note on the page names them
    assert "constant on this text" in done.stderr and "in_quote" in done.stderr


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("", [], "empty"),
        ("hello there, world", ["--cell", "2:0"], "out of range"),
        ("hello there, world", ["--cell", "0:12"], "out of range"),
        ("hello there, world", ["--cell", "x"], "LAYER:UNIT"),
        ("hello there, world", ["--page-chars", 10**6], "page_chars"),
        ("\u2603\u2603\u2603\u2603\u2603", [], "at least 4"),
    ],
)
def test_bad_input_is_one_clear_line(run, content, args, message):
    f = run / "bad.txt"
    f.write_text(content, encoding="utf-8")
    done = rnncore(
        "inspect", "--checkpoint", run / "run", "--file", f, "--out", run / "bad", *args, cwd=run
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_limits_and_sampling(tmp_path, monkeypatch):
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000, encoding="utf-8")
    monkeypatch.setattr(report, "MAX_FILE_BYTES", 1000)
    with pytest.raises(ArgumentError, match="more than"):
        report.read_text(big)
    vocab = CharVocab.from_text("abc ")
    text, notes = report.prepare_text("abc " * 100, vocab, max_chars=50)
    assert len(text) == 50 and "sample" in notes[0]
    with pytest.raises(ArgumentError, match="character-level"):
        report.prepare_text("a b", WordVocab.from_text("a b"), 10)


def test_write_report_api_and_cell_out_of_range(tmp_path):
    text = 'say "hi" (to me) 12 times\n' * 30
    vocab = CharVocab.from_text(text)
    model = CharLM(LMConfig(vocab_size=len(vocab), cell="gru", hidden_size=6, seed=0))
    with pytest.raises(ArgumentError, match="out of range"):
        report.write_report(model, vocab, text, tmp_path, cell="0:6")
    rep = report.write_report(model, vocab, text, tmp_path, cell="1:5", page_chars=100)
    assert rep.chars_analysed == len(text) and rep.found
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert '"initial": "h:1:5"' in page and np.isfinite([f.corr for f in rep.found]).all()


def test_a_vanilla_rnn_has_no_saturation_plot(tmp_path):
    text = 'a "b" (c) 1.5\n' * 50
    vocab = CharVocab.from_text(text)
    model = CharLM(LMConfig(vocab_size=len(vocab), cell="rnn_tanh", hidden_size=5, seed=0))
    rep = report.write_report(model, vocab, text, tmp_path)
    assert {f.signal for f in rep.found} == {"h"}
    assert "a vanilla RNN has no gates" in (tmp_path / "index.html").read_text(encoding="utf-8")
    assert not (tmp_path / "saturation.png").exists()


def test_a_feature_constant_on_the_held_out_part_reads_n_a():
    from rnncore.diagnostics.cells import FoundCell
    from rnncore.diagnostics.page import _table

    none = FoundCell("in_comment", "h", 0, 3, 0.25, float("nan"))
    some = FoundCell("in_quote", "h", 1, 2, -0.5, -0.4)
    assert none.held_out_text("+.3f") == "n/a" and some.held_out_text("+.3f") == "-0.400"
    table = _table([none, some])
    assert "<td>n/a</td>" in table and "<td>-0.400</td>" in table and "nan" not in table
