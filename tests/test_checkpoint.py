"""Checkpoint format: round trip, verification on load, atomic replacement."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnncore.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from rnncore.checkpoint.atomic import old_path
from rnncore.checkpoint.format import MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, TRAIN_FILE
from rnncore.checkpoint.model import check_tensors
from rnncore.checkpoint.tree import flatten, unflatten
from rnncore.errors import ArgumentError, CheckpointError


def _ckpt(value: float = 1.0) -> Checkpoint:
    return Checkpoint(
        model={"w": np.full((3, 4), value, np.float32), "b": np.arange(4.0) + value},
        optimizer={"m.w": np.zeros((3, 4), np.float32), "t": np.array(7, np.int64)},
        train={"state.0": np.ones((2, 5))},
        state={"step": int(value), "note": "ok", "rng": {"state": 2**100 + 3}},
    )


def test_round_trip_keeps_tensors_and_state_exactly(tmp_path):
    saved = _ckpt(2.5)
    save_checkpoint(tmp_path / "latest", saved)
    assert sorted(os.listdir(tmp_path)) == ["latest"]
    names = sorted(os.listdir(tmp_path / "latest"))
    assert names == sorted([MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, TRAIN_FILE])
    got = load_checkpoint(tmp_path / "latest")
    assert got.state == saved.state and got.path == tmp_path / "latest"
    for mine, theirs in zip(saved.tensor_files().values(), got.tensor_files().values()):
        assert mine.keys() == theirs.keys()
        for k in mine:
            assert mine[k].dtype == theirs[k].dtype
            np.testing.assert_array_equal(mine[k], theirs[k])
    manifest = json.loads((tmp_path / "latest" / STATE_FILE).read_text())["files"]
    assert manifest[MODEL_FILE]["tensors"]["w"] == {"dtype": "float32", "shape": [3, 4]}
    assert len(manifest[MODEL_FILE]["sha256"]) == 64


def test_saving_again_replaces_the_directory(tmp_path):
    save_checkpoint(tmp_path / "c", _ckpt(1.0))
    save_checkpoint(tmp_path / "c", _ckpt(2.0))
    assert load_checkpoint(tmp_path / "c").state["step"] == 2
    assert sorted(os.listdir(tmp_path)) == ["c"]  # no temp or old directory left


def test_state_must_be_plain_json_without_reserved_keys(tmp_path):
    with pytest.raises(ArgumentError, match="reserved"):
        save_checkpoint(tmp_path / "c", Checkpoint(model={}, state={"files": 1}))
    with pytest.raises(ArgumentError, match="JSON"):
        save_checkpoint(tmp_path / "c", Checkpoint(model={}, state={"loss": float("nan")}))
    assert not (tmp_path / "c").exists()


def _corrupt_cases():
    def truncate(d):
        data = (d / MODEL_FILE).read_bytes()
        (d / MODEL_FILE).write_bytes(data[: len(data) // 2])

    def flip(d):
        data = bytearray((d / OPTIMIZER_FILE).read_bytes())
        data[-1] ^= 0x01
        (d / OPTIMIZER_FILE).write_bytes(bytes(data))

    def edit_state(d, change):
        doc = json.loads((d / STATE_FILE).read_text())
        change(doc)
        (d / STATE_FILE).write_text(json.dumps(doc))

    def reshape(doc):
        doc["files"][MODEL_FILE]["tensors"]["w"]["shape"] = [4, 3]

    def garbage_model(d):
        data = b"\xff" * 40
        (d / MODEL_FILE).write_bytes(data)
        edit_state(
            d,
            lambda doc: doc["files"][MODEL_FILE].update(
                bytes=40, sha256=__import__("hashlib").sha256(data).hexdigest()
            ),
        )

    return {
        "truncated model": (truncate, MODEL_FILE, "truncated"),
        "flipped byte": (flip, OPTIMIZER_FILE, "SHA-256"),
        "missing train file": (lambda d: (d / TRAIN_FILE).unlink(), TRAIN_FILE, "missing"),
        "missing state": (lambda d: (d / STATE_FILE).unlink(), STATE_FILE, "missing"),
        "cut json": (
            lambda d: (d / STATE_FILE).write_text((d / STATE_FILE).read_text()[:50]),
            STATE_FILE,
            "JSON",
        ),
        "other format": (
            lambda d: edit_state(d, lambda doc: doc.update(format="x")),
            STATE_FILE,
            "not an rnncore",
        ),
        "future version": (
            lambda d: edit_state(d, lambda doc: doc.update(version=99)),
            STATE_FILE,
            "version",
        ),
        "shape in manifest": (lambda d: edit_state(d, reshape), MODEL_FILE, "shapes differ"),
        "not safetensors": (garbage_model, MODEL_FILE, "safetensors"),
    }


@pytest.mark.parametrize("case", list(_corrupt_cases()))
def test_every_damage_is_a_checkpoint_error_naming_the_file(tmp_path, case):
    damage, file, words = _corrupt_cases()[case]
    save_checkpoint(tmp_path / "c", _ckpt())
    damage(tmp_path / "c")
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(tmp_path / "c")
    assert file in str(info.value)


def test_missing_directory_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")


def test_check_tensors_compares_names_shapes_and_dtypes():
    want = {"w": np.zeros((2, 3), np.float32)}
    check_tensors("m", {"w": np.ones((2, 3), np.float32)}, want)
    for got, words in (
        ({"w": np.ones((3, 2), np.float32)}, "needs float32"),
        ({"w": np.ones((2, 3))}, "float64"),
        ({"v": np.ones((2, 3), np.float32)}, "missing"),
    ):
        with pytest.raises(CheckpointError, match=words):
            check_tensors("model.safetensors", got, want)


def _lm_checkpoint(tmp_path):
    """A CharLM's weights, config and vocabulary saved as a checkpoint."""
    import dataclasses

    from rnncore.data import CharVocab
    from rnncore.models import CharLM, LMConfig

    vocab = CharVocab.from_text("hello world")
    model = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=1, seed=3))
    state = {"model_config": dataclasses.asdict(model.config), "vocab": vocab.to_dict()}
    save_checkpoint(tmp_path / "lm", Checkpoint(model=model.state_dict(), state=state))
    return model, vocab


