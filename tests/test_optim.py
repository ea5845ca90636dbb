"""rnncore.optim: update formulas, state dicts, clipping, schedules and the guard.

Every optimizer is checked three ways: a few steps worked out by hand (numbers
in the test), a scalar transcription of torch's documented algorithm, and, when
torch is installed, torch.optim itself on the same parameters and gradients
(parameters and every state buffer after each step). A saved and restored
optimizer must continue bit for bit.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnncore.errors import ArgumentError, CheckpointError, DTypeError, NonFiniteError, ShapeError
from rnncore.optim import (
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Cosine,
    NonFiniteGuard,
    RMSprop,
    StepDecay,
    clip_grad_norm_,
    clip_grad_value_,
    create,
)

CASES = {  # id -> (class, keyword arguments); each exercises a different branch
    "sgd": (SGD, {"lr": 0.1}),
    "sgd_momentum": (SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.01}),
    "sgd_nesterov": (SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    "adagrad": (Adagrad, {"lr": 0.1}),
    "adagrad_decay": (
        Adagrad,
        {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.05, "initial_accumulator_value": 0.3},
    ),
    "rmsprop": (RMSprop, {"lr": 0.01}),
    "rmsprop_centered": (
        RMSprop,
        {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True, "weight_decay": 0.1},
    ),
    "adam": (Adam, {"lr": 0.01}),
    "adam_l2": (Adam, {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1}),
    "adamw": (AdamW, {"lr": 0.01}),
    "adamw_decay": (AdamW, {"lr": 0.02, "betas": (0.5, 0.9), "weight_decay": 0.3}),
}


def problem(rng, dtype=np.float64, steps=6):
    """Two parameters and a gradient sequence for each."""
    params = {
        "w": rng.standard_normal((3, 4)).astype(dtype),
        "b": rng.standard_normal(5).astype(dtype),
    }
    grads = [{k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()}]
    for _ in range(steps - 1):
        grads.append({k: rng.standard_normal(p.shape).astype(dtype) for k, p in params.items()})
    return params, grads


# ------------------------------------------------------------------ by hand


def test_sgd_momentum_by_hand():
    p = {"x": np.array([1.0])}
    opt = SGD(p, lr=0.1, momentum=0.9)
    opt.step({"x": np.array([0.5])})  # buf = 0.5, p = 1 - 0.05
    assert p["x"][0] == pytest.approx(0.95, abs=1e-15)
    opt.step({"x": np.array([-1.0])})  # buf = 0.45 - 1 = -0.55, p = 0.95 + 0.055
    assert p["x"][0] == pytest.approx(1.005, abs=1e-15)
    opt = SGD(p := {"x": np.array([1.0])}, lr=0.1, momentum=0.9, nesterov=True)
    opt.step({"x": np.array([0.5])})  # buf = 0.5, step g + 0.9 buf = 0.95
    assert p["x"][0] == pytest.approx(1 - 0.095, abs=1e-15)


def test_adagrad_by_hand():
    p = {"x": np.array([1.0, 2.0])}
    opt = Adagrad(p, lr=0.1, eps=0.0)
    opt.step({"x": np.array([2.0, -0.5])})  # sum = (4, 0.25): p -= 0.1 * sign(g)
    np.testing.assert_allclose(p["x"], [0.9, 2.1], atol=1e-15)
    opt.step({"x": np.array([0.0, 0.5])})  # sum = (4, 0.5): p -= 0.1 * 0.5 / sqrt(0.5)
    np.testing.assert_allclose(p["x"], [0.9, 2.1 - 0.1 * 0.5 / math.sqrt(0.5)], atol=1e-15)
    # min-char-rnn's variant: the epsilon inside the square root
    p = {"x": np.array([1.0])}
    Adagrad(p, lr=0.1, eps=1e-8, eps_inside_sqrt=True).step({"x": np.array([3.0])})
    assert p["x"][0] == 1.0 - 0.1 * 3.0 / np.sqrt(9.0 + 1e-8)


def test_adam_first_step_is_lr_times_sign():
    # after one step m_hat = g and v_hat = g^2, so the step is lr * g / (|g| + eps)
    p = {"x": np.array([1.0, -1.0, 0.5])}
    Adam(p, lr=0.01, eps=0.0).step({"x": np.array([3.0, -0.2, 1e-3])})
    np.testing.assert_allclose(p["x"], [0.99, -0.99, 0.49], rtol=1e-12)
    p = {"x": np.array([2.0])}
    AdamW(p, lr=0.01, weight_decay=0.5, eps=0.0).step({"x": np.array([-4.0])})
    assert p["x"][0] == pytest.approx(2.0 * (1 - 0.005) + 0.01, abs=1e-14)


def test_rmsprop_by_hand():
    p = {"x": np.array([1.0])}
    opt = RMSprop(p, lr=0.01, alpha=0.5, eps=0.0)
    opt.step({"x": np.array([2.0])})  # v = 0.5 * 4 = 2: p -= 0.01 * 2 / sqrt(2)
    assert p["x"][0] == pytest.approx(1.0 - 0.01 * math.sqrt(2.0), abs=1e-15)
    opt.step({"x": np.array([-2.0])})  # v = 1 + 2 = 3
    assert p["x"][0] == pytest.approx(1.0 - 0.01 * math.sqrt(2.0) + 0.02 / math.sqrt(3), abs=1e-15)


# ------------------------------------------------------------------ scalar transcriptions


def scalar_reference(name, kw, p, gs):
    """Torch's documented algorithm for one scalar parameter, in plain Python floats."""
    lr, wd = kw["lr"], kw.get("weight_decay", 0.0)
    buf = s = m = v = g_bar = 0.0
    s = kw.get("initial_accumulator_value", 0.0)
    for t, g in enumerate(gs, start=1):
        if name.startswith("sgd"):
            mu, tau = kw.get("momentum", 0.0), kw.get("dampening", 0.0)
            g += wd * p
            if mu:
                buf = g if t == 1 else mu * buf + (1 - tau) * g
                g = g + mu * buf if kw.get("nesterov") else buf
            p -= lr * g
        elif name.startswith("adagrad"):
            g += wd * p
            s += g * g
            p -= lr / (1 + (t - 1) * kw.get("lr_decay", 0.0)) * g / (math.sqrt(s) + 1e-10)
        elif name.startswith("rmsprop"):
            a, mu = kw.get("alpha", 0.99), kw.get("momentum", 0.0)
            g += wd * p
            s = a * s + (1 - a) * g * g
            if kw.get("centered"):
                g_bar = a * g_bar + (1 - a) * g
            d = math.sqrt(s - g_bar * g_bar) + 1e-8
            buf = mu * buf + g / d
            p -= lr * (buf if mu else g / d)
        else:
            b1, b2 = kw.get("betas", (0.9, 0.999))
            eps = kw.get("eps", 1e-8)
            if name.startswith("adamw"):
                p *= 1 - lr * kw.get("weight_decay", 0.01)
            else:
                g += wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            p -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("case", CASES)
