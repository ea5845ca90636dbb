"""``CompiledLM(model, weights="bfloat16" | "int8")``: decoding with compressed
weight matrices.

A compressed decoder is, bitwise, the full decoder of the same model with its
weight matrices replaced by their compressed values, widened back (a NumPy
oracle of bfloat16 rounding and per-row int8 quantisation, below): the kernel
widens each weight (and multiplies an int8 one by its row's scale) in
registers with the same roundings, and runs the same sums in the same order.
Hypothesis runs over cells, dtypes, depths, sizes with 1s and one-hot or
embedded input. Then the bytes, reproducible sampling at any thread count,
inputs too large for an int8 sum that does not scale first, and what is
refused.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncore
from rnncore import decode
from rnncore.data import StreamBatcher
from rnncore.decode import CompiledLM
from rnncore.decode.compiled import WEIGHTS
from rnncore.errors import ArgumentError, DTypeError
from rnncore.models import CharLM, LMConfig
from rnncore.optim import SGD
from rnncore.train import Trainer

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def bfloat16(w):
    """``w`` rounded to bfloat16 (through float32, nearest, ties to even), widened
    back to ``w.dtype``."""
    b = np.ascontiguousarray(w, dtype=np.float32).view(np.uint32).astype(np.uint64)
    b = (b + 0x7FFF + ((b >> 16) & 1)) & 0xFFFF0000
    return b.astype(np.uint32).view(np.float32).astype(w.dtype)


def int8(w):
    """``w (rows, K)`` as ``q * s`` with ``s = max|w[i]| / 127`` per row (in ``w``'s
    dtype) and ``q = rint(w / s)`` in ``[-127, 127]`` (0 where ``s = 0``)."""
    s = (np.abs(w.astype(np.float64)).max(axis=1) / 127.0).astype(w.dtype)
    s64 = s.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(s64 == 0, 0.0, np.clip(np.rint(w / s64), -127, 127))
    return q.astype(w.dtype) * s[:, None]


def is_matrix(name):
    return name.startswith("rnn.weight_") or name == "head.weight"


def lm(V, cell, dtype, **kw):
    kw = {"hidden_size": 6, "num_layers": 2, "seed": 0, **kw}
    return CharLM(LMConfig(vocab_size=V, cell=cell, dtype=dtype, **kw)).eval()


def twin(model, weights):
    """``model`` with every weight matrix replaced by its ``weights`` form."""
    squeeze = {"bfloat16": bfloat16, "int8": int8}[weights]
    other = CharLM(model.config)
    other.load_state_dict(
        {k: squeeze(p) if is_matrix(k) else p for k, p in model.state_dict().items()}
    )
    return other.eval()


def flat(state):
    return state if isinstance(state, tuple) else (state,)


@settings(max_examples=30, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    dtype=st.sampled_from(["float32", "float64"]),
    weights=st.sampled_from(WEIGHTS),
    V=st.integers(1, 30),
    H=st.integers(1, 40),
    L=st.integers(1, 2),
    N=st.integers(1, 9),
    E=st.one_of(st.none(), st.integers(1, 9)),
    seed=st.integers(0, 2**16),
)
def test_a_compressed_decoder_is_the_full_one_of_the_compressed_weights(
    cell, dtype, weights, V, H, L, N, E, seed
):
    model = lm(V, cell, dtype, hidden_size=H, num_layers=L, embedding_dim=E, seed=seed)
    small = CompiledLM(model, weights=weights)
    full = twin(model, weights).compile()
    ids = np.random.default_rng(seed).integers(0, V, (N, 5))
    got_lp, got_state = small.forward(ids)
    want_lp, want_state = full.forward(ids)
    assert got_lp.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got_lp, want_lp)
    for g, w in zip(flat(got_state), flat(want_state)):
        np.testing.assert_array_equal(g, w)
    got_lp, _ = small.step(ids[:, 0], got_state)
    want_lp, _ = full.step(ids[:, 0], want_state)
    np.testing.assert_array_equal(got_lp, want_lp)


def test_the_oracle_rounds_as_bfloat16_and_int8_are_defined():
    w = np.array([[1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -2.0, 0.0]], dtype=np.float32)
    # 1 + 2**-8 is half-way: ties to the even 1.0; 1 + 3*2**-8 ties up to 1 + 2**-6
    np.testing.assert_array_equal(bfloat16(w), [[1.0, 1.0, 1.0 + 2**-6, -2.0, 0.0]])
    q = int8(np.array([[127.0, 63.5, -0.5, 1.5], [0.0, 0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(q, [[127.0, 64.0, -0.0, 2.0], [0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("weights", WEIGHTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_ties_round_to_even_in_the_kernels(weights, dtype):
    """Weights exactly half-way between two bfloat16 values (``1 + j 2**-8``, j
    odd) or two int8 steps (``(n + 1/2) 2**-7`` beside a row maximum of
    ``127 * 2**-7``, so the scale is exact): the kernels round them as the oracle."""
    model = lm(9, "gru", dtype, hidden_size=12, embedding_dim=5)
    rng = np.random.default_rng(0)
    state = {}
    for k, p in model.state_dict().items():
        if is_matrix(k):
            if weights == "bfloat16":
                p = (1 + (2 * rng.integers(0, 64, p.shape) + 1) * 2.0**-8) * rng.choice(
                    [-1, 1], p.shape
                )
            else:
                p = (rng.integers(-120, 120, p.shape) + 0.5) * 2.0**-7
                p[:, 0] = 127 * 2.0**-7
        state[k] = np.asarray(p, dtype=dtype)
    model.load_state_dict(state)
    ids = rng.integers(0, 9, (3, 6))
    got, _ = model.compile(weights=weights).forward(ids)
    want, _ = twin(model, weights).compile().forward(ids)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("E", [None, 16])
def test_bytes_halve_and_quarter(E):
    model = lm(65, "lstm", "float32", hidden_size=64, embedding_dim=E)
    full, half, quarter = (CompiledLM(model, weights=w) for w in (None, *WEIGHTS))
    assert (full.weights, half.weights, quarter.weights) == ("full", "bfloat16", "int8")
    assert half.weight_bytes * 2 == full.weight_bytes
    assert full.weight_bytes / 4 < quarter.weight_bytes < full.weight_bytes / 3.5
    assert "weights='int8'" in repr(quarter)
    assert CompiledLM(model, weights="float32").weights == "full"
    wide = lm(65, "gru", "float64", hidden_size=64)
    assert CompiledLM(wide, weights="bfloat16").weight_bytes * 4 == wide.compile().weight_bytes


def test_compression_keeps_the_model_close():
    """On a model with trained-like weights the compressed next-symbol
    distributions stay near the full ones (what it costs a trained model is
    measured in the decoding benchmark)."""
    model = lm(40, "lstm", "float32", hidden_size=96, embedding_dim=16, seed=3)
    ids = np.random.default_rng(0).integers(0, 40, (4, 30))
    want, _ = model.compile().forward(ids)
    for weights, tol in (("bfloat16", 0.02), ("int8", 0.05)):
        got, _ = model.compile(weights=weights).forward(ids)
        assert 0 < np.abs(np.exp(got) - np.exp(want)).max() < tol


@pytest.mark.parametrize("weights", WEIGHTS)
def test_sampling_is_reproducible_at_any_thread_count(weights):
    model = lm(30, "lstm", "float32", hidden_size=48, embedding_dim=8)
    small = model.compile(weights=weights)
    kw = {"prime_ids": [1, 2, 3], "length": 40, "num_samples": 5, "seed": 11}
    runs = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            beams = decode.beam_search(small, prime_ids=[1, 2], beam_size=3, max_length=8, n_best=3)
            texts = decode.sample(small, **kw)
            runs.append((texts, [b.ids for b in beams], small.forward([[4, 5, 6, 7]])[0]))
    finally:
        rnncore.set_num_threads(None)
    for texts, beams, lp in runs[1:]:
        assert texts == runs[0][0]
        assert beams == runs[0][1]
        np.testing.assert_array_equal(lp, runs[0][2])
    assert decode.sample(small, **kw) == runs[0][0]


def test_a_compiled_model_does_not_train():
    model = lm(5, "gru", "float32")
    small = model.compile(weights="int8")
    ids = np.zeros((1, 3), dtype=np.int64)
    for call in (
        lambda: small.loss(ids, ids),
        lambda: small.backward(),
        lambda: small.parameters(),
        lambda: small.named_parameters(),
    ):
        with pytest.raises(ArgumentError, match="decodes only"):
            call()
    batcher = StreamBatcher(np.zeros(100, dtype=np.int64), 2, 4)
    with pytest.raises(ArgumentError, match="decodes only"):
        Trainer(small, SGD(dict(model.named_parameters()), lr=0.1), batcher)


def test_huge_inputs_do_not_overflow_an_int8_sum():
    """Embedding rows of 1e37: ``sum q * x`` would overflow float32 before a
    scale; the weights scaled in registers give the full model's numbers."""
    model = lm(20, "lstm", "float32", hidden_size=4, num_layers=1, embedding_dim=2)
    state = model.state_dict()
    state["embedding.weight"][3] = [1e37, -1e37]
    model.load_state_dict(state)
    ids = np.array([[3, 1]])
    got, got_state = model.compile(weights="int8").forward(ids)
    want, want_state = twin(model, "int8").compile().forward(ids)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_state[0], want_state[0])