def test_load_model_rebuilds_the_model_and_checks_it_against_the_config(tmp_path):
    from rnncore.checkpoint import load_model

    model, vocab = _lm_checkpoint(tmp_path)
    loaded, got_vocab, _ = load_model(tmp_path / "lm")
    assert got_vocab == vocab and not loaded.training
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    ids = np.array([vocab.encode("hello")])
    assert loaded.loss(ids, ids)[0] == model.eval().loss(ids, ids)[0]

    def resave(change):
        ckpt = load_checkpoint(tmp_path / "lm")
        change(ckpt.state)
        save_checkpoint(tmp_path / "lm", ckpt)

    resave(lambda s: s["model_config"].update(hidden_size=9))
    with pytest.raises(CheckpointError, match=r"model\.safetensors: .*needs float32"):
        load_model(tmp_path / "lm")
    resave(lambda s: s["model_config"].update(hidden_size=8, cell="foo"))
    with pytest.raises(CheckpointError, match=r"state\.json: invalid model config"):
        load_model(tmp_path / "lm")
    resave(lambda s: s["model_config"].update(cell="lstm", vocab_size=3))
    with pytest.raises(CheckpointError, match=r"state\.json: the vocabulary has"):
        load_model(tmp_path / "lm")


def test_nested_state_flattens_and_comes_back():
    h, c = np.ones((2, 3, 4)), np.zeros((2, 3, 4))
    for state in (None, h, (h, c), [(h, c), (c, h)]):
        tensors, spec = flatten("state", state)
        back = unflatten("state", tensors, json.loads(json.dumps(spec)), "f")
        assert type(back) is type(state)
        flat_back, _ = flatten("state", back)
        assert flat_back.keys() == tensors.keys()
        assert all(np.array_equal(flat_back[k], tensors[k]) for k in tensors)
    with pytest.raises(CheckpointError, match="missing"):
        unflatten("state", {}, {"tuple": ["array"]}, "f")
    with pytest.raises(CheckpointError, match="invalid"):
        unflatten("state", {}, {"set": []}, "f")


def test_an_interrupted_swap_is_read_from_the_old_copy_then_repaired(tmp_path):
    target = tmp_path / "latest"
    save_checkpoint(target, _ckpt(1.0))
    os.replace(target, old_path(target))  # as if killed between the two renames
    (tmp_path / "latest.tmp-dead").mkdir()  # and a half-written new one
    assert load_checkpoint(target).state["step"] == 1
    save_checkpoint(target, _ckpt(2.0))
    assert load_checkpoint(target).state["step"] == 2
    assert sorted(os.listdir(tmp_path)) == ["latest"]


WRITER = """
import sys
import numpy as np
from rnncore.checkpoint import Checkpoint, save_checkpoint
i = 0
while True:
    i += 1
    big = np.full((256, 1024), i, np.float32)  # 1 MiB per file, so writes take a while
    save_checkpoint(sys.argv[1], Checkpoint(
        model={"w": big}, optimizer={"m": big + 1}, train={"s": np.array([i])},
        state={"i": i}))
    print(i, flush=True)
"""


def test_killing_a_writer_at_any_moment_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process that saves in a loop at random moments: every time, the
    directory loads, and all its files belong to one and the same save."""
    target = tmp_path / "latest"
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
        )
        first = int(proc.stdout.readline())  # one complete save so far
        time.sleep(float(rng.uniform(0.0, 0.25)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        ckpt = load_checkpoint(target)
        i = ckpt.state["i"]
        assert i >= first
        assert np.all(ckpt.model["w"] == i) and np.all(ckpt.optimizer["m"] == i + 1)
        assert ckpt.train["s"].tolist() == [i]
        seen.add(i)
    assert len(seen) > 1  # the kills did land at different points of the loop
