"""Decoding-knob probes: beam search and log-probabilities at the edges.

A beam search always returns at least one hypothesis, and a length penalty
whose scores would overflow is refused by name. The compiled step's
log-softmax is as stable as the NumPy one, for logits up to the largest float
and for infinite ones, with the same rule for each.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore import decode
from rnncore.errors import ArgumentError
from rnncore.models import CharLM, LMConfig
from rnncore.nn.functional import log_softmax

from .conftest import run_cli


def lm(V=5, dtype="float64", **kw):
    cfg = LMConfig(vocab_size=V, hidden_size=4, num_layers=1, dtype=dtype, seed=0, **kw)
    return CharLM(cfg).eval()


# --------------------------------------------------------------------- beam search


@settings(max_examples=40, deadline=None)
@given(
    alpha=st.floats(-60, 60),
    beam=st.integers(1, 4),
    max_length=st.integers(1, 6),
    eos=st.one_of(st.none(), st.integers(0, 4)),
)
def test_beam_search_always_returns_a_hypothesis(alpha, beam, max_length, eos):
    got = decode.beam_search(
        lm(), beam_size=beam, max_length=max_length, eos_id=eos, length_penalty=alpha
    )
    assert len(got) >= 1
    for h in got:
        assert 1 <= len(h.ids) <= max_length
        assert np.isfinite(h.score) and np.isfinite(h.log_prob)


@pytest.mark.parametrize("alpha", [-5000.0, 5000.0, -1e300, 1e308])
def test_a_length_penalty_that_overflows_is_refused_by_name(alpha):
    with pytest.raises(ArgumentError, match="length_penalty"):
        decode.beam_search(lm(), beam_size=2, max_length=3, length_penalty=alpha)


def test_the_cli_refuses_an_overflowing_length_penalty(tiny_run):
    done = run_cli(
        "sample",
        "--checkpoint",
        tiny_run,
        "--beam",
        "2",
        "--length",
        "3",
        "--length-penalty",
        "-5000",
        cwd=tiny_run.parent,
    )
    assert done.returncode == 2, done.stderr
    assert "length_penalty" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------- log-softmax


def compiled_step(model, ids):
    lp, _ = model.compile().step(np.asarray(ids), None)
    return np.asarray(lp)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("big", [3e38, -3e38, 1e30])
def test_huge_head_weights_match_numpy(dtype, big):
    model = lm(dtype=dtype)
    model.head.weight[:] = big
    want, _ = model.step(np.array([1, 2]), None)
    got = compiled_step(model, [1, 2])
    np.testing.assert_allclose(got, want, atol=1e-5 if dtype == "float32" else 1e-12)
    assert not np.any(got == 0.0)  # every symbol shares the mass: log(1/5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [[3e38, 3e38, -3e38, 0, 0], [-3e38, -3e38, -3e38, -3e38, 2.0]])
def test_extreme_logits_match_numpy(dtype, bias):
    model = lm(dtype=dtype)
    model.head.weight[:] = 0
    model.head.bias[:] = bias
    want, _ = model.step(np.array([0, 3]), None)
    got = compiled_step(model, [0, 3])
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(np.exp(got).sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_logits_that_overflow_to_infinity_share_the_mass_as_in_numpy():
    # Saturated gates make every h positive, so 3e38-weighted rows overflow
    # float32 to +inf in any order of summation: two symbols at +inf.
    model = lm(dtype="float32")
    for name, p in model.rnn.named_parameters():
        p[:] = 0 if name.startswith("weight") else 20.0
    model.head.weight[:] = 0
    model.head.weight[:2] = 3e38
    want, _ = model.step(np.array([0, 3]), None)
    got = compiled_step(model, [0, 3])
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    np.testing.assert_allclose(got[:, :2], -np.log(2), atol=1e-6)
    np.testing.assert_allclose(got, want, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(-3.3e38, 3.3e38),
            st.sampled_from([np.inf, -np.inf]),
        ),
        min_size=1,
        max_size=9,
    )
)
def test_log_softmax_rule(row):
    x = np.array(row, dtype=np.float64)
    out = log_softmax(x)
    if np.isneginf(x).all():
        assert np.isnan(out).all()
        return
    assert np.isclose(np.exp(out).sum(), 1.0)
    if np.isposinf(x).any():
        k = np.isposinf(x).sum()
        np.testing.assert_allclose(out[np.isposinf(x)], -np.log(k))
        assert np.isneginf(out[~np.isposinf(x)]).all()
    else:
        top = x.max()
        want = (x - top) - np.log(np.exp(x - top).sum())
        np.testing.assert_allclose(out, want)


def test_log_softmax_of_a_nan_row_is_nan():
    out = log_softmax(np.array([[1.0, np.nan], [0.0, 1.0]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