def test_bfloat16_refuses_weights_beyond_its_range():
    model = lm(5, "gru", "float64")
    state = model.state_dict()
    state["rnn.weight_hh_l1"][0, 0] = 1e39  # finite in float64, beyond bfloat16 (and float32)
    model.load_state_dict(state)
    with pytest.raises(ArgumentError, match=r"rnn\.weight_hh_l1 .*bfloat16"):
        model.compile(weights="bfloat16")
    assert np.isfinite(model.compile(weights="int8").forward([[1, 2]])[0]).all()
    edge = lm(5, "lstm", "float32", num_layers=1)
    state = edge.state_dict()
    state["head.weight"][0, 0] = np.nextafter(np.float32(3.3961775e38), np.float32(0))
    edge.load_state_dict(state)
    assert edge.compile(weights="bfloat16").weights == "bfloat16"  # the largest that rounds finite
    state["head.weight"][0, 0] = np.float32(3.3961776e38)
    edge.load_state_dict(state)
    with pytest.raises(ArgumentError, match=r"head\.weight"):
        edge.compile(weights="bfloat16")


def test_bad_weights_are_refused_by_name():
    model = lm(5, "lstm", "float32")
    assert model.compile(weights="full").weights == "full"
    with pytest.raises(ArgumentError, match="weights"):
        model.compile(weights="int4")
    with pytest.raises(ArgumentError, match="weights"):
        model.compile(weights="float64")  # not the model's dtype
    with pytest.raises(DTypeError, match="weights"):
        model.compile(weights=8)
