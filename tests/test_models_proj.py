"""CharLM with an LSTM with projections (``LMConfig.proj_size``): the config's
checks, gradients against finite differences, state shapes, checkpoints, the
decoders, and the refusals of the compiled decoder and of ONNX export; the
``weight_hh`` initialisations on ``(4H, P)`` weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rnncore import nn
from rnncore.checkpoint import Checkpoint, load_model, save_checkpoint
from rnncore.data import CharVocab
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models import CharLM, LMConfig


def model(**kwargs):
    cfg = {"vocab_size": 7, "hidden_size": 6, "num_layers": 2, "proj_size": 3, **kwargs}
    return CharLM(LMConfig(**cfg))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"proj_size": -1}, "positive integer or zero"),
        ({"proj_size": 6}, "smaller than hidden_size"),
        ({"proj_size": 2.0}, "positive integer or zero"),
        ({"proj_size": 2, "cell": "gru"}, "plain LSTM"),
        ({"proj_size": 2, "cell": "lstm_peephole"}, "plain LSTM"),
    ],
)
def test_config_refuses_bad_proj_sizes(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        LMConfig(vocab_size=7, hidden_size=6, **kwargs)


def test_parameters_and_states_have_torch_shapes():
    m = model()
    shapes = {k: v.shape for k, v in m.named_parameters()}
    assert shapes["rnn.weight_hh_l0"] == (24, 3) and shapes["rnn.weight_hr_l1"] == (3, 6)
    assert shapes["rnn.weight_ih_l1"] == (24, 3) and shapes["head.weight"] == (7, 3)
    h, c = m.initial_state(4)
    assert h.shape == (2, 4, 3) and c.shape == (2, 4, 6)
    ids = np.zeros((4, 5), np.int64)
    _, (h_n, c_n) = m.loss(ids, ids, (h, c))
    assert h_n.shape == (2, 4, 3) and c_n.shape == (2, 4, 6)
    with pytest.raises(ShapeError, match=r"state\[0\].*proj_size"):
        m.loss(ids, ids, (c, c))
    with pytest.raises(ShapeError, match=r"state\[1\]"):
        m.loss(ids, ids, (h, h))


def test_gradients_match_finite_differences():
    m = model(dtype="float64", seed=4, embedding_dim=4)
    rng = np.random.default_rng(5)
    ids, targets = rng.integers(0, 7, (3, 5)), rng.integers(0, 7, (3, 5))
    state = tuple(0.3 * rng.standard_normal(s.shape) for s in m.initial_state(3))
    m.zero_grad()
    m.loss(ids, targets, state)
    m.backward()
    eps = 1e-6
    for name, p in m.named_parameters():
        flat = p.reshape(-1)
        for i in range(0, flat.size, max(1, flat.size // 5)):
            old = flat[i]
            flat[i] = old + eps
            up = m.loss(ids, targets, state)[0]
            flat[i] = old - eps
            down = m.loss(ids, targets, state)[0]
            flat[i] = old
            numeric = (up - down) / (2 * eps)
            analytic = m.grads[name].reshape(-1)[i]
            assert abs(numeric - analytic) < 1e-7 + 1e-5 * abs(numeric), (name, i)


def test_checkpoint_round_trip(tmp_path):
    vocab = CharVocab.from_text("hello world")
    m = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=2, proj_size=5))
    state = {"model_config": dataclasses.asdict(m.config), "vocab": vocab.to_dict()}
    save_checkpoint(tmp_path / "lm", Checkpoint(model=m.state_dict(), state=state))
    loaded, _, _ = load_model(tmp_path / "lm")
    assert loaded.config.proj_size == 5
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    ids = np.array([vocab.encode("hello")])
    assert loaded.loss(ids, ids)[0] == m.eval().loss(ids, ids)[0]
    # A config saved before proj_size existed loads with none.
    old = {k: v for k, v in dataclasses.asdict(m.config).items() if k != "proj_size"}
    assert LMConfig.from_dict(old).proj_size == 0


def test_decoders_run_the_sequence_layers_and_the_compiled_decoder_refuses():
    m = model(seed=2).eval()
    assert not m.decodes_compiled
    assert len(m.sample(length=6, seed=1)[0]) == 6
    assert len(m.greedy(length=4)) == 4
    assert m.beam_search(beam_size=2, max_length=3)
    with pytest.raises(ArgumentError, match="projections"):
        m.compile()


def test_onnx_export_is_refused(tmp_path):
    pytest.importorskip("onnx")
    from rnncore.export import to_onnx

    with pytest.raises(ArgumentError, match="ONNX's LSTM has no projection"):
        to_onnx(model(), tmp_path / "m.onnx")
    with pytest.raises(ArgumentError, match="ONNX's LSTM has no projection"):
        to_onnx(nn.LSTM(3, 5, proj_size=2), tmp_path / "l.onnx")


def test_orthogonal_init_gives_orthonormal_columns():
    layer = nn.init.orthogonal_hh_(nn.LSTM(3, 6, num_layers=2, proj_size=4, seed=0))
    for k in range(2):
        w = layer.state_dict()[f"weight_hh_l{k}"].astype(np.float64)  # (4H, P)
        for g in range(4):
            block = w[g * 6 : (g + 1) * 6]  # (H, P)
            np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-6)
    m = model(init_hh="orthogonal", forget_bias=1.0)
    assert m.state_dict()["rnn.weight_hh_l0"].shape == (24, 3)
