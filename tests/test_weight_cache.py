"""The cache of packed weights: reused while the weights hold the same values,
never stale after an in-place edit, a reload or an optimizer step, and bitwise
the same results as packing on every call."""

from __future__ import annotations

import numpy as np
import pytest

import rnncore
from rnncore import nn
from rnncore.errors import ArgumentError, DTypeError
from rnncore.optim import SGD, Adam

# T * N >= 8 and T >= 4: both the input projection and the recurrent products
# go over packed panels.
T, N, D, H = 6, 3, 7, 20


@pytest.fixture(autouse=True)
def fresh_cache():
    rnncore.clear_weight_cache()
    limit = rnncore.weight_cache_info()["limit"]
    yield
    rnncore.set_weight_cache_limit(limit >> 20)
    rnncore.clear_weight_cache()


def uncached(f):
    """``f()`` with the cache off: every call packs its weights afresh."""
    limit = rnncore.weight_cache_info()["limit"]
    rnncore.set_weight_cache_limit(0)
    try:
        return f()
    finally:
        rnncore.set_weight_cache_limit(limit >> 20)


def layer(cls=nn.LSTM, dtype=np.float32, **kw):
    return cls(D, H, **{"num_layers": 2, "dtype": dtype, "seed": 1, **kw})


def inputs(dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal((T, N, D)).astype(dtype)


def flat(result):
    out, h = result
    return [out, *(h if isinstance(h, tuple) else (h,))]


def assert_same_as_uncached(m, x, reuse=True):
    """Two calls (the first packs if the weights changed, the second reuses
    that packing, if ``reuse``) give bitwise what packing afresh gives; returns
    the output."""
    hits = rnncore.weight_cache_info()["hits"]
    first, second = flat(m(x)), flat(m(x))
    if reuse:
        assert rnncore.weight_cache_info()["hits"] > hits, "the second call reuses the packing"
    want = uncached(lambda: flat(m(x)))
    for a, b, c in zip(first, second, want):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    return first[0]


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_repeated_calls_reuse_the_packing_and_change_no_bit(cls, dtype):
    m, x = layer(cls, dtype, bidirectional=True), inputs(dtype)
    m(x)
    m(x)
    info = rnncore.weight_cache_info()
    # Two layers, two directions: W_ih and W_hh of each are reused.
    assert info["hits"] >= 8 and info["entries"] >= 8 and info["bytes"] > 0
    assert_same_as_uncached(m, x)


def test_training_gradients_are_the_same_with_the_cache():
    m, x = layer(), inputs()
    dy = np.random.default_rng(2).standard_normal((T, N, H)).astype(np.float32)

    def grads():
        m.zero_grad()
        m(x)
        m.backward(dy)
        return {k: v.copy() for k, v in m.grads.items()}

    grads()
    cached = grads()
    assert rnncore.weight_cache_info()["hits"] > 0
    want = uncached(grads)
    for k in want:
        np.testing.assert_array_equal(cached[k], want[k], err_msg=k)


@pytest.mark.parametrize("name", ["weight_ih_l0", "weight_hh_l0", "weight_hh_l1_reverse"])
def test_an_in_place_edit_is_seen_by_the_next_call(name):
    m, x = layer(bidirectional=True), inputs()
    before = assert_same_as_uncached(m, x)
    getattr(m, name)[3, 5] += 0.5  # same array, same address, one new value
    after = assert_same_as_uncached(m, x)
    assert not np.array_equal(after, before)


def test_load_state_dict_is_seen_by_the_next_call():
    m, other, x = layer(), nn.LSTM(D, H, num_layers=2, seed=9), inputs()
    assert_same_as_uncached(m, x)
    m.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(assert_same_as_uncached(m, x), other(x)[0])


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_an_optimizer_step_is_seen_by_the_next_call(opt_cls):
    m, x = layer(), inputs()
    opt = opt_cls(dict(m.named_parameters()), lr=0.05)
    dy = np.ones((T, N, H), np.float32)
    for _ in range(3):
        before = assert_same_as_uncached(m, x)
        m.zero_grad()
        m(x)
        m.backward(dy)
        opt.step(m.grads)
        # Changed after a packing no call reused: the backoff keeps no copy.
        assert not np.array_equal(assert_same_as_uncached(m, x, reuse=False), before)
    for _ in range(3):
        m(x)
    assert_same_as_uncached(m, x)


def test_weights_that_change_every_call_stop_being_copied():
    m, x = layer(num_layers=1), inputs()
    w = m.weight_hh_l0
    stored = []
    for step in range(30):
        w[0, 0] = 0.01 * step
        m(x)
        stored.append(rnncore.weight_cache_info()["entries"])
    # The backoff keeps copies on a few calls only, and every call misses.
    assert sum(b > a for a, b in zip(stored, stored[1:])) <= 6, stored
    assert rnncore.weight_cache_info()["misses"] >= 30


def test_the_limit_bounds_the_cache_and_zero_turns_it_off():
    m, x = layer(), inputs()
    rnncore.set_weight_cache_limit(0)
    m(x)
    m(x)
    assert rnncore.weight_cache_info()["entries"] == 0
    assert rnncore.weight_cache_info()["limit"] == 0
    rnncore.set_weight_cache_limit(64)
    m(x)
    m(x)
    info = rnncore.weight_cache_info()
    assert 0 < info["bytes"] <= 64 << 20 and info["limit"] == 64 << 20


@pytest.mark.parametrize("bad", [-1, 2**41])
def test_a_limit_out_of_range_is_refused(bad):
    with pytest.raises(ArgumentError, match="mib"):
        rnncore.set_weight_cache_limit(bad)


@pytest.mark.parametrize("bad", [1.5, True, "64", None])
def test_a_limit_that_is_not_an_integer_is_refused(bad):
    with pytest.raises(DTypeError, match="mib"):
        rnncore.set_weight_cache_limit(bad)


def test_torch_edits_reloads_and_optimizer_steps_are_seen():
    torch = pytest.importorskip("torch")
    rt = pytest.importorskip("rnncore.torch")
    torch.manual_seed(0)
    m = rt.LSTM(D, H, num_layers=2)
    twin = torch.nn.LSTM(D, H, num_layers=2)
    twin.load_state_dict(m.state_dict())
    x = torch.from_numpy(inputs())

    def check():
        with torch.no_grad():
            got, want = m(x)[0], twin(x)[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        return got

    check()
    before = check()
    assert rnncore.weight_cache_info()["hits"] > 0
    with torch.no_grad():  # in place, through the parameter (its _version moves)
        m.weight_hh_l0[2, 3] += 0.5
        twin.weight_hh_l0[2, 3] += 0.5
    after = check()
    assert not torch.equal(after, before)
    # Through .data: torch's version counter does not move; the values decide.
    m.weight_ih_l1.data[1, 1] -= 0.75
    twin.weight_ih_l1.data[1, 1] -= 0.75
    check()
    other = torch.nn.LSTM(D, H, num_layers=2)
    m.load_state_dict(other.state_dict())
    twin.load_state_dict(other.state_dict())
    check()
    opt, topt = (torch.optim.SGD(k.parameters(), lr=0.1) for k in (m, twin))
    for module, o in ((m, opt), (twin, topt)):
        module(x)[0].sum().backward()
        o.step()
    check()
