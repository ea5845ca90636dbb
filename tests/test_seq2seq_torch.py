"""The compiled attention decoder against the same model written with torch ops.

Torch's ``LSTMCell``/``GRUCell``/``RNNCell`` run the cell, with the weights of our
call; the attention is written out with torch ops (``masked_fill`` with ``-inf``
then ``softmax``); autograd gives the gradients. float64, 1e-10.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_seq2seq_kernel import make_decoder

from rnncore import _rnncore

torch = pytest.importorskip("torch")

CELLS = {  # mode -> (torch cell class, extra constructor arguments)
    "rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
    "lstm": ("LSTMCell", {}),
    "gru": ("GRUCell", {}),
}


def torch_decoder(mode, kind, arrays, weights, lengths):
    """The decoder with torch ops; returns (output, attention weights, h_n, leaves)."""
    leaves = {
        k: torch.tensor(a, dtype=torch.float64, requires_grad=True)
        for k, a in {**arrays, **weights}.items()
        if a is not None
    }
    y, memory, h = leaves["y"], leaves["memory"], leaves["h0"]
    c = leaves.get("c0")
    T, _, E = y.shape
    S, M = memory.shape[1:]
    H = h.shape[1]
    name, extra = CELLS[mode]
    cell = getattr(torch.nn, name)(E + M, H, bias="b_ih" in weights, dtype=torch.float64, **extra)
    params = dict(cell.named_parameters())
    for key in ("w_ih", "w_hh", "b_ih", "b_hh"):
        if key in leaves:
            torch_name = key.replace("w_", "weight_").replace("b_", "bias_")
            del params[torch_name]
            delattr(cell, torch_name)
            setattr(cell, torch_name, leaves[key])
    valid = torch.arange(S)[None, :] < torch.as_tensor(lengths)[:, None]  # (N, S)
    if kind == "additive":
        keys = memory @ leaves["w_key"].T  # (N, S, A)
    elif kind == "general":
        keys = memory @ leaves["w_key"].T  # (N, S, H)
    else:
        keys = memory
    context = leaves["context0"]  # (N, M)
    outputs, attention = [], []
    for t in range(T):
        x = torch.cat([y[t], context], dim=1)  # (N, E + M)
        if mode == "lstm":
            h, c = cell(x, (h, c))
        else:
            h = cell(x, h)
        if kind == "additive":
            e = torch.tanh((h @ leaves["w_query"].T)[:, None, :] + keys)  # (N, S, A)
            score = e @ leaves["v"]  # (N, S)
        else:
            score = torch.einsum("nsa,na->ns", keys, h)
        a = torch.softmax(score.masked_fill(~valid, float("-inf")), dim=1)  # (N, S)
        context = torch.einsum("ns,nsm->nm", a, memory)
        outputs.append(torch.cat([h, context], dim=1))
        attention.append(a)
    return torch.stack(outputs), torch.stack(attention), h, leaves


@pytest.mark.parametrize("mode", list(CELLS))
@pytest.mark.parametrize("kind", ["additive", "general", "dot"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_float64(mode, kind, bias, rng):
    H = 6
    M = H if kind == "dot" else 5
    arrays, weights = make_decoder(mode, kind, 5, 3, 7, 4, H, M, 4, rng, bias=bias)
    lengths = np.array([7, 2, 5])
    output, attn, h_n, _, cache = _rnncore.decoder_forward(
        mode, kind, **arrays, lengths=lengths, weights=weights
    )
    d_output = rng.standard_normal(output.shape)
    d_h_n = rng.standard_normal(h_n.shape)
    grads = _rnncore.decoder_backward(mode, kind, weights, cache, d_output, d_h_n)

    t_output, t_attn, t_h_n, leaves = torch_decoder(mode, kind, arrays, weights, lengths)
    loss = (t_output * torch.from_numpy(d_output)).sum() + (t_h_n * torch.from_numpy(d_h_n)).sum()
    loss.backward()
    tol = {"rtol": 1e-10, "atol": 1e-12}
    np.testing.assert_allclose(output, t_output.detach().numpy(), **tol)
    np.testing.assert_allclose(attn, t_attn.detach().numpy(), **tol)
    np.testing.assert_allclose(h_n, t_h_n.detach().numpy(), **tol)
    for name, leaf in leaves.items():
        np.testing.assert_allclose(grads[name], leaf.grad.numpy(), err_msg=name, **tol)
