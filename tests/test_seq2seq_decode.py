"""Decoding a Seq2Seq through ``rnncore.decode``: beam width 1 equals greedy, a beam
as wide as the search space equals exhaustive enumeration, ensembles of one model
equal the model."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnncore.decode import Ensemble, beam_search
from rnncore.decode.seq2seq import SourceModel, translate
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.nn.functional import log_softmax


def model(V_tgt=6, seed=0):
    cfg = Seq2SeqConfig(
        vocab_size=7, tgt_vocab_size=V_tgt, embedding_dim=4, hidden_size=5, dtype="float64",
        seed=seed,
    )  # fmt: skip
    return Seq2Seq(cfg)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_one_is_greedy(seed):
    m = model(seed=seed)
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 7, (4, 5))
    greedy, _ = m.greedy(src, max_length=6)
    for row, out in zip(src, greedy):
        (best,) = translate(m, row, beam_size=1, max_length=6)
        ids = best.ids[:-1] if best.ids and best.ids[-1] == m.config.eos_id else best.ids
        assert ids == out


def sequence_log_prob(m, src, seq):
    """log P(seq | src) by teacher forcing."""
    tgt_in = np.array([[m.config.bos_id, *seq[:-1]]])
    logits, _ = m.logits(src[None, :], None, tgt_in)
    lp = log_softmax(logits[0])  # (k, V)
    return float(lp[np.arange(len(seq)), seq].sum())


def test_wide_beam_equals_exhaustive_enumeration():
    m = model(V_tgt=4)
    src = np.array([3, 4, 5])
    V, L, eos = 4, 3, m.config.eos_id
    candidates = []
    for k in range(1, L + 1):
        for seq in itertools.product(range(V), repeat=k):
            if eos in seq[:-1] or (k < L and seq[-1] != eos):
                continue
            candidates.append((sequence_log_prob(m, src, list(seq)), list(seq)))
    candidates.sort(key=lambda c: -c[0])
    found = translate(m, src, beam_size=V**L, max_length=L, n_best=5)
    assert [h.ids for h in found] == [c[1] for c in candidates[:5]]
    np.testing.assert_allclose([h.log_prob for h in found], [c[0] for c in candidates[:5]])


def test_ensemble_of_one_model_is_the_model():
    m = model()
    src = np.array([3, 4, 5, 6])
    alone = translate(m, src, beam_size=3, max_length=6, n_best=2)
    together = beam_search(
        Ensemble([SourceModel(m, src)]), prime_ids=[m.config.bos_id], beam_size=3,
        max_length=6, eos_id=m.config.eos_id, n_best=2,
    )  # fmt: skip
    assert [h.ids for h in together] == [h.ids for h in alone]
    np.testing.assert_allclose([h.log_prob for h in together], [h.log_prob for h in alone])


def test_source_model_rejects_a_batch():
    with pytest.raises(ValueError, match="src"):
        SourceModel(model(), np.zeros((2, 3), np.int64))


def test_attention_heatmap_png(tmp_path):
    pytest.importorskip("matplotlib")
    from rnncore.decode.heatmap import attention_png

    m = model()
    src = np.array([[3, 4, 5, 6]])
    _, weights = m.greedy(src, max_length=3)
    T = weights.shape[1]
    path = tmp_path / "attention.png"
    attention_png(path, weights[0], list("abcd"), [str(i) for i in range(T)])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="source"):
        attention_png(path, weights[0], list("abc"), [str(i) for i in range(T)])


def test_a_batch_of_sources_gets_what_each_gets_alone():
    """translate_batch: sources of different lengths, searched together, give each
    source the hypotheses (ids, scores) of its own search."""
    from rnncore.decode.seq2seq import translate, translate_batch

    m = model(seed=0)
    rng = np.random.default_rng(3)
    sources = [rng.integers(0, 7, n).tolist() for n in (4, 1, 6, 3, 5)]
    for beam, n_best, alpha in [(1, 1, 0.0), (3, 2, 0.0), (4, 4, 0.8)]:
        together = translate_batch(
            m, sources, beam_size=beam, n_best=n_best, max_length=7, length_penalty=alpha
        )
        for src, got in zip(sources, together):
            alone = translate(
                m, src, beam_size=beam, n_best=n_best, max_length=7, length_penalty=alpha
            )
            assert [h.ids for h in got] == [h.ids for h in alone]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in alone], rtol=1e-9)
    from rnncore.errors import ArgumentError

    with pytest.raises(ArgumentError, match="non-empty list"):
        translate_batch(m, [], beam_size=2)


def test_groups_of_one_language_model_state_equal_one_search():
    from rnncore.decode import beam_search_groups
    from rnncore.models import CharLM, LMConfig

    lm = CharLM(LMConfig(vocab_size=6, hidden_size=5, num_layers=1, dtype="float64"))
    alone = beam_search(lm, prime_ids=[1, 2], beam_size=3, max_length=5, eos_id=0, n_best=2)
    for got in beam_search_groups(
        lm, groups=3, prime_ids=[1, 2], beam_size=3, max_length=5, eos_id=0, n_best=2
    ):
        assert [h.ids for h in got] == [h.ids for h in alone]


def test_an_ensemble_of_sources_bound_to_two_models():
    """translate_batch(ensemble=...): a model with itself is the model; two
    different models average their distributions, step by step."""
    from rnncore.decode.seq2seq import translate_batch
    from rnncore.errors import ArgumentError

    a, b = model(seed=0), model(seed=1)
    rng = np.random.default_rng(4)
    sources = [rng.integers(0, 7, n).tolist() for n in (3, 5)]
    alone = translate_batch(a, sources, beam_size=3, n_best=2, max_length=6)
    twice = translate_batch(a, sources, beam_size=3, n_best=2, max_length=6, ensemble=[a])
    for x, y in zip(alone, twice):
        assert [h.ids for h in x] == [h.ids for h in y]
        np.testing.assert_allclose([h.score for h in x], [h.score for h in y], rtol=1e-9)
    mixed = translate_batch(a, sources, beam_size=2, max_length=6, ensemble=[b])
    for src, got in zip(sources, mixed):
        want = beam_search(
            Ensemble([SourceModel(a, src), SourceModel(b, src)]),
            prime_ids=[a.config.bos_id], beam_size=2, max_length=6, eos_id=a.config.eos_id,
        )  # fmt: skip
        assert [h.ids for h in got] == [h.ids for h in want]
    with pytest.raises(ArgumentError, match=r"ensemble\[0\] must be a Seq2Seq"):
        translate_batch(a, sources, ensemble=[model(V_tgt=7)])