def test_matches_scalar_transcription(case, rng):
    cls, kw = CASES[case]
    params, grads = problem(rng)
    start = {k: p.copy() for k, p in params.items()}
    opt = cls(params, **kw)
    for g in grads:
        opt.step(g)
    for k, p in params.items():
        for idx in np.ndindex(p.shape):
            expected = scalar_reference(case, kw, float(start[k][idx]), [g[k][idx] for g in grads])
            assert p[idx] == pytest.approx(expected, rel=1e-11, abs=1e-13), (k, idx)


# ------------------------------------------------------------------ torch


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case, dtype, rng):
    torch = pytest.importorskip("torch")
    cls, kw = CASES[case]
    params, grads = problem(rng, dtype)
    theirs = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
    torch_cls = getattr(torch.optim, cls.__name__)
    torch_opt = torch_cls(list(theirs.values()), **kw, foreach=False)
    opt = cls(params, **kw)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-7}
    for g in grads:
        for k, t in theirs.items():
            t.grad = torch.tensor(g[k])
        torch_opt.step()
        opt.step(g)
        for k, t in theirs.items():
            np.testing.assert_allclose(params[k], t.detach().numpy(), **tol, err_msg=k)
            for buf, arrays in opt.state.items():
                expected = torch_opt.state[t][buf].numpy()
                np.testing.assert_allclose(arrays[k], expected, **tol, err_msg=f"{buf}.{k}")


