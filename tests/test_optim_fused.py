"""Adam and AdamW in one compiled call (``rust/src/optim.rs``): bitwise the
NumPy update (``Adam._update``) over steps, dtypes, weight decay and both forms
of the first moment's ``lerp_``; at any thread count; and the NumPy update where
the one call cannot run (views, arrays that share memory)."""

from __future__ import annotations

import numpy as np
import pytest

import rnncore
from rnncore.optim import Adam, AdamW


def arrays(dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"w": (37, 19), "b": (19,), "one": (1,), "big": (70_001,)}
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in shapes.items()} for _ in range(4)]
    return params, grads


def run(cls, dtype, fused, **hp):
    params, grads = arrays(dtype)
    opt = cls(params, lr=3e-2, **hp)
    if not fused:
        opt._step_fused = lambda grads: False
    for g in grads:
        opt.step(g)
    return params, opt


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "cls, hp",
    [
        (Adam, {}),
        (Adam, {"weight_decay": 0.1}),
        (Adam, {"betas": (0.3, 0.9), "eps": 1e-3}),  # lerp_'s other form (1 - beta1 >= 0.5)
        (AdamW, {}),
        (AdamW, {"weight_decay": 0.5, "betas": (0.2, 0.99)}),
    ],
)
def test_one_call_is_bitwise_the_numpy_update(dtype, cls, hp):
    want, want_opt = run(cls, dtype, False, **hp)
    got, got_opt = run(cls, dtype, True, **hp)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    for buf in ("exp_avg", "exp_avg_sq"):
        for k in want:
            np.testing.assert_array_equal(got_opt.state[buf][k], want_opt.state[buf][k])


def test_the_one_call_runs_and_is_the_same_at_any_thread_count(monkeypatch):
    calls = []
    real = Adam._step_fused

    def counting(self, grads):
        done = real(self, grads)
        calls.append(done)
        return done

    monkeypatch.setattr(Adam, "_step_fused", counting)
    results = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            results.append(run(Adam, np.float32, True)[0])
    finally:
        rnncore.set_num_threads(None)
    assert calls and all(calls)
    for r in results[1:]:
        for k in r:
            np.testing.assert_array_equal(r[k], results[0][k])


def test_views_and_shared_memory_take_the_numpy_update():
    base = np.random.default_rng(1).standard_normal((2, 8))
    for params, grads in (
        ({"a": base[0], "b": base[1]}, {"a": np.ones(8), "b": np.ones(8)}),  # views
        ({"a": base.copy()}, None),  # a gradient that is the parameter itself
    ):
        grads = grads or {"a": params["a"]}
        twin = {k: p.copy() for k, p in params.items()}
        opt, ref = Adam(params, lr=0.1), Adam(twin, lr=0.1)
        ref._step_fused = lambda grads: False
        assert opt._step_fused({k: np.asarray(g) for k, g in grads.items()}) is False
        opt.steps = 0
        opt.step(grads)
        ref.step({k: (twin[k] if g is params.get(k) else g) for k, g in grads.items()})
        for k in params:
            np.testing.assert_array_equal(params[k], twin[k])


def test_global_norm_in_one_call():
    from rnncore.optim import global_norm

    rng = np.random.default_rng(3)
    grads = {
        "w": rng.standard_normal((300, 301)).astype(np.float32),
        "t": rng.standard_normal((50, 40)).astype(np.float32).T,  # not C-contiguous
        "e": np.zeros((0, 4), np.float32),
    }
    want = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    norms = []
    try:
        for threads in (1, 2, 3):
            rnncore.set_num_threads(threads)
            norms.append(global_norm(grads))
    finally:
        rnncore.set_num_threads(None)
    assert norms[0] == pytest.approx(want, rel=1e-12)
    assert norms[1] == norms[0] and norms[2] == norms[0]
    mixed = {"a": np.ones(3, np.float32), "b": np.full(2, 2.0)}  # two dtypes: NumPy
    assert global_norm(mixed) == pytest.approx(np.sqrt(11.0))
    assert np.isnan(global_norm({"a": np.array([1.0, np.nan])}))


def test_mixed_dtypes_and_empty_parameters_take_the_numpy_update():
    params = {"a": np.ones(5, np.float32), "b": np.ones(3), "e": np.zeros((0, 2))}
    twin = {k: p.copy() for k, p in params.items()}
    opt, ref = Adam(params, lr=0.1), Adam(twin, lr=0.1)
    ref._step_fused = lambda grads: False
    grads = {k: np.full_like(p, 0.5) for k, p in params.items()}
    assert opt._step_fused(grads) is False
    opt.step(grads)
    ref.step(grads)
    for k in params:
        np.testing.assert_array_equal(params[k], twin[k])
    empty = {"e": np.zeros((0, 2), np.float32), "w": np.ones(4, np.float32)}
    opt = Adam(empty, lr=0.1)
    opt.step({k: np.ones_like(p) for k, p in empty.items()})
    assert empty["w"][0] == pytest.approx(0.9)


def test_the_kernel_names_bad_arguments():
    from rnncore._native import kernels

    p, g, m, v = (np.zeros(3) for _ in range(4))
    hp = {"step_size": 0.1, "bias_correction2_sqrt": 0.5, "lr": 0.1, "beta1": 0.9,
          "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0, "decoupled": False}  # fmt: skip
    k = kernels()
    for bad in ({"eps": float("nan")}, {"lr": -1.0}, {"beta1": 1.0}, {"beta2": float("inf")},
                {"step_size": float("nan")}):  # fmt: skip
        (name,) = bad
        with pytest.raises(ValueError, match=name):
            k.adam_step([p], [g], [m], [v], **{**hp, **bad})
    with pytest.raises(ValueError, match=r"grads\[0\]"):
        k.adam_step([p], [np.zeros(4)], [m], [v], **hp)
    k.adam_step([p], [np.ones(3)], [m], [v], **hp)
    assert (p < 0).all()
