"""Initialisations of :mod:`rnncore.nn.init` and their use by the model config."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import nn
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig

LAYERS = [
    lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True, seed=1, dtype=np.float64),
    lambda: nn.GRU(3, 5, reset_after=False, seed=1, dtype=np.float64),
    lambda: nn.RNN(3, 5, seed=1, dtype=np.float64),
    lambda: nn.GRUCell(3, 5, seed=1, dtype=np.float64),
]


@pytest.mark.parametrize("make", LAYERS)
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal_blocks_are_orthogonal_and_reproducible(make, gain):
    layer = nn.init.orthogonal_hh_(make(), gain=gain)
    H = layer.hidden_size
    hh = [p for k, p in layer.named_parameters() if k.startswith("weight_hh")]
    assert hh
    for w in hh:
        for g in range(w.shape[0] // H):
            q = w[g * H : (g + 1) * H]  # (H, H)
            np.testing.assert_allclose(q.T @ q, gain**2 * np.eye(H), atol=1e-12)
    again = nn.init.orthogonal_hh_(make(), gain=gain)
    for a, b in zip(layer.parameters(), again.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("nonlinearity", ["relu", "tanh"])
def test_identity_is_irnn(nonlinearity, rng):
    layer = nn.init.identity_hh_(nn.RNN(2, 4, nonlinearity=nonlinearity, seed=0), scale=1.0)
    np.testing.assert_array_equal(layer.weight_hh_l0, np.eye(4))
    assert not layer.bias_ih_l0.any() and not layer.bias_hh_l0.any()
    if nonlinearity == "relu":  # with zero input a non-negative state is carried unchanged
        h0 = np.abs(rng.standard_normal((1, 3, 4))).astype(np.float32)
        _, h_n = layer(np.zeros((7, 3, 2), np.float32), h0)
        np.testing.assert_array_equal(h_n, h0)


@pytest.mark.parametrize(
    ("cifg", "peephole"), [(False, False), (True, False), (False, True)]
)  # (cifg with peephole is refused: tests/test_nn_layers.py)
def test_forget_bias_adds_to_the_forget_block_only(cifg, peephole):
    layer = nn.LSTM(2, 3, num_layers=2, seed=0, cifg=cifg, peephole=peephole)
    before = layer.state_dict()
    nn.init.forget_bias_(layer, 1.0)
    want = np.repeat([1.0, 0.0, 0.0] if cifg else [0.0, 1.0, 0.0, 0.0], 3)  # f|g|o, i|f|g|o
    for name, p in layer.named_parameters():
        delta = p - before[name]
        if name.startswith("bias_ih"):
            np.testing.assert_allclose(delta, want, atol=1e-7)
        else:
            assert not delta.any(), name


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: nn.init.identity_hh_(nn.LSTM(2, 3)), "IRNN"),
        (lambda: nn.init.forget_bias_(nn.GRU(2, 3), 1.0), "forget_bias is for LSTM"),
        (lambda: nn.init.forget_bias_(nn.LSTM(2, 3, bias=False), 1.0), "bias=True"),
        (lambda: nn.init.forget_bias_(nn.LSTM(2, 3), float("nan")), "forget_bias must be"),
        (lambda: nn.init.orthogonal_hh_(nn.Linear(2, 3)), "layer must be"),
        (lambda: nn.init.orthogonal_hh_(nn.RNN(2, 3), gain="1"), "gain must be"),
        (lambda: nn.init.init_hh_(nn.RNN(2, 3), "xavier"), "init_hh must be one of"),
        (lambda: LMConfig(5, "lstm", init_hh="identity"), "IRNN"),
        (lambda: LMConfig(5, "rnn_relu", init_hh="zeros"), "init_hh"),
        (lambda: LMConfig(5, "lstm", forget_bias=float("inf")), "forget_bias must be finite"),
    ],
)
def test_bad_initialisations_are_named_argument_errors(call, words):
    with pytest.raises(ArgumentError, match=words):
        call()


def test_model_config_applies_the_initialisation():
    config = LMConfig(7, "rnn_relu", hidden_size=6, num_layers=2, init_hh="identity", seed=2)
    model = CharLM(config)
    for k in range(2):
        np.testing.assert_array_equal(getattr(model.rnn, f"weight_hh_l{k}"), np.eye(6))
    assert LMConfig.from_dict(config.to_dict()) == config
    ortho = CharLM(LMConfig(7, "gru", hidden_size=6, init_hh="orthogonal", seed=2))
    w = ortho.rnn.weight_hh_l1[:6].astype(np.float64)
    np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-6)
    plain = CharLM(LMConfig(7, "gru", hidden_size=6, seed=2))
    np.testing.assert_array_equal(plain.head.weight, ortho.head.weight)  # drawn before
