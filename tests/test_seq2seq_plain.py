"""``Seq2Seq`` without attention (``attention="none"``): the parameters it has,
gradients against finite differences, the compiled kernels against the reference
backend, greedy decoding against its own prefix and against beam width 1, and named
errors where attention weights are asked for."""

from __future__ import annotations

import numpy as np
import pytest
from test_seq2seq_model import BOS, EOS, batch

from rnncore import reference
from rnncore.decode.heatmap import attention_png
from rnncore.decode.seq2seq import translate
from rnncore.errors import ArgumentError
from rnncore.models import Seq2Seq, Seq2SeqConfig


def model(cell="lstm", bidirectional=True, num_layers=2, **kwargs):
    cfg = Seq2SeqConfig(
        vocab_size=7, tgt_vocab_size=6, cell=cell, embedding_dim=4, hidden_size=5,
        num_layers=num_layers, bidirectional=bidirectional, attention="none",
        dtype="float64", seed=kwargs.pop("seed", 0),
    )  # fmt: skip
    return Seq2Seq(cfg, **kwargs)


def test_parameters_are_one_plain_layer_and_a_head_on_h():
    shapes = {k: p.shape for k, p in model("gru").named_parameters()}
    decoder = {k: v for k, v in shapes.items() if k.startswith("decoder.")}
    assert decoder == {
        "decoder.weight_ih_l0": (15, 4), "decoder.weight_hh_l0": (15, 5),
        "decoder.bias_ih_l0": (15,), "decoder.bias_hh_l0": (15,),
    }  # fmt: skip
    assert shapes["head.weight"] == (6, 5)
    assert shapes["bridge.weight"] == (5, 10)  # from the bidirectional encoder


@pytest.mark.parametrize(
    ("cell", "bidirectional"),
    [("lstm", True), ("gru", False), ("rnn_tanh", True), ("lstm_cifg", True)],
)
def test_gradients_match_finite_differences(cell, bidirectional, rng):
    m = model(cell, bidirectional)
    args = batch(rng)
    m.zero_grad()
    m.loss(*args)
    m.backward()
    for name, p in m.named_parameters():
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in p.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            plus = m.loss(*args)
            p[idx] = old - 1e-6
            minus = m.loss(*args)
            p[idx] = old
            numeric = (plus - minus) / 2e-6
            assert abs(m.grads[name][idx] - numeric) < 1e-8 + 1e-6 * abs(numeric), name
    assert np.abs(m.grads["encoder.weight_ih_l0"]).max() > 0  # the bridge reaches the encoder


def test_compiled_equals_reference_backend(rng):
    ours, ref = model(), model(backend=reference)
    args = batch(rng)
    losses = []
    for m in (ours, ref):
        m.zero_grad()
        losses.append(m.loss(*args))
        m.backward()
    assert abs(losses[0] - losses[1]) < 1e-12
    for name in ours.grads:
        np.testing.assert_allclose(ours.grads[name], ref.grads[name], rtol=1e-9, atol=1e-12)


def test_greedy_picks_the_argmax_of_its_own_prefix(rng):
    m = model()
    src, src_lengths, _, _ = batch(rng)
    outputs, weights = m.greedy(src, src_lengths, max_length=4)
    assert weights is None
    for b, out in enumerate(outputs):
        logits, w = m.logits(src[b : b + 1, : src_lengths[b]], None, np.array([[BOS, *out]]))
        assert w is None
        choices = logits[0].argmax(axis=1)
        assert choices[: len(out)].tolist() == out
        if len(out) < 4:
            assert choices[len(out)] == EOS


@pytest.mark.parametrize(("cell", "seed"), [("lstm", 0), ("gru", 1), ("rnn_relu", 2)])
def test_beam_one_is_greedy(cell, seed):
    m = model(cell, seed=seed)
    src = np.random.default_rng(seed).integers(0, 7, (4, 5))
    greedy, _ = m.greedy(src, max_length=6)
    for row, out in zip(src, greedy):
        (best,) = translate(m, row, beam_size=1, max_length=6)
        ids = best.ids[:-1] if best.ids and best.ids[-1] == m.config.eos_id else best.ids
        assert ids == out


def test_beam_hypotheses_score_their_own_log_probability():
    m = model()
    src = np.array([3, 4, 5, 6])
    for h in translate(m, src, beam_size=4, max_length=5, n_best=3):
        logits, _ = m.logits(src[None, :], None, np.array([[BOS, *h.ids[:-1]]]))
        z = logits[0] - logits[0].max(axis=1, keepdims=True)
        lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        assert h.log_prob == pytest.approx(lp[np.arange(len(h.ids)), h.ids].sum(), abs=1e-10)


def test_asking_for_attention_weights_is_a_named_error(tmp_path):
    _, weights = model().greedy(np.array([[3, 4, 5]]), max_length=3)
    with pytest.raises(ArgumentError, match="attention='none'"):
        attention_png(tmp_path / "a.png", weights, list("abc"), ["x"])
    with pytest.raises(ArgumentError, match="attention"):
        Seq2SeqConfig(vocab_size=3, tgt_vocab_size=3, attention="nothing")
