"""ONNX export: onnxruntime runs the exported graph and agrees with rnncore's
forward to 1e-5 in float32: every cell, one and two layers, bidirectional, with
and without lengths, batch-first, no bias, and the models. float64 is refused
(onnxruntime's RNN, LSTM and GRU operators have no float64 kernels)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnncore import ArgumentError, DTypeError, nn  # noqa: E402
from rnncore.cli import main  # noqa: E402
from rnncore.export import to_onnx  # noqa: E402
from rnncore.models import (  # noqa: E402
    CharLM,
    ClassifierConfig,
    LMConfig,
    SequenceClassifier,
    SequenceTagger,
    TaggerConfig,
)

CELLS = {
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
    "gru_reset_before": (nn.GRU, {"reset_after": False}),  # ONNX linear_before_reset = 0
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
}
TOL = {np.float32: 1e-5}


def run_onnx(model, tmp_path, feeds, **kwargs):
    path = tmp_path / "model.onnx"
    to_onnx(model, path, **kwargs)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert {i.name for i in session.get_inputs()} == set(feeds)
    return session.run(None, feeds)


def assert_close(got, expected, dtype):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_layers(tmp_path, cell, num_layers, bidirectional, with_lengths):
    cls, extra = CELLS[cell]
    layer = cls(5, 7, num_layers, bidirectional=bidirectional, seed=1, **extra).eval()
    rng = np.random.default_rng(2)
    LD = num_layers * (2 if bidirectional else 1)
    x = rng.standard_normal((6, 4, 5), dtype=np.float32)
    h0 = rng.standard_normal((LD, 4, 7), dtype=np.float32)
    c0 = rng.standard_normal((LD, 4, 7), dtype=np.float32)
    lengths = np.array([3, 6, 1, 5])
    lstm = cell == "lstm"
    out, state = layer(x, (h0, c0) if lstm else h0, lengths=lengths if with_lengths else None)
    feeds = {"x": x, "h0": h0, **({"c0": c0} if lstm else {})}
    if with_lengths:
        feeds["lengths"] = lengths.astype(np.int64)
    got = run_onnx(layer, tmp_path, feeds, lengths=with_lengths)
    assert_close(got, [out, *(state if lstm else (state,))], np.float32)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn_relu"])
def test_layer_batch_first_without_bias(tmp_path, cell):
    cls, extra = CELLS[cell]
    layer = cls(3, 4, 2, batch_first=True, bias=False, bidirectional=True, seed=3, **extra)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 3), dtype=np.float32)  # (N, T, D)
    h0, c0 = rng.standard_normal((2, 4, 2, 4), dtype=np.float32)
    lstm = cell == "lstm"
    out, state = layer(x, (h0, c0) if lstm else h0)
    got = run_onnx(layer, tmp_path, {"x": x, "h0": h0, **({"c0": c0} if lstm else {})})
    assert_close(got, [out, *(state if lstm else (state,))], np.float32)


def test_float64_is_refused(tmp_path):
    with pytest.raises(DTypeError, match="float32"):
        to_onnx(nn.GRU(3, 4, dtype=np.float64), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize(
    ("cell", "embedding_dim"),
    [("lstm", 8), ("gru", None), ("gru_reset_before", 5), ("rnn_tanh", 6)],
)
def test_char_lm(tmp_path, cell, embedding_dim):
    config = LMConfig(vocab_size=11, cell=cell, hidden_size=9, embedding_dim=embedding_dim)
    model = CharLM(config)
    model.eval()
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 11, size=(3, 7))
    state = model.initial_state(3)
    lstm = cell == "lstm"
    if lstm:
        state = tuple(rng.standard_normal(s.shape, dtype=np.float32) for s in state)
    logits, final = model(ids, state)
    feeds = {"ids": ids, "h0": state[0] if lstm else state}
    if lstm:
        feeds["c0"] = state[1]
    got = run_onnx(model, tmp_path, feeds)
    assert_close(got, [logits, *(final if lstm else (final,))], np.float32)


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier(tmp_path, pooling, bidirectional):
    config = ClassifierConfig(
        vocab_size=13, num_classes=4, num_layers=2, hidden_size=6,
        bidirectional=bidirectional, pooling=pooling,
    )  # fmt: skip
    model = SequenceClassifier(config)
    model.eval()
    ids = np.random.default_rng(6).integers(0, 13, size=(5, 8))
    lengths = np.array([8, 1, 4, 8, 2])
    got = run_onnx(model, tmp_path, {"ids": ids, "lengths": lengths})
    assert_close(got, [model(ids, lengths)], np.float32)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_tagger(tmp_path, cell):
    config = TaggerConfig(vocab_size=10, num_tags=3, cell=cell, bidirectional=True, hidden_size=5)
    model = SequenceTagger(config)
    model.eval()
    ids = np.random.default_rng(7).integers(0, 10, size=(4, 6))
    lengths = np.array([6, 2, 5, 3])
    got = run_onnx(model, tmp_path, {"ids": ids, "lengths": lengths})
    assert_close(got, [model(ids, lengths)], np.float32)


def test_feature_models(tmp_path):
    """Float features (N, T, D) as the input ``x``; the MSE tagger's outputs."""
    config = TaggerConfig(vocab_size=0, input_size=3, num_tags=2, objective="mse", hidden_size=5)
    model = SequenceTagger(config).eval()
    x = np.random.default_rng(8).standard_normal((4, 6, 3)).astype(np.float32)
    lengths = np.array([6, 2, 5, 3])
    got = run_onnx(model, tmp_path, {"x": x, "lengths": lengths})
    assert_close(got, [model(x, lengths)], np.float32)
    config = ClassifierConfig(vocab_size=0, input_size=3, num_classes=4, hidden_size=5)
    model = SequenceClassifier(config).eval()
    got = run_onnx(model, tmp_path, {"x": x, "lengths": lengths})
    assert_close(got, [model(x, lengths)], np.float32)


