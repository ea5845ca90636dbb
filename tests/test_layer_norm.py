"""The layer-normalised LSTM and GRU (Ba et al. 2016), modes ``lstm_ln`` and
``gru_ln``: the kernels against
the float64 reference (hypothesis over shapes, lengths, directions and the dropout
inside the recurrence), the reference against finite differences, the layer, the
models and the command line, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnncore
import rnncore.nn as nn
from rnncore import _rnncore
from rnncore import reference as ref
from rnncore.errors import ArgumentError, NonFiniteError, ShapeError

NAMES = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
LN_MODES = ("lstm_ln", "gru_ln")
GATES = {"lstm_ln": 4, "gru_ln": 3}
BLOCKS = {"lstm_ln": 9, "gru_ln": 6}  # of H entries in w_ln and b_ln


def make(T, N, D, H, *, mode="lstm_ln", seed=0, bias=True, noise=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    f = lambda *s, scale=1.0: (rng.normal(size=s) * scale).astype(dtype)  # noqa: E731
    G, B, lstm = GATES[mode], BLOCKS[mode], mode == "lstm_ln"
    args = dict(x=f(T, N, D), h0=f(N, H, scale=0.5), c0=f(N, H) if lstm else None,
                w_ih=f(G * H, D, scale=0.4), w_hh=f(G * H, H, scale=0.4),
                b_ih=f(G * H, scale=0.1) if bias else None,
                b_hh=f(G * H, scale=0.1) if bias else None)  # fmt: skip
    kw = {"w_ln": (1 + f(B * H, scale=0.3)).astype(dtype), "b_ln": f(B * H, scale=0.3)}
    if noise:
        kw["recurrent_mask"] = ((rng.random((N, H)) > 0.3) / 0.7).astype(dtype)
        kw["zoneout_h"] = (rng.random((T, N, H)) < 0.3).astype(dtype)
        if lstm:
            kw["zoneout_c"] = np.full((T, N, H), 0.4, dtype)
    return args, kw


def run(impl, args, kw, lengths, reverse, seed=1, mode="lstm_ln"):
    a = [args[k] for k in NAMES]
    out, h_n, c_n, cache = impl.forward(mode, *a, lengths, reverse, **kw)
    rng = np.random.default_rng(seed)
    dy, dh = (rng.normal(size=v.shape).astype(v.dtype) for v in (out, h_n))
    dc = None if c_n is None else rng.normal(size=c_n.shape).astype(c_n.dtype)
    grads = impl.backward(mode, a[0], *a[3:], lengths, reverse, cache, dy, dh, dc, **kw)
    return [out, h_n, c_n, *grads]


@st.composite
def cases(draw):
    T, N = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    D, H = draw(st.integers(1, 7)), draw(st.integers(1, 19))
    lengths = None
    if draw(st.booleans()):
        lengths = np.array(draw(st.lists(st.integers(1, T), min_size=N, max_size=N)))
    flags = dict(
        bias=draw(st.booleans()), noise=draw(st.booleans()), mode=draw(st.sampled_from(LN_MODES))
    )
    return (T, N, D, H), flags, lengths, draw(st.booleans())


@settings(max_examples=80, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_kernel_matches_reference_in_float64(case, seed):
    shape, flags, lengths, reverse = case
    args, kw = make(*shape, seed=seed, **flags)
    mode = flags["mode"]
    got = run(_rnncore, args, kw, lengths, reverse, mode=mode)
    want = run(ref, args, kw, lengths, reverse, mode=mode)
    assert len(got) == len(want) == 12  # the gradients of w_ln and b_ln follow
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_kernel_matches_reference_in_float32(case, seed):
    shape, flags, lengths, reverse = case
    args, kw = make(*shape, seed=seed, **flags)
    a32 = {k: None if v is None else v.astype(np.float32) for k, v in args.items()}
    kw32 = {k: v.astype(np.float32) for k, v in kw.items()}
    got = run(_rnncore, a32, kw32, lengths, reverse, mode=flags["mode"])
    want = run(ref, args, kw, lengths, reverse, mode=flags["mode"])
    for g, w in zip(got, want):
        if w is not None:
            assert g.dtype == np.float32
            np.testing.assert_allclose(g, w, rtol=3e-3, atol=3e-4)


@pytest.mark.parametrize("mode", LN_MODES)
@pytest.mark.parametrize("noise", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_reference_gradients_match_finite_differences(mode, noise, reverse):
    T, N, D, H = 4, 3, 3, 5
    args, kw = make(T, N, D, H, mode=mode, seed=3, noise=noise)
    lengths = np.array([4, 1, 3])
    rng = np.random.default_rng(4)
    out, h_n, c_n, cache = ref.forward(mode, *args.values(), lengths, reverse, **kw)
    dy, dh = (rng.normal(size=v.shape) for v in (out, h_n))
    dc = None if c_n is None else rng.normal(size=c_n.shape)
    a = args
    g = ref.backward(mode, a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], lengths,
                     reverse, cache, dy, dh, dc, **kw)  # fmt: skip
    analytic = dict(zip(("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_ln", "b_ln"), g))

    def loss(arrays):
        o, h, c, _ = ref.forward(
            mode, *(arrays[k] for k in NAMES), lengths, reverse,
            **{**kw, "w_ln": arrays["w_ln"], "b_ln": arrays["b_ln"]},
        )  # fmt: skip
        return (o * dy).sum() + (h * dh).sum() + (0.0 if c is None else (c * dc).sum())

    base = {k: v for k, v in {**args, "w_ln": kw["w_ln"], "b_ln": kw["b_ln"]}.items()}
    eps = 1e-6
    G = GATES[mode]
    for name, grad in analytic.items():
        if grad is None:
            continue
        idxs = {
            (0,) * grad.ndim,
            tuple(s - 1 for s in grad.shape),
            tuple(s // 2 for s in grad.shape),
        }
        if name in ("w_ln", "b_ln"):  # one entry in each normalisation's block
            idxs |= {(1,), (G * H + 2,), (BLOCKS[mode] * H - 1,)}
        for idx in idxs:
            plus = {k: None if v is None else v.copy() for k, v in base.items()}
            minus = {k: None if v is None else v.copy() for k, v in base.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd = (loss(plus) - loss(minus)) / (2 * eps)
            assert abs(fd - grad[idx]) < 1e-6 * max(1.0, abs(fd)), (name, idx, fd, grad[idx])


@pytest.mark.parametrize("mode", LN_MODES)
def test_wide_batches_match_the_reference_and_any_thread_count(mode):
    args, kw = make(4, 70, 9, 72, mode=mode, seed=5, noise=True)
    lengths = np.random.default_rng(0).integers(1, 5, size=70)
    want = run(ref, args, kw, lengths, True, mode=mode)
    results = []
    try:
        for threads in (1, 2, 4):
            rnncore.set_num_threads(threads)
            results.append(run(_rnncore, args, kw, lengths, True, mode=mode))
    finally:
        rnncore.set_num_threads(None)
    for g, w in zip(results[0], want):
        if w is not None:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_a_fresh_layer_does_not_see_the_scale_of_its_weights():
    """With gains 1 and shifts 0 the normalisations undo a scaling of W_ih and
    W_hh, up to the epsilon added to each variance: at scales 10 and 100 that
    epsilon is negligible, and the outputs agree."""
    layer = nn.LSTM(3, 8, layer_norm=True, seed=2, dtype=np.float64)
    x = np.random.default_rng(0).normal(size=(6, 4, 3))
    w = {k: getattr(layer, k).copy() for k in ("weight_ih_l0", "weight_hh_l0")}
    outs = []
    for scale in (10.0, 100.0):
        for name, v in w.items():
            setattr(layer, name, v * scale)
        outs.append(layer(x)[0])
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)
    plain = nn.LSTM(3, 8, seed=2, dtype=np.float64)
    assert not np.allclose(plain(x)[0], outs[0], atol=1e-3)  # the normalisation matters


def test_layer_parameters_gradients_and_reference_backend():
    kw = dict(num_layers=2, bidirectional=True, layer_norm=True, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).normal(size=(5, 3, 4))
    results = []
    for backend in (None, ref):
        m = nn.LSTM(4, 6, backend=backend, **kw)
        out, (_, c) = m(x)
        dx, _ = m.backward(np.ones_like(out))
        results.append((out, c, dx, m.grads["weight_ln_l1_reverse"], m.grads["bias_ln_l0"]))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    params = dict(m.named_parameters())
    assert params["weight_ln_l0"].shape == params["bias_ln_l1_reverse"].shape == (54,)
    np.testing.assert_array_equal(params["weight_ln_l0"], 1.0)
    np.testing.assert_array_equal(params["bias_ln_l0"], 0.0)
    assert "layer_norm=True" in repr(m)

    # The layer's chain rule, through the parameters of the second layer.
    eps, dy = 1e-6, np.random.default_rng(2).normal(size=(5, 3, 12))
    m.zero_grad()
    m(x)
    m.backward(dy)
    for name, idx in (("weight_ln_l1", 30), ("bias_ln_l1_reverse", 50), ("weight_hh_l1", (3, 2))):
        p, old = params[name], params[name][idx]
        p[idx] = old + eps
        up = (m(x)[0] * dy).sum()
        p[idx] = old - eps
        down = (m(x)[0] * dy).sum()
        p[idx] = old
        assert abs((up - down) / (2 * eps) - m.grads[name][idx]) < 1e-6, name


def test_the_gru_layer_matches_the_reference_backend_and_names_its_parameters():
    x = np.random.default_rng(0).normal(size=(5, 3, 4))
    results = []
    for backend in (None, ref):
        m = nn.GRU(4, 6, num_layers=2, layer_norm=True, dtype=np.float64, seed=2, backend=backend)
        out, h = m(x, lengths=np.array([5, 3, 1]))
        dx, _ = m.backward(np.ones_like(out))
        results.append((out, h, dx, m.grads["weight_ln_l1"], m.grads["bias_hh_l0"]))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert dict(m.named_parameters())["bias_ln_l0"].shape == (36,)
    assert "layer_norm=True" in repr(m)
    with pytest.raises(ArgumentError, match="reset_after=False cannot be combined"):
        nn.GRU(4, 6, layer_norm=True, reset_after=False)


def test_the_language_model_and_the_command_line_train_it(tmp_path, capsys):
    from rnncore.checkpoint import load_checkpoint, load_model
    from rnncore.cli import main
    from rnncore.models import CharLM, LMConfig

    model = CharLM(LMConfig(vocab_size=12, cell="lstm_ln", hidden_size=8, forget_bias=1.0))
    assert model.rnn.layer_norm and not model.decodes_compiled
    out = tmp_path / "run"
    common = ["--rnn-size", "16", "--seq-length", "8", "--batch-size", "4", "--eval-every", "5"]
    assert (
        main(["train", "--model", "lstm_ln", "--max-steps", "6", "--out", str(out), *common]) == 0
    )
    assert load_checkpoint(out / "latest").state["model_config"]["cell"] == "lstm_ln"
    loaded, _, _ = load_model(out / "latest")
    assert "rnn.weight_ln_l1" in dict(loaded.named_parameters())
    capsys.readouterr()
    assert (
        main(["sample", "--checkpoint", str(out / "latest"), "--length", "20", "--seed", "1"]) == 0
    )
    assert len(capsys.readouterr().out) >= 20
    gru = ["train", "--model", "gru-ln", "--max-steps", "3", "--out", str(tmp_path / "g"), *common]
    assert main(gru) == 0


# ---------------------------------------------------------------- errors


def test_bad_arguments_are_named():
    with pytest.raises(ArgumentError, match=r"cifg=True and layer_norm=True cannot be combined"):
        nn.LSTM(3, 4, cifg=True, layer_norm=True)
    args, kw = make(3, 2, 3, 4)
    a = list(args.values())
    with pytest.raises(ArgumentError, match="w_ln"):
        _rnncore.forward("lstm_ln", *a, None, False)
    with pytest.raises(ShapeError, match="b_ln"):
        _rnncore.forward("lstm_ln", *a, None, False, w_ln=kw["w_ln"], b_ln=kw["b_ln"][:-1])
    bad = kw["w_ln"].copy()
    bad[7] = np.inf
    with pytest.raises(NonFiniteError, match="w_ln"):
        _rnncore.forward("lstm_ln", *a, None, False, w_ln=bad, b_ln=kw["b_ln"])
    with pytest.raises(ArgumentError, match="w_ln"):
        _rnncore.forward("lstm", *a, None, False, **kw)
    out = _rnncore.forward("lstm", *a, None, False)
    with pytest.raises(ArgumentError, match="normalisations"):  # a cache without them
        _rnncore.backward("lstm_ln", a[0], *a[3:], None, False, out[3], out[0], **kw)


def test_onnx_export_refuses_it_by_name(tmp_path):
    pytest.importorskip("onnx")
    from rnncore.export import to_onnx

    with pytest.raises(ArgumentError, match="lstm_ln"):
        to_onnx(nn.LSTM(3, 4, layer_norm=True), tmp_path / "m.onnx")


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_traces_read_the_normalised_cells_on_both_backends(cls):
    x = np.random.default_rng(0).normal(size=(6, 2, 3))
    traces = []
    for backend in (None, ref):
        m = cls(3, 5, layer_norm=True, dtype=np.float64, seed=4, backend=backend)
        arrays, _ = m.trace(x)
        out, _ = m(x)
        np.testing.assert_allclose(arrays["h"][0], out, rtol=1e-12, atol=1e-14)
        traces.append(arrays)
    assert traces[0].keys() == traces[1].keys()
    for k in traces[0]:
        np.testing.assert_allclose(traces[0][k], traces[1][k], rtol=1e-10, atol=1e-12, err_msg=k)