def test_clip_grad_norm_matches_torch(rng):
    torch = pytest.importorskip("torch")
    grads = {"a": rng.standard_normal((4, 3)), "b": rng.standard_normal(7)}
    tensors = [torch.zeros(g.shape, dtype=torch.float64) for g in grads.values()]
    for t, g in zip(tensors, grads.values()):
        t.grad = torch.tensor(g)
    for max_norm in (0.5, 100.0):
        expected = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
        assert clip_grad_norm_(grads, max_norm) == pytest.approx(expected, rel=1e-14)
        for t, g in zip(tensors, grads.values()):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)


# ------------------------------------------------------------------ state dicts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_state_dict_restores_bitwise(case, dtype, rng):
    cls, kw = CASES[case]
    params, grads = problem(rng, dtype, steps=8)
    opt = cls(params, **kw)
    for g in grads[:4]:
        opt.step(g)
    tensors, meta = opt.state_dict()
    meta = json.loads(json.dumps(meta))  # what a checkpoint stores
    saved = {k: p.copy() for k, p in params.items()}
    for g in grads[4:]:
        opt.step(g)

    restored = {k: p.copy() for k, p in saved.items()}
    other = create(case.split("_")[0], restored, lr=123.0)  # other hyperparameters
    other.load_state_dict(tensors, meta)
    assert other.steps == 4 and other.lr == kw["lr"]
    for g in grads[4:]:
        other.step(g)
    for k in params:
        assert restored[k].dtype == dtype
        np.testing.assert_array_equal(restored[k], params[k])


def test_state_dict_keys_and_meta(rng):
    params, grads = problem(rng)
    opt = Adam(params, lr=0.01, betas=(0.8, 0.9))
    opt.step(grads[0])
    tensors, meta = opt.state_dict()
    assert sorted(tensors) == ["exp_avg.b", "exp_avg.w", "exp_avg_sq.b", "exp_avg_sq.w"]
    assert meta == {
        "type": "Adam",
        "step": 1,
        "lr": 0.01,
        "betas": [0.8, 0.9],
        "eps": 1e-8,
        "weight_decay": 0.0,
    }
    tensors["exp_avg.w"][:] = 7  # a copy: the optimizer is unchanged
    assert not np.any(opt.state["exp_avg"]["w"] == 7)


def test_load_state_dict_rejects_mismatches(rng):
    params, _ = problem(rng)
    tensors, meta = Adam(params, lr=0.1).state_dict()
    opt = Adam({k: p.copy() for k, p in params.items()}, lr=0.5)
    with pytest.raises(CheckpointError, match="'Adam', not 'AdamW'"):
        AdamW(params, lr=0.1).load_state_dict(tensors, meta)
    with pytest.raises(CheckpointError, match="missing"):
        opt.load_state_dict({k: v for k, v in tensors.items() if k != "exp_avg.b"}, meta)
    bad = dict(tensors, **{"exp_avg.w": np.zeros((4, 3))})
    with pytest.raises(CheckpointError, match=r"exp_avg\.w"):
        opt.load_state_dict(bad, meta)
    with pytest.raises(CheckpointError, match="betas"):
        opt.load_state_dict(tensors, dict(meta, betas=[0.9, 1.5]))
    with pytest.raises(CheckpointError, match="step"):
        opt.load_state_dict(tensors, dict(meta, step=-1))
    assert opt.lr == 0.5 and opt.steps == 0  # untouched by the failed loads
    # momentum state restores into an optimizer built without momentum
    sgd = SGD(params, lr=0.1, momentum=0.9)
    sgd.step({k: np.ones_like(p) for k, p in params.items()})
    plain = SGD({k: p.copy() for k, p in params.items()}, lr=0.1)
    plain.load_state_dict(*sgd.state_dict())
    assert plain.momentum == 0.9
    np.testing.assert_array_equal(plain.state["momentum_buffer"]["w"], np.ones((3, 4)))