def test_cells_without_an_onnx_operator_are_refused(tmp_path):
    with pytest.raises(ArgumentError, match="lstm_cifg cell has no standard ONNX operator"):
        to_onnx(nn.LSTM(3, 4, cifg=True), tmp_path / "x.onnx")
    with pytest.raises(ArgumentError, match="lstm_peephole cell has no standard ONNX operator"):
        to_onnx(nn.LSTM(3, 4, peephole=True), tmp_path / "x.onnx")
    for layer in (nn.MUT1(4, 4), nn.MUT2(4, 4), nn.MUT3(3, 4)):
        with pytest.raises(ArgumentError, match=r"mut[123] cell has no standard ONNX operator"):
            to_onnx(layer, tmp_path / "x.onnx")


def test_other_objects_are_refused(tmp_path):
    with pytest.raises(ArgumentError, match="CharLM"):
        to_onnx(nn.Linear(3, 4), tmp_path / "x.onnx")


def test_export_command(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\n" * 40, encoding="utf-8")
    run = tmp_path / "run"
    train = ["train", "--data", text, "--rnn-size", "8", "--num-layers", "2", "--seq-length"]
    train += ["8", "--batch-size", "2", "--max-steps", "2", "--out", run, "--no-progress"]
    assert main([str(a) for a in train]) == 0
    onnx_path = tmp_path / "lm.onnx"
    assert main(["export", "--checkpoint", str(run), "--onnx", str(onnx_path)]) == 0
    assert "wrote" in capsys.readouterr().out
    from rnncore.checkpoint import load_model

    model, _, _ = (
        load_model(run / "best") if (run / "best").exists() else load_model(run / "latest")
    )
    ids = np.random.default_rng(8).integers(0, model.config.vocab_size, size=(2, 5))
    h0, c0 = model.initial_state(2)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"ids": ids, "h0": h0, "c0": c0})
    logits, (h_n, c_n) = model(ids, (h0, c0))
    assert_close(got, [logits, h_n, c_n], np.float32)
