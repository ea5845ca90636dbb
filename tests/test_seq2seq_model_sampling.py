"""``Seq2Seq.loss(..., sampling_prob=p)`` and ``AttentionDecoder.forward(...,
sampling=ScheduledSampling(...))``: gradients against finite differences with the
seed fixed, the compiled kernels against the reference backend, the seed drawn
from the model's generator, teacher forcing at 0, and named errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_seq2seq_model import batch, model

from rnncore import nn, reference
from rnncore.errors import ArgumentError, DTypeError, ShapeError


def sampled_loss(m, args, p, state):
    """``m.loss`` with scheduled sampling, the model's generator first set to ``state``."""
    m.rng.bit_generator.state = state
    return m.loss(*args, sampling_prob=p)


@pytest.mark.parametrize(
    ("cell", "attention", "bidirectional"),
    [("lstm", "additive", True), ("gru", "general", True), ("rnn_tanh", "dot", False)],
)
def test_sampled_gradients_match_finite_differences(cell, attention, bidirectional, rng):
    m = model(cell, attention, bidirectional)
    args = batch(rng, T=6)
    state = m.rng.bit_generator.state
    m.zero_grad()
    sampled_loss(m, args, 0.7, state)
    fed = m._cache[2]
    tgt_in = args[2][:, :-1].T
    assert (fed != tgt_in).any(), "some inputs are the model's predictions"
    m.backward()
    for name, p in m.named_parameters():
        for _ in range(3):
            idx = tuple(int(rng.integers(0, n)) for n in p.shape)
            if name == "tgt_embedding.weight":  # a row some step was fed
                idx = (int(fed.reshape(-1)[rng.integers(0, fed.size)]), idx[1])
            old = p[idx]
            p[idx] = old + 1e-6
            plus = sampled_loss(m, args, 0.7, state)
            p[idx] = old - 1e-6
            minus = sampled_loss(m, args, 0.7, state)
            p[idx] = old
            numeric = (plus - minus) / 2e-6
            assert abs(m.grads[name][idx] - numeric) < 1e-8 + 1e-6 * abs(numeric), name


def test_embedding_gradient_goes_to_the_rows_fed(rng):
    # At p = 1 every step after the first is fed a prediction: a target id that is
    # only ever a teacher input after step 0 (and is never predicted) gets no gradient.
    m = model("gru", "general")
    args = batch(rng, T=6)
    m.zero_grad()
    m.loss(*args, sampling_prob=1.0)
    fed = m._cache[2]
    m.backward()
    g = m.grads["tgt_embedding.weight"]
    unused = sorted(set(range(6)) - set(fed.reshape(-1).tolist()))
    assert unused, "the batch leaves some target ids unfed"
    assert np.all(g[unused] == 0.0)
    assert np.any(g[sorted(set(fed.reshape(-1).tolist()))] != 0.0)