# ------------------------------------------------------------------ step arguments


def test_step_checks_grads(rng):
    params, grads = problem(rng)
    opt = SGD(params, lr=0.1)
    with pytest.raises(ArgumentError, match=r"no entry for parameters \['b'\]"):
        opt.step({"w": grads[0]["w"]})
    with pytest.raises(ShapeError, match="grads\\['w'\\]"):
        opt.step({"w": np.zeros((4, 3)), "b": grads[0]["b"]})
    with pytest.raises(DTypeError, match="grads\\['b'\\]"):
        opt.step({"w": grads[0]["w"], "b": grads[0]["b"].astype(np.float32)})
    bad = grads[0]["b"].copy()
    bad[2] = np.nan
    with pytest.raises(NonFiniteError, match="grads\\['b'\\]"):
        opt.step({"w": grads[0]["w"], "b": bad})
    assert opt.steps == 0
    before = params["w"].copy()
    opt.step({**grads[0], "frozen": np.zeros(3)})  # extra names are ignored
    assert opt.steps == 1 and not np.array_equal(before, params["w"])


def test_constructor_checks():
    with pytest.raises(ArgumentError, match="empty"):
        SGD({}, lr=0.1)
    with pytest.raises(ArgumentError, match="dict"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(DTypeError, match="params\\['x'\\]"):
        SGD({"x": np.zeros(3, np.int64)}, lr=0.1)
    with pytest.raises(ArgumentError, match="lr"):
        Adam({"x": np.zeros(3)}, lr=-1.0)
    with pytest.raises(ArgumentError, match="nesterov"):
        SGD({"x": np.zeros(3)}, lr=0.1, nesterov=True)
    with pytest.raises(ArgumentError, match="betas"):
        Adam({"x": np.zeros(3)}, lr=0.1, betas=(0.9,))
    opt = Adam({"x": np.zeros(3)}, lr=0.1)
    with pytest.raises(ArgumentError, match="lr"):
        opt.lr = float("nan")
    opt.lr = 0.02
    assert opt.lr == 0.02


def test_create():
    p = {"x": np.zeros(2)}
    for name, cls in [("sgd", SGD), ("Adagrad", Adagrad), ("RMSPROP", RMSprop)]:
        assert type(create(name, p, 0.1)) is cls
    opt = create("adamw", p, 0.1, betas=(0.5, 0.6))
    assert type(opt) is AdamW and opt.betas == (0.5, 0.6) and opt.weight_decay == 0.01
    with pytest.raises(ArgumentError, match="'sgd', 'adagrad'"):
        create("lbfgs", p, 0.1)
    with pytest.raises(ArgumentError, match="momentum"):
        create("adam", p, 0.1, momentum=0.9)


# ------------------------------------------------------------------ clipping


def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]], np.float32)}
    assert clip_grad_norm_(grads, 10.0) == 5.0  # below the limit: unchanged
    np.testing.assert_array_equal(grads["a"], [3.0, 0.0])
    assert clip_grad_norm_(grads, 1.0) == 5.0
    np.testing.assert_allclose(grads["a"], [3.0 / (5 + 1e-6), 0.0], rtol=1e-15)
    assert grads["b"].dtype == np.float32
    np.testing.assert_allclose(grads["b"], [[0.8]], rtol=1e-6)
    inf = {"a": np.array([np.inf, 1.0])}
    assert math.isinf(clip_grad_norm_(inf, 1.0))
    np.testing.assert_array_equal(inf["a"], [np.inf, 1.0])  # left for the guard


