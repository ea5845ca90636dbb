"""Text features, the correlation ranking of cells, gradient flow and spectral radius.

Features and rankings on texts where the answer is known (a synthetic cell
equal to a feature ranks first); gradient flow against the explicit product of
Jacobians of a vanilla RNN and against finite differences for a stacked LSTM.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import diagnostics, nn
from rnncore.data.vocab import CharVocab
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models import CharLM, LMConfig

TEXT = 'def f(x):\n    # add "one"\n    return [x + 1.5, (2)]\nsay "hi" 42\n'


def test_features_on_a_known_text():
    f = diagnostics.text_features(TEXT)
    assert list(f) == list(diagnostics.FEATURES)
    at = {c: i for i, c in reversed(list(enumerate(TEXT)))}  # first index of each char
    q0 = TEXT.index('"')
    assert f["in_quote"][q0 : TEXT.index('"', q0 + 1) + 1].all()
    assert f["in_quote"][:q0].sum() == 0
    assert f["bracket_depth"][at["("]] == 1 and f["bracket_depth"][at[")"]] == 1
    assert f["bracket_depth"][TEXT.index("(2") + 1] == 2  # inside [ and (
    assert f["bracket_depth"][TEXT.index(":")] == 0
    line2 = TEXT.index("\n") + 1
    assert f["line_position"][line2] == 0 and f["line_position"][line2 + 4] == 4
    assert f["in_comment"][TEXT.index("#")] == 1 and f["in_comment"][TEXT.index("return")] == 0
    assert f["indent"][TEXT.index("return")] == 4 and f["indent"][0] == 0
    assert f["word_start"][TEXT.index("return")] == 1 and f["word_start"][TEXT.index("eturn")] == 0
    num = TEXT.index("1.5")
    assert f["in_number"][num : num + 3].tolist() == [1, 1, 1]
    assert f["in_number"][TEXT.index("x +")] == 0


def test_user_feature_and_its_errors():
    f = diagnostics.text_features("abca", {"is_a": lambda t: [c == "a" for c in t]})
    assert f["is_a"].tolist() == [1, 0, 0, 1]
    with pytest.raises(ShapeError, match="is_a"):
        diagnostics.text_features("abc", {"is_a": lambda t: [1.0]})
    with pytest.raises(ArgumentError, match="built-in"):
        diagnostics.text_features("abc", {"indent": lambda t: [0] * len(t)})
    with pytest.raises(ArgumentError, match="not finite"):
        diagnostics.text_features("ab", {"x": lambda t: [np.nan, 0]})


@settings(max_examples=30, deadline=None)
@given(
    T=st.integers(8, 200), K=st.integers(1, 33), which=st.integers(0, 32), seed=st.integers(0, 999)
)
def test_a_cell_equal_to_a_feature_ranks_first(T, K, which, seed):
    rng = np.random.default_rng(seed)
    feat = rng.integers(0, 4, size=T).astype(float)
    feat[:2] = [0, 1]  # never constant
    values = rng.standard_normal((T, K))
    which %= K
    values[:, which] = -3 * feat + 1  # perfectly (anti-)correlated
    c = diagnostics.Correlator(1, K)
    c.update(feat[: T // 2, None], values[: T // 2])  # in two chunks
    c.update(feat[T // 2 :, None], values[T // 2 :])
    r = c.correlation()
    np.testing.assert_allclose(r[0], [np.corrcoef(feat, v)[0, 1] for v in values.T], atol=1e-9)
    labels = [("h", 0, k) for k in range(K)]
    found = diagnostics.rank_cells(r, r, ["f"], labels, top=3)
    assert found[0].unit == which and found[0].corr == pytest.approx(-1.0)


def test_constant_feature_finds_no_cell():
    c = diagnostics.Correlator(2, 3)
    x = np.stack([np.zeros(10), np.arange(10.0)], axis=1)
    c.update(x, np.random.default_rng(0).standard_normal((10, 3)))
    found = diagnostics.rank_cells(
        c.correlation(), c.correlation(), ["a", "b"], [("h", 0, k) for k in range(3)]
    )
    assert {f.feature for f in found} == {"b"}


def test_find_cells_on_a_model():
    text = ('a "quoted" word (and more) here\n' * 20)[:600]
    vocab = CharVocab.from_text(text)
    model = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=8, num_layers=2, seed=0))
    found = diagnostics.find_cells(model, vocab, text, top=2, chunk_size=97)
    by = {}
    for f in found:
        by.setdefault(f.feature, []).append(f)
        assert -1 <= f.corr <= 1 and f.signal in ("tanh(c)", "h", "i", "f", "g", "o")
    assert len(by["in_quote"]) == 2 and "in_comment" not in by  # no '#' in the text
    again = diagnostics.find_cells(model, vocab, text, top=2, chunk_size=1000)
    for a, b in zip(found, again):
        assert (a.signal, a.layer, a.unit) == (b.signal, b.layer, b.unit)
        assert a.corr == pytest.approx(b.corr, abs=1e-5)


def test_gradient_flow_of_a_vanilla_rnn_is_the_jacobian_product(rng):
    T, N, D, H = 9, 2, 3, 5
    rnn = nn.RNN(D, H, dtype=np.float64, seed=1)
    x = rng.standard_normal((T, N, D))
    d_last = rng.standard_normal((N, H))
    flow = diagnostics.layer_gradient_flow(rnn, x, d_last)
    out, _ = rnn(x)  # (T, N, H)
    w = rnn.weight_hh_l0
    want = np.zeros(T - 1)
    for n in range(N):
        g = d_last[n]
        for d in range(1, T):  # g = dL/dh_{T-1-d}
            g = (g * (1 - out[T - d, n] ** 2)) @ w
            want[d - 1] += np.linalg.norm(g) / N
    np.testing.assert_allclose(flow.distance, np.arange(1, T))
    np.testing.assert_allclose(flow.norm[0], want, rtol=1e-10)


def test_gradient_flow_of_a_stacked_lstm_matches_finite_differences(rng):
    T, D, H = 6, 2, 3
    lstm = nn.LSTM(D, H, num_layers=2, dtype=np.float64, seed=2)
    x = rng.standard_normal((T, 1, D))
    d_last = rng.standard_normal((1, H))
    flow = diagnostics.layer_gradient_flow(lstm, x, d_last)
    arrays, _ = lstm.trace(x)
    for t in (0, 2, T - 2):
        h0, c0 = arrays["h"][:, t].copy(), arrays["c"][:, t].copy()  # (L, 1, H)

        def loss(h, t=t, c0=c0):
            out, _ = lstm(x[t + 1 :], (h, c0))
            return float(out[-1, 0] @ d_last[0])

        for k in range(2):
            g = np.zeros(H)
            for j in range(H):
                hp, hm = h0.copy(), h0.copy()
                hp[k, 0, j] += 1e-6
                hm[k, 0, j] -= 1e-6
                g[j] = (loss(hp) - loss(hm)) / 2e-6
            assert flow.norm[k, T - 2 - t] == pytest.approx(np.linalg.norm(g), rel=1e-6)


def test_gradient_flow_of_a_language_model_and_its_errors(rng):
    model = CharLM(LMConfig(vocab_size=7, cell="gru", hidden_size=6, num_layers=2, seed=0))
    flow = diagnostics.gradient_flow(model, rng.integers(0, 7, size=31))
    assert flow.norm.shape == (2, 29) and np.isfinite(flow.norm).all() and (flow.norm > 0).all()
    with pytest.raises(ShapeError):
        diagnostics.gradient_flow(model, [1, 2])
    with pytest.raises(ArgumentError):
        diagnostics.layer_gradient_flow(
            nn.GRU(2, 3, bidirectional=True), np.zeros((4, 1, 2)), np.zeros((1, 3))
        )


def test_spectral_radius():
    rnn = nn.LSTM(3, 4, num_layers=2, seed=0)
    rho = diagnostics.spectral_radius(rnn)
    assert sorted(rho) == ["weight_hh_l0", "weight_hh_l1"] and rho["weight_hh_l0"].shape == (4,)
    block = rnn.weight_hh_l1[8:12].astype(np.float64)  # gate g
    assert rho["weight_hh_l1"][2] == pytest.approx(np.abs(np.linalg.eigvals(block)).max())