def test_sampled_compiled_equals_reference_backend(rng):
    ours, ref = model(), model(backend=reference)
    args = batch(rng, T=6)
    for m in (ours, ref):
        m.zero_grad()
    assert abs(ours.loss(*args, sampling_prob=0.5) - ref.loss(*args, sampling_prob=0.5)) < 1e-12
    np.testing.assert_array_equal(ours._cache[2], ref._cache[2])
    ours.backward()
    ref.backward()
    for name, g in ours.grads.items():
        np.testing.assert_allclose(g, ref.grads[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_seed_comes_from_the_model_generator(rng):
    a, b = model(), model()
    args = batch(rng, T=6)
    state = a.rng.bit_generator.state
    first = a.loss(*args, sampling_prob=0.5)
    fed_first = a._cache[2]
    assert a.rng.bit_generator.state != state, "one seed was drawn"
    assert b.loss(*args, sampling_prob=0.5) == first, "the same generator, the same flips"
    np.testing.assert_array_equal(b._cache[2], fed_first)
    draws = [(a.loss(*args, sampling_prob=0.5), a._cache[2]) for _ in range(4)]
    assert any((fed != fed_first).any() for _, fed in draws), "each call draws a new seed"
    a.rng.bit_generator.state = state
    assert a.loss(*args, sampling_prob=0.5) == first, "a restored generator repeats"


SAMPLED_STEP = """
import numpy as np, rnncore
from rnncore.models import Seq2Seq, Seq2SeqConfig
cfg = Seq2SeqConfig(vocab_size=9, tgt_vocab_size=8, hidden_size=40, embedding_dim=6, seed=3)
m = Seq2Seq(cfg)
rng = np.random.default_rng(0)
src, tgt = rng.integers(0, 9, (16, 7)), rng.integers(3, 8, (16, 6))
tgt[:, 0] = 1
loss = m.loss(src, None, tgt, sampling_prob=0.5)
m.backward()
grads = {k.replace(".", "_"): g for k, g in m.grads.items()}
np.savez(OUT, loss=loss, fed=m._cache[2], tgt_in=tgt[:, :-1].T, **grads)
print(rnncore.get_num_threads())
"""


def test_same_seed_same_bits_at_one_and_two_threads_from_the_environment(tmp_path):
    runs = []
    for threads in ("1", "2"):
        out = tmp_path / f"run{threads}.npz"
        env = {**os.environ, "RNNCORE_NUM_THREADS": threads}
        code = f"OUT = {str(out)!r}\n" + textwrap.dedent(SAMPLED_STEP)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == threads
        runs.append(np.load(out))
    assert (runs[0]["fed"] != runs[0]["tgt_in"]).any(), "some rows were sampled"
    assert set(runs[0].files) == set(runs[1].files)
    for name in runs[0].files:
        np.testing.assert_array_equal(runs[0][name], runs[1][name], err_msg=name)


def test_sampling_prob_zero_is_teacher_forcing_and_draws_nothing(rng):
    m = model()
    args = batch(rng)
    teacher = m.loss(*args)
    state = m.rng.bit_generator.state
    assert m.loss(*args, sampling_prob=0.0) == teacher
    assert m.loss(*args, sampling_prob=0) == teacher
    assert m.rng.bit_generator.state == state
    assert m._cache[2] is None


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.5", True, None, [0.5]])
def test_sampling_prob_is_validated(bad, rng):
    m = model()
    with pytest.raises(ArgumentError, match="sampling_prob"):
        m.loss(*batch(rng), sampling_prob=bad)


# ----------------------------------------------------------------- AttentionDecoder


def decoder_and_sampling(rng, prob=0.5, seed=3):
    T, N, E, H, M, V = 5, 3, 4, 6, 5, 7
    dec = nn.AttentionDecoder(E, H, M, "lstm", dtype=np.float64, seed=1)
    table = rng.standard_normal((V, E))
    ids = rng.integers(0, V, (T, N))
    sampling = nn.ScheduledSampling(
        prob, seed, ids, table, rng.standard_normal((V, H + M)), rng.standard_normal(V)
    )
    return dec, table[ids], rng.standard_normal((N, 4, M)), sampling


def test_attention_decoder_returns_the_fed_ids(rng):
    dec, y, memory, sampling = decoder_and_sampling(rng)
    out, _, _, _, fed = dec(y, memory, sampling=sampling)
    assert fed.dtype == np.int64 and fed.shape == sampling.ids.shape
    np.testing.assert_array_equal(fed[0], sampling.ids[0])
    assert (fed != sampling.ids).any()
    dy, _, _, _ = dec.backward(np.ones_like(out))
    assert dy.shape == y.shape
    teacher = dec(y, memory)
    assert len(teacher) == 4
    zero = dec(y, memory, sampling=dataclasses.replace(sampling, prob=0.0))
    np.testing.assert_array_equal(zero[0], teacher[0])
    np.testing.assert_array_equal(zero[4], sampling.ids)


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"prob": 2.0}, ArgumentError, "sampling.prob"),
        ({"prob": "x"}, ArgumentError, "sampling.prob"),
        ({"seed": -1}, ArgumentError, "sampling.seed"),
        ({"seed": 1.5}, ArgumentError, "sampling.seed"),
        ({"ids": np.zeros((5, 2), dtype=np.int64)}, ShapeError, "sampling.ids"),
        ({"ids": np.full((5, 3), 7)}, ArgumentError, "sampling.ids"),
        ({"ids": np.zeros((5, 3))}, DTypeError, "sampling.ids"),
        ({"ids": np.ones((5, 3), dtype=np.int64)}, ArgumentError, "embedding rows"),
        ({"embedding": np.zeros((7, 3))}, ShapeError, "embedding"),
        ({"head_weight": np.zeros((7, 10))}, ShapeError, "head_weight"),
        ({"head_bias": np.zeros(6)}, ShapeError, "head_bias"),
    ],
)
def test_attention_decoder_checks_its_sampling(change, error, name, rng):
    dec, y, memory, sampling = decoder_and_sampling(rng)
    with pytest.raises(error, match=name):
        dec(y, memory, sampling=dataclasses.replace(sampling, **change))
    with pytest.raises(ArgumentError, match="ScheduledSampling"):
        dec(y, memory, sampling={"prob": 0.5})