def test_clip_grad_value():
    grads = {"a": np.array([-7.0, -5.0, 0.5, 6.0]), "b": np.array([[9.0]], np.float32)}
    clip_grad_value_(grads, 5)
    np.testing.assert_array_equal(grads["a"], [-5.0, -5.0, 0.5, 5.0])
    np.testing.assert_array_equal(grads["b"], [[5.0]])
    with pytest.raises(ArgumentError, match="clip"):
        clip_grad_value_(grads, 0)
    with pytest.raises(DTypeError, match="floating-point"):
        clip_grad_value_([[1.0, 2.0]], 1.0)


# ------------------------------------------------------------------ schedules


def test_step_decay_char_rnn():
    sched = StepDecay(every=1, factor=0.5, start=10)  # char-rnn: decay after epoch 10
    assert [sched.lr_at(1.0, e) for e in (0, 9, 9.99, 10, 10.5, 11, 13)] == [
        1.0,
        1.0,
        1.0,
        0.5,
        0.5,
        0.25,
        0.0625,
    ]
    torch_like = StepDecay(every=3, factor=0.1)  # torch's StepLR(step_size=3)
    assert [torch_like.decays(e) for e in range(8)] == [0, 0, 0, 1, 1, 1, 2, 2]
    with pytest.raises(ArgumentError, match="every"):
        StepDecay(every=0, factor=0.5)


def test_step_decay_matches_torch_step_lr():
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.7)
    ours = StepDecay(every=2, factor=0.7)
    for epoch in range(9):
        assert ours.lr_at(0.3, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
        opt.step()
        sched.step()


def test_cosine():
    c = Cosine(total_steps=10, warmup=2, min_lr=0.1)
    assert c.lr_at(1.0, 0) == 0.5 and c.lr_at(1.0, 1) == 1.0  # linear warm-up
    assert c.lr_at(1.0, 2) == 1.0  # the peak where the cosine starts
    assert c.lr_at(1.0, 6) == pytest.approx(0.55)  # half-way: the mean of 1 and 0.1
    assert c.lr_at(1.0, 10) == 0.1 and c.lr_at(1.0, 50) == 0.1
    values = [c.lr_at(1.0, s) for s in range(2, 11)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ArgumentError, match="warmup"):
        Cosine(total_steps=5, warmup=5)


def test_cosine_matches_torch():
    torch = pytest.importorskip("torch")
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=7, eta_min=0.01)
    ours = Cosine(total_steps=7, min_lr=0.01)
    for step in range(8):
        assert ours.lr_at(0.2, step) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


# ------------------------------------------------------------------ guard


def test_non_finite_guard():
    ok = {"w": np.ones(3)}
    bad = {"w": np.array([1.0, np.inf, 0.0])}
    guard = NonFiniteGuard(max_in_a_row=3)
    assert guard.check(1.0, ok)
    assert not guard.check(float("nan"), ok)
    assert not guard.check(1.0, bad)
    assert guard.check(2.0, ok)  # resets the run
    assert guard.skipped == 2 and guard.in_a_row == 0
    assert not guard.check(float("inf"), ok)
    assert not guard.check(1.0, bad)
    with pytest.raises(NonFiniteError, match=r"3 steps in a row.*grads\['w'\]"):
        guard.check(1.0, bad)
    assert guard.skipped == 5
    restored = NonFiniteGuard()
    restored.load_state_dict(json.loads(json.dumps(guard.state_dict())))
    assert (restored.skipped, restored.in_a_row) == (5, 3)
    with pytest.raises(ArgumentError, match="max_in_a_row"):
        NonFiniteGuard(0)
