"""`rnncore seq2seq train` and `rnncore translate` end to end."""

from __future__ import annotations

import io
import sys

import pytest

from rnncore.checkpoint import load_checkpoint, load_model
from rnncore.cli import main
from rnncore.data import date_pairs, write_pairs
from rnncore.decode.seq2seq import translate
from rnncore.models import Seq2Seq


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small date model trained from a pairs file for 30 steps."""
    root = tmp_path_factory.mktemp("s2s")
    write_pairs(root / "dates.tsv", date_pairs(600, seed=3))
    args = ["seq2seq", "train", "--pairs", root / "dates.tsv", "--rnn-size", 24]
    args += ["--embedding-size", 12, "--max-steps", 30, "--eval-every", 10, "--batch-size", 32]
    assert main([*map(str, args), "--out", str(root / "run"), "--no-progress"]) == 0
    return root


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_training_writes_a_run_that_loads_as_a_seq2seq_model(run):
    model, vocabs, ckpt = load_model(run / "run" / "best")
    assert isinstance(model, Seq2Seq) and model.config.hidden_size == 24
    assert vocabs.target.decode(vocabs.target.encode("1998-05-03")[0]) == "1998-05-03"
    assert ckpt.state["extra"]["settings"]["pairs"] == str((run / "dates.tsv").resolve())
    assert (run / "run" / "metrics.csv").read_text().count("\n") >= 3


def test_translate_reads_stdin_and_matches_the_python_decoders(run, monkeypatch, capsys):
    model, vocabs, _ = load_model(run / "run" / "best")
    lines = ["3 May 1998", "Sunday, May 3rd 1998", "12/24/07"]
    _stdin(monkeypatch, "".join(f"{x}\n" for x in lines).encode())
    assert main(["translate", "--checkpoint", str(run / "run")]) == 0
    greedy = capsys.readouterr().out.splitlines()
    expected = [
        vocabs.target.decode(translate(model, vocabs.source.encode(x)[0])[0].ids) for x in lines
    ]
    assert greedy == expected  # batched greedy == beam 1, one sentence at a time
    (run / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["translate", "--checkpoint", str(run / "run"), "--file", str(run / "in.txt")]
    assert main([*args, "--beam", "4", "--n-best", "2"]) == 0
    out = capsys.readouterr().out.split("\n\n")
    assert len(out) == 4 and out[-1] == ""  # three groups, each followed by an empty line
    for group, line in zip(out, lines):
        rows = [r.split("\t") for r in group.strip("\n").splitlines()]
        assert [r[0] for r in rows] == ["1", "2"]
        assert float(rows[0][1]) >= float(rows[1][1])
        best = translate(model, vocabs.source.encode(line)[0], beam_size=4, n_best=2)
        assert rows[0][2] == vocabs.target.decode(best[0].ids)


def test_translate_with_an_ensemble(run, monkeypatch, capsys):
    _stdin(monkeypatch, b"3 May 1998\n12/24/07\n")
    ckpt = ["translate", "--checkpoint", str(run / "run")]
    assert main([*ckpt, "--beam", "3"]) == 0
    alone = capsys.readouterr().out
    _stdin(monkeypatch, b"3 May 1998\n12/24/07\n")
    assert main([*ckpt, "--beam", "3", "--ensemble", str(run / "run" / "latest")]) == 0
    assert capsys.readouterr().out.count("\n") == 2 and alone.count("\n") == 2
    _stdin(monkeypatch, b"x\n")
    assert main([*ckpt, "--ensemble-mode", "logprob"]) == 2
    assert "--ensemble-mode needs --ensemble" in capsys.readouterr().err


def test_translate_writes_the_attention_heatmap(run, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    _stdin(monkeypatch, b"3 May 1998\n")
    png = run / "attention.png"
    assert main(["translate", "--checkpoint", str(run / "run"), "--attention-png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_source_symbols_are_counted(run, monkeypatch, capsys):
    _stdin(monkeypatch, "3 May 1998 ✓✓\n".encode())
    assert main(["translate", "--checkpoint", str(run / "run")]) == 0
    assert "2 symbols of stdin not in the vocabulary became <unk>" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\n", "stdin, line 1: not valid UTF-8"),
        (b"3 May 1998\n\n", "stdin, line 2: empty"),
        (b"", "stdin: no lines to translate"),
    ],
)
def test_bad_translation_input_names_the_line(run, monkeypatch, capsys, data, message):
    _stdin(monkeypatch, data)
    assert main(["translate", "--checkpoint", str(run / "run")]) == 2
    assert message in capsys.readouterr().err


def test_resume_needs_the_pairs_again_and_continues(run, capsys):
    args = ["seq2seq", "train", "--init-from", str(run / "run"), "--no-progress"]
    assert main([*args, "--max-steps", "35"]) == 2
    assert "give the file with --pairs FILE" in capsys.readouterr().err
    assert main([*args, "--max-steps", "35", "--pairs", str(run / "dates.tsv")]) == 0
    assert "stopped at step 35" in capsys.readouterr().out
    assert load_checkpoint(run / "run" / "latest").state["trainer"]["step"] == 35
    assert main([*args, "--pairs", str(run / "dates.tsv"), "--rnn-size", "32"]) == 2
    assert "--rnn-size differs from the checkpoint's 24" in capsys.readouterr().err


def test_the_built_in_task_and_scheduled_sampling_flags(tmp_path, capsys):
    args = ["seq2seq", "train", "--task", "dates", "--task-size", "200", "--rnn-size", "8"]
    args += ["--max-steps", "2", "--out", str(tmp_path / "r"), "--no-progress"]
    assert main(args) == 0
    assert main([*args[:-3], "--out", str(tmp_path / "s"), "--sampling-k", "5"]) == 2
    assert "sampling_k and sampling_floor need a sampling_decay" in capsys.readouterr().err
    plain = [*args[:-3], "--out", str(tmp_path / "p"), "--attention", "none", "--no-progress"]
    assert main(plain) == 0
    sampled = [*args[:-3], "--out", str(tmp_path / "s"), "--no-progress"]
    assert main([*sampled, "--sampling-decay", "inverse_sigmoid", "--sampling-k", "10"]) == 0
    ckpt = load_checkpoint(tmp_path / "s" / "latest")
    assert ckpt.state["train_config"]["sampling_decay"] == "inverse_sigmoid"


def test_misuse_is_one_line(run, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\nno tab here\n", encoding="utf-8")
    out = str(tmp_path / "o")
    assert main(["seq2seq", "train", "--pairs", str(bad), "--out", out]) == 2
    assert f"{bad}, line 2: no tab between source and target" in capsys.readouterr().err
    assert main(["seq2seq", "train", "--out", out]) == 2
    assert "give --pairs FILE or --task" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(run / "run")]) == 2
    assert "holds a Seq2Seq, not a language model" in capsys.readouterr().err
    _stdin(monkeypatch, b"x\n")
    assert (
        main(["translate", "--checkpoint", str(run / "run"), "--beam", "2", "--n-best", "3"]) == 2
    )
    assert "--n-best 3 needs --beam of at least 3" in capsys.readouterr().err
    ckpt = ["translate", "--checkpoint", str(run / "run")]
    assert main([*ckpt, "--file", str(tmp_path / "none.txt")]) == 2
    assert "none.txt: no such file" in capsys.readouterr().err
    assert main([*ckpt, "--attention-png", str(tmp_path / "no" / "a.png")]) == 2
    assert "no directory" in capsys.readouterr().err


def test_translate_refuses_a_language_model(tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "c.txt"
    corpus.write_text("hello world " * 200, encoding="utf-8")
    args = ["train", "--data", str(corpus), "--rnn-size", "8", "--num-layers", "1"]
    assert main([*args, "--max-steps", "2", "--out", str(tmp_path / "lm"), "--no-progress"]) == 0
    _stdin(monkeypatch, b"x\n")
    assert main(["translate", "--checkpoint", str(tmp_path / "lm")]) == 2
    assert "holds a CharLM, not a seq2seq model" in capsys.readouterr().err
