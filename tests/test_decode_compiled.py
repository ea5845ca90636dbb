"""rnncore.decode.CompiledLM: the Rust decoding step and sampling loop.

The compiled step against the model's own ``step``/``forward`` (float64 to
1e-10, float32 to float32 rounding) over cells, depths, sizes with 1s and
one-hot or embedded input; the one-call sampling loop against the Python loop
(:func:`sample_with` + :func:`pick`) on the same compiled step: the same ids,
stops and generator state; when the decoders compile and when they do not.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import decode, reference
from rnncore.decode import CompiledLM, Ensemble, compiled
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models import CharLM, LMConfig
from rnncore.nn.functional import log_softmax

CELLS = ["lstm", "gru", "rnn_tanh", "rnn_relu"]


def lm(V=7, cell="lstm", dtype="float64", scale=2.0, **kw):
    """A small language model in eval mode with peaked outputs."""
    kw = {"hidden_size": 6, "num_layers": 2, "seed": 0, **kw}
    model = CharLM(LMConfig(vocab_size=V, cell=cell, dtype=dtype, **kw))
    model.load_state_dict({k: p * scale for k, p in model.state_dict().items()})
    return model.eval()


def flat(state):
    return state if isinstance(state, tuple) else (state,)


@settings(max_examples=25, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    V=st.integers(1, 40),
    H=st.integers(1, 37),
    L=st.integers(1, 3),
    N=st.integers(1, 5),
    T=st.integers(1, 4),
    E=st.one_of(st.none(), st.integers(1, 9)),
    seed=st.integers(0, 2**16),
)
def test_step_and_forward_match_the_model_in_float64(cell, V, H, L, N, T, E, seed):
    model = lm(V, cell, hidden_size=H, num_layers=L, embedding_dim=E, seed=seed)
    fast = model.compile()
    ids = np.random.default_rng(seed).integers(0, V, (N, T))
    want_lp, want_state = model.step(ids[:, 0], None)
    got_lp, got_state = fast.step(ids[:, 0], None)
    assert got_lp.dtype == np.float64
    np.testing.assert_allclose(got_lp, want_lp, atol=1e-10, rtol=0)
    for g, w in zip(flat(got_state), flat(want_state)):
        np.testing.assert_allclose(g, w, atol=1e-10, rtol=0)
    logits, want_state = model.forward(ids, want_state)
    got_lp, got_state = fast.forward(ids, got_state)
    np.testing.assert_allclose(got_lp, log_softmax(logits), atol=1e-10, rtol=0)
    for g, w in zip(flat(got_state), flat(want_state)):
        np.testing.assert_allclose(g, w, atol=1e-10, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("E", [None, 16])
def test_float32_step_matches_the_model(cell, E):
    model = lm(65, cell, "float32", scale=1.0, hidden_size=67, embedding_dim=E)
    fast = model.compile()
    ids = np.random.default_rng(1).integers(0, 65, (3, 20))
    logits, want_state = model.forward(ids)
    got_lp, got_state = fast.forward(ids)
    assert got_lp.dtype == np.float32
    want = log_softmax(logits.astype(np.float64))
    np.testing.assert_allclose(got_lp, want, atol=2e-5, rtol=0)
    for g, w in zip(flat(got_state), flat(want_state)):
        np.testing.assert_allclose(g, w, atol=2e-5, rtol=0)


def python_loop(fast, seed, **kw):
    """The Python sampling loop over the compiled step, and where its generator ends."""
    gen = np.random.default_rng(seed)
    knobs = {k: kw.pop(k) for k in ("temperature", "top_k", "top_p") if k in kw}

    def rule(lp):
        return decode.pick(lp, gen, **knobs)

    return decode.sample_with(fast, rule, **kw), gen.random()


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize(
    "knobs",
    [
        {},
        {"temperature": 0.7, "top_k": 3},
        {"temperature": 1.3, "top_p": 0.8},
        {"temperature": 0.0},
        {"top_k": 1},
    ],
)
@pytest.mark.parametrize("stops", [False, True])
def test_the_one_call_loop_draws_what_the_python_loop_draws(cell, knobs, stops):
    model = lm(5, cell, scale=0.7)
    fast = model.compile()
    # the most likely symbol after the prime survives every knob: some sample stops
    stop_id = int(fast.forward([[1, 3, 0]])[0][0, -1].argmax()) if stops else None
    kw = {"prime_ids": [1, 3, 0], "length": 30, "stop_id": stop_id, "num_samples": 6}
    stopped = 0
    for seed in range(4):
        want, want_next = python_loop(fast, seed, **kw, **knobs)
        gen = np.random.default_rng(seed)
        got = decode.sample(model, rng=gen, **kw, **knobs)
        assert got == want
        assert gen.random() == want_next  # the generator is left where the loop leaves it
        stopped += sum(len(s) < 30 and s[-1] == stop_id for s in got)
    assert (stopped > 0) == stops


def test_sampling_without_prime_and_single_rows():
    model = lm(4, "gru", dtype="float32")
    for length in (0, 1, 7):
        want, _ = python_loop(model.compile(), 5, length=length, num_samples=1)
        assert decode.sample(model, length=length, seed=5) == want
    assert decode.greedy(model, length=6) == decode.greedy(reference_twin(model), length=6)


def reference_twin(model):
    """The same model on the NumPy reference kernels (decoded without compiling)."""
    twin = CharLM(model.config, backend=reference)
    twin.load_state_dict(model.state_dict())
    return twin.eval()


def test_which_models_are_compiled():
    model = lm()
    assert isinstance(compiled(model), CompiledLM)
    twin = reference_twin(model)
    assert compiled(twin) is twin
    ens = compiled(Ensemble([model, twin], mode="logprob", weights=[1, 3]))
    assert isinstance(ens, Ensemble) and ens.mode == "logprob"
    assert isinstance(ens.models[0], CompiledLM) and ens.models[1] is twin
    np.testing.assert_allclose(ens.weights, [0.25, 0.75])


def test_reference_and_compiled_decoding_agree():
    model = lm(6, "lstm", scale=2.5)
    twin = reference_twin(model)
    kw = {"prime_ids": [0, 5], "length": 25}
    assert decode.greedy(model, **kw) == decode.greedy(twin, **kw)
    assert decode.sample(model, seed=3, **kw) == decode.sample(twin, seed=3, **kw)
    a = decode.beam_search(model, beam_size=4, max_length=8, n_best=4)
    b = decode.beam_search(twin, beam_size=4, max_length=8, n_best=4)
    assert [h.ids for h in a] == [h.ids for h in b]
    np.testing.assert_allclose([h.log_prob for h in a], [h.log_prob for h in b], atol=1e-10)


def test_decoders_see_the_current_weights():
    model = lm(5, "rnn_tanh")
    before = decode.greedy(model, prime_ids=[1], length=12)
    fast = model.compile()
    model.load_state_dict({k: -p for k, p in model.state_dict().items()})
    after = decode.greedy(model, prime_ids=[1], length=12)
    assert after == decode.greedy(reference_twin(model), prime_ids=[1], length=12)
    assert decode.greedy(fast, prime_ids=[1], length=12) == before  # a snapshot
    assert before != after


def test_compiled_model_is_decodable_and_described():
    model = lm(9, "lstm", dtype="float32", embedding_dim=4)
    fast = model.compile()
    assert fast.vocab_size == 9 and fast.dtype == np.float32
    assert "mode='lstm'" in repr(fast) and "float32" in repr(fast)
    h, c = fast.initial_state(3)
    assert h.shape == c.shape == (2, 3, 6) and h.dtype == np.float32
    score = decode.score(fast, [1, 2, 3, 4])
    np.testing.assert_allclose(
        score.log_prob, decode.score(model, [1, 2, 3, 4]).log_prob, atol=1e-4
    )
    hyps = decode.beam_search(fast, beam_size=3, max_length=5)
    assert len(hyps[0].ids) == 5


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_step_can_continue_chosen_rows(cell):
    fast = lm(6, cell).compile()
    _, state = fast.forward(np.arange(12).reshape(4, 3) % 6)  # 4 rows
    rows = np.array([2, 2, 0])
    want_lp, want = fast.step(np.array([1, 4, 5]), decode._model.take_rows(state, rows))
    got_lp, got = fast.step(np.array([1, 4, 5]), state, rows)
    np.testing.assert_array_equal(got_lp, want_lp)
    for g, w in zip(flat(got), flat(want)):
        np.testing.assert_array_equal(g, w)
    with pytest.raises(ArgumentError, match="rows"):
        fast.step(np.array([1, 4, 5]), state, np.array([0, 4, 1]))
    with pytest.raises(ShapeError, match="rows"):
        fast.step(np.array([1, 4, 5]), state, np.array([0, 1]))


def test_decoders_reuse_a_compilation_until_a_weight_changes():
    model = lm(V=9, hidden_size=6)
    first = compiled(model)
    assert compiled(model) is first, "unchanged weights: the same compilation"
    ids = np.array([1, 4, 2])
    before, _ = first.step(ids)
    w = dict(model.named_parameters())["rnn.weight_ih_l0"]
    w[2, :] += 0.5  # in place: same array, same address
    second = compiled(model)
    assert second is not first
    after, _ = second.step(ids)
    want, _ = CompiledLM(model).step(ids)
    np.testing.assert_array_equal(after, want)
    assert not np.allclose(after, before)
    # The sign of a zero is a change too.
    w[0, 0] = 0.0
    third = compiled(model)
    w[0, 0] = -0.0
    assert compiled(model) is not third
    # load_state_dict of other values is seen.
    other = lm(V=9, hidden_size=6, scale=1.0)
    model.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(compiled(model).step(ids)[0], CompiledLM(other).step(ids)[0])


def test_sampling_twice_packs_once_and_sees_an_edit(monkeypatch):
    model = lm(V=9, hidden_size=6)
    made = []
    original = CompiledLM.__init__

    def counting(self, m):
        made.append(m)
        original(self, m)

    monkeypatch.setattr(CompiledLM, "__init__", counting)
    a = decode.sample(model, prime_ids=[1], length=12, seed=3)
    b = decode.sample(model, prime_ids=[1], length=12, seed=3)
    assert a == b and len(made) == 1
    dict(model.named_parameters())["head.weight"][:] *= -1.0
    decode.sample(model, prime_ids=[1], length=12, seed=3)
    assert len(made) == 2


def test_sample_loop_names_bad_knobs():
    fast = lm(5, "gru").compile()
    lp, state = fast.step(np.array([1]), None)
    kw = {"length": 3, "temperature": 1.0, "top_k": None, "top_p": None, "stop_id": None}
    for bad, name in (
        ({"top_k": -1}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"stop_id": -1}, "stop_id"),
    ):
        with pytest.raises(ArgumentError, match=name):
            fast.sample_loop(lp, state, np.zeros(3), **{**kw, **bad}, top_p_slack=0.0)
