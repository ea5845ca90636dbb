"""Checkpoint probes: a checkpoint is input, read as a hostile one would be written.

Everything is validated before anything is built, every read is of a regular
file with a size cap, JSON is bounded in depth and in the size of its integers,
no regular expression from a file is run, and each problem is a
:class:`CheckpointError` naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from rnncore.checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
from rnncore.checkpoint.format import STATE_FILE
from rnncore.data import CharVocab, WordVocab, vocab_from_dict
from rnncore.errors import ArgumentError, CheckpointError
from rnncore.models import CharLM, LMConfig

from .conftest import run_cli


def saved(tmp_path, vocab=None, **config):
    vocab = vocab or CharVocab.from_text("hello world")
    cfg = {"hidden_size": 8, "num_layers": 2, "seed": 3, **config}
    model = CharLM(LMConfig(vocab_size=len(vocab), **cfg))
    state = {"model_config": dataclasses.asdict(model.config), "vocab": vocab.to_dict()}
    path = tmp_path / "ck"
    save_checkpoint(path, Checkpoint(model=model.state_dict(), state=state))
    return path


def edit_state(path, change):
    """Rewrite state.json through ``change(document)`` (hashes stay valid)."""
    where = path / STATE_FILE
    document = json.loads(where.read_text())
    change(document)
    where.write_text(json.dumps(document))


def test_a_small_state_json_cannot_make_the_model_allocate(tmp_path):
    path = saved(tmp_path)
    edit_state(path, lambda d: d["model_config"].update(hidden_size=12000))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"model\.safetensors: head\.weight"):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20  # a 12000-unit model would need about 7 GB


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda d: d["model_config"].update(num_layers=3), "3 layers"),
        (lambda d: d["model_config"].update(embedding_dim=4), "embedding.weight"),
        (lambda d: d["model_config"].update(vocab_size=5000), "vocabulary has 8 symbols"),
        (lambda d: d["model_config"].update(cell="gru"), r"rnn\.bias_hh_l0 is float32 \(32,\)"),
    ],
)
def test_sizes_that_disagree_with_the_tensors_name_them(tmp_path, change, field):
    path = saved(tmp_path)
    edit_state(path, change)
    with pytest.raises(CheckpointError, match=field):
        load_model(path)


@pytest.mark.parametrize("layers", [10**9, 2**62])
def test_a_huge_layer_count_is_refused_at_once(tmp_path, layers):
    path = saved(tmp_path)
    edit_state(path, lambda d: d["model_config"].update(num_layers=layers))
    started = time.perf_counter()
    with pytest.raises(CheckpointError, match=f"needs {layers} layers"):
        load_model(path)
    assert time.perf_counter() - started < 5  # not one layer built, not one name listed


def test_json_nested_without_end_is_a_checkpoint_error(tmp_path):
    path = saved(tmp_path)
    (path / STATE_FILE).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match=r"state\.json: nested too deeply"):
        load_checkpoint(path)
    (path / STATE_FILE).write_text('{"a":' * 40 + "1" + "}" * 40)
    with pytest.raises(CheckpointError, match=r"state\.json: nested more than 32"):
        load_checkpoint(path)


def test_a_huge_integer_is_a_checkpoint_error(tmp_path):
    path = saved(tmp_path)
    edit_state(path, lambda d: d["model_config"].update(hidden_size=0))
    huge = '"hidden_size": ' + "9" * 5000
    text = (path / STATE_FILE).read_text().replace('"hidden_size": 0', huge)
    (path / STATE_FILE).write_text(text)
    with pytest.raises(CheckpointError, match=r"state\.json: an integer of 5000 digits"):
        load_checkpoint(path)


def test_state_json_must_be_a_regular_file(tmp_path):
    path = saved(tmp_path)
    (path / STATE_FILE).unlink()
    (path / STATE_FILE).symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=r"state\.json: not a regular file"):
        load_checkpoint(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    path = saved(tmp_path)
    (path / STATE_FILE).unlink()
    os.mkfifo(path / STATE_FILE)
    code = (
        "import sys\nfrom rnncore.checkpoint import load_checkpoint\n"
        "from rnncore.errors import CheckpointError\n"
        f"try:\n    load_checkpoint({str(path)!r})\n"
        "except CheckpointError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "not a regular file" in done.stdout, done.stderr


def test_a_tensor_file_larger_than_recorded_is_not_read_whole(tmp_path):
    path = saved(tmp_path)
    with open(path / "model.safetensors", "ab") as f:
        f.write(b"\0" * 1000)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: \d+ bytes, more than"):
        load_checkpoint(path)


@pytest.mark.parametrize("bad", ["123", 12.0, -1, True, None])
def test_a_bytes_field_of_the_wrong_kind_is_named(tmp_path, bad):
    path = saved(tmp_path)
    edit_state(path, lambda d: d["files"]["model.safetensors"].update(bytes=bad))
    with pytest.raises(CheckpointError, match=r"invalid 'bytes' for model\.safetensors"):
        load_checkpoint(path)


def test_a_stored_regex_is_never_run(tmp_path):
    vocab = WordVocab.from_text("the cat sat on the mat")
    path = saved(tmp_path, vocab=vocab)
    edit_state(path, lambda d: d["vocab"].update(pattern=r"(?:a+)+x|\w+"))
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="regular expression"):
        load_model(path)
    assert time.perf_counter() - start < 2
    edit_state(path, lambda d: (d["vocab"].pop("pattern"), d["vocab"].update(tokenizer="re:.*")))
    with pytest.raises(CheckpointError, match="tokenizer must be one of"):
        load_model(path)


def test_word_vocabularies_name_their_tokenizer():
    vocab = WordVocab.from_text("a b, c\nd", tokenizer="whitespace")
    assert vocab.to_dict()["tokenizer"] == "whitespace" and "pattern" not in vocab.to_dict()
    assert vocab_from_dict(vocab.to_dict()) == vocab
    assert vocab.tokenize("a b, c\n") == ["a", "b,", "c", "\n"]
    # a dict written with the default pattern still reads, as the "words" tokenizer
    old = {**WordVocab.from_text("a b").to_dict(), "pattern": r"\w+|[^\w\s]|\n"}
    del old["tokenizer"]
    assert vocab_from_dict(old).tokenizer == "words"
    with pytest.raises(ArgumentError, match="tokenizer"):
        WordVocab(["<unk>"], tokenizer="chars")


def test_nan_weights_name_the_file_and_the_tensor(tmp_path):
    path = saved(tmp_path)
    ckpt = load_checkpoint(path)
    ckpt.model["rnn.bias_hh_l1"] = ckpt.model["rnn.bias_hh_l1"].copy()
    ckpt.model["rnn.bias_hh_l1"][3] = np.nan
    save_checkpoint(path, ckpt)
    with pytest.raises(CheckpointError, match=r"model\.safetensors: tensor 'rnn\.bias_hh_l1'"):
        load_model(path)


def test_the_cli_reports_a_crafted_checkpoint_in_one_line(tmp_path):
    path = saved(tmp_path)
    (path / STATE_FILE).write_text("[" * 100_000)
    done = run_cli("sample", "--checkpoint", path, "--length", "5", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nested too deeply" in done.stderr
