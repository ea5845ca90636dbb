"""The PyTorch word-language-model example, with torch.nn.LSTM and with
rnncore.torch.LSTM swapped in: from the same seed (so the same initial weights)
20 training steps give the same losses, to 1e-5 in float32 and 1e-10 in float64."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "word_lm.py"


@pytest.fixture(scope="module")
def word_lm():
    spec = importlib.util.spec_from_file_location("word_lm", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """About 12,000 words drawn from a Zipf law over 400 word forms, 12 to a line."""
    rng = np.random.default_rng(0)
    ids = np.minimum(rng.zipf(1.3, size=12_000), 400)
    lines = [" ".join(f"w{i}" for i in ids[k : k + 12]) for k in range(0, len(ids), 12)]
    path = tmp_path_factory.mktemp("word_lm") / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(("dtype_flag", "rtol"), [([], 1e-5), (["--float64"], 1e-10)])
def test_twenty_steps_agree(word_lm, corpus, dtype_flag, rtol):
    argv = ["--data", corpus, "--vocab-size", "300", "--emsize", "24", "--nhid", "32"]
    argv += ["--batch-size", "5", "--bptt", "12", "--max-steps", "20", "--dropout", "0"]
    theirs = np.array(word_lm.main(argv + dtype_flag))
    ours = np.array(word_lm.main([*argv, *dtype_flag, "--rnncore"]))
    assert len(theirs) == len(ours) == 20
    assert theirs[-1] < theirs[0] - 1.0  # it learns
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0)


def test_saves_a_checkpoint_torch_loads(word_lm, corpus, tmp_path):
    path = tmp_path / "model.pt"
    argv = ["--data", corpus, "--vocab-size", "50", "--emsize", "8", "--nhid", "8"]
    argv += ["--batch-size", "4", "--bptt", "6", "--max-steps", "3", "--rnncore"]
    word_lm.main([*argv, "--save", str(path)])
    state = torch.load(path)
    model = word_lm.RNNModel(torch.nn.LSTM, 50, 8, 8, 2, 0.0)
    assert model.load_state_dict(state) == ([], [])


def test_the_flag_swaps_the_class(word_lm):
    import rnncore.torch

    assert word_lm.lstm_class(True) is rnncore.torch.LSTM
    assert word_lm.lstm_class(False) is torch.nn.LSTM
