"""Dropout inside the recurrence: recurrent (variational) dropout, zoneout of the
hidden and cell states, and variational input dropout.

The kernels against the float64 reference (hypothesis over modes, shapes, lengths
and directions), the reference against finite differences, the layers' chain rule
by finite differences, thread-count determinism, and the errors."""

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
from rnncore.reference.cells import CELL_STATE, MUT_IH, weight_rows

MODES = ["rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before", "lstm_cifg",
         "lstm_peephole", "mut1", "mut2", "mut3"]  # fmt: skip


def make(mode, T, N, D, H, *, seed=0, rec=True, zh=True, zc=True, training=True, dtype=np.float64):
    """Arguments of one kernel call with every mask the mode takes."""
    rng = np.random.default_rng(seed)
    if mode in ("mut1", "mut2"):
        D = H
    IH, HH = weight_rows(mode, H)
    f = lambda *s, scale=1.0: (rng.normal(size=s) * scale).astype(dtype)  # noqa: E731
    args = dict(
        x=f(T, N, D), h0=f(N, H, scale=0.5), c0=f(N, H) if mode in CELL_STATE else None,
        w_ih=f(IH, D, scale=0.4), w_hh=f(HH, H, scale=0.4), b_ih=f(IH, scale=0.1),
        b_hh=f(HH, scale=0.1),
    )  # fmt: skip
    kw = {}
    if mode == "lstm_peephole":
        kw["w_peep"] = f(3 * H, scale=0.3)
    if rec and mode not in MUT_IH:
        kw["recurrent_mask"] = ((rng.random((N, H)) > 0.3) / 0.7).astype(dtype)
    for name, on in (("zoneout_h", zh), ("zoneout_c", zc and mode in CELL_STATE)):
        if on:
            z = (rng.random((T, N, H)) < 0.4) if training else np.full((T, N, H), 0.4)
            kw[name] = z.astype(dtype)
    return args, kw


def run(impl, mode, args, kw, lengths, reverse, seed=1):
    """Forward, then backward with random output gradients: every result."""
    a = args
    out, h_n, c_n, cache = impl.forward(
        mode, a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
        lengths, reverse, **kw,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    dy = rng.normal(size=out.shape).astype(out.dtype)
    dh = rng.normal(size=h_n.shape).astype(out.dtype)
    dc = None if c_n is None else rng.normal(size=c_n.shape).astype(out.dtype)
    grads = impl.backward(
        mode, a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], lengths, reverse, cache,
        dy, dh, dc, **kw,
    )  # fmt: skip
    return [out, h_n, c_n, *grads]


def lengths_for(draw, T, N):
    if not draw(st.booleans()):
        return None
    return np.array(draw(st.lists(st.integers(1, T), min_size=N, max_size=N)), np.int64)


@st.composite
def cases(draw):
    mode = draw(st.sampled_from(MODES))
    T, N = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    D, H = draw(st.integers(1, 9)), draw(st.integers(1, 19))
    flags = dict(
        rec=draw(st.booleans()), zh=draw(st.booleans()), zc=draw(st.booleans()),
        training=draw(st.booleans()),
    )  # fmt: skip
    return mode, (T, N, D, H), flags, lengths_for(draw, T, N), draw(st.booleans())


@settings(max_examples=120, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_kernel_matches_reference_in_float64(case, seed):
    mode, shape, flags, lengths, reverse = case
    args, kw = make(mode, *shape, seed=seed, **flags)
    got = run(_rnncore, mode, args, kw, lengths, reverse)
    want = run(ref, mode, args, kw, lengths, reverse)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(cases(), st.integers(0, 2**16))
def test_kernel_matches_reference_in_float32(case, seed):
    mode, shape, flags, lengths, reverse = case
    args, kw = make(mode, *shape, seed=seed, **flags)
    args32 = {k: None if v is None else v.astype(np.float32) for k, v in args.items()}
    kw32 = {k: v.astype(np.float32) for k, v in kw.items()}
    got = run(_rnncore, mode, args32, kw32, lengths, reverse)
    want = run(ref, mode, args, kw, lengths, reverse)
    for g, w in zip(got, want):
        if w is not None:
            assert g.dtype == np.float32
            np.testing.assert_allclose(g, w, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("training", [True, False])
def test_reference_gradients_match_finite_differences(mode, training):
    T, N, D, H = 4, 3, 3, 4
    args, kw = make(mode, T, N, D, H, seed=7, training=training)
    lengths, reverse = np.array([4, 2, 3]), mode.endswith("3") or mode == "gru"
    rng = np.random.default_rng(3)
    out, h_n, c_n, _ = ref.forward(mode, *args.values(), lengths, reverse, **kw)
    dy, dh = rng.normal(size=out.shape), rng.normal(size=h_n.shape)
    dc = None if c_n is None else rng.normal(size=c_n.shape)

    def loss(a):
        o, h, c, _ = ref.forward(mode, *a.values(), lengths, reverse, **kw)
        return (o * dy).sum() + (h * dh).sum() + (0.0 if c is None else (c * dc).sum())

    _, _, _, cache = ref.forward(mode, *args.values(), lengths, reverse, **kw)
    a = args
    grads = ref.backward(mode, a["x"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"], lengths,
                         reverse, cache, dy, dh, dc, **kw)  # fmt: skip
    analytic = dict(x=grads[0], h0=grads[1], c0=grads[2], w_ih=grads[3], w_hh=grads[4],
                    b_ih=grads[5], b_hh=grads[6])  # fmt: skip
    eps = 1e-6
    for name, g in analytic.items():
        if g is None:
            continue
        for idx in [(0,) * g.ndim, tuple(s - 1 for s in g.shape), tuple(s // 2 for s in g.shape)]:
            plus = {k: None if v is None else v.copy() for k, v in args.items()}
            minus = {k: None if v is None else v.copy() for k, v in args.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            fd = (loss(plus) - loss(minus)) / (2 * eps)
            assert abs(fd - g[idx]) < 1e-6 * max(1.0, abs(fd)), (name, idx, fd, g[idx])


@pytest.mark.parametrize("mode", ["lstm", "gru", "gru_reset_before", "lstm_peephole"])
def test_wide_batches_match_the_reference(mode):
    """Shards of the batch and steps split across the thread pool (N, H large)."""
    args, kw = make(mode, 3, 70, 9, 72, seed=5)
    lengths = np.random.default_rng(0).integers(1, 4, size=70)
    for reverse in (False, True):
        got = run(_rnncore, mode, args, kw, lengths, reverse)
        want = run(ref, mode, args, kw, lengths, reverse)
        for g, w in zip(got, want):
            if w is not None:
                np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "gru_reset_before"])
def test_bitwise_equal_at_any_thread_count(mode):
    args, kw = make(mode, 6, 48, 16, 256, seed=2, dtype=np.float32)
    lengths = np.random.default_rng(1).integers(1, 7, size=48)
    try:
        results = []
        for threads in (1, 2, 4):
            rnncore.set_num_threads(threads)
            results.append(run(_rnncore, mode, args, kw, lengths, False))
    finally:
        rnncore.set_num_threads(None)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_ones_and_zeros_are_no_noise():
    """A mask of ones and a zoneout of zeros give the plain cell exactly."""
    args, kw = make("lstm", 5, 4, 3, 6, seed=1)
    plain = run(_rnncore, "lstm", args, {}, None, False)
    ones = {
        k: np.ones_like(v) if k == "recurrent_mask" else np.zeros_like(v) for k, v in kw.items()
    }
    for a, b in zip(plain, run(_rnncore, "lstm", args, ones, None, False)):
        np.testing.assert_array_equal(a, b)


def test_zoneout_of_one_keeps_the_initial_state():
    args, kw = make("gru", 4, 2, 3, 5, seed=1, rec=False)
    kw["zoneout_h"] = np.ones_like(kw["zoneout_h"])
    out, h_n, _, _ = _rnncore.forward("gru", *args.values(), None, False, **kw)
    np.testing.assert_array_equal(h_n, args["h0"])
    np.testing.assert_array_equal(out, np.broadcast_to(args["h0"], out.shape))


# ---------------------------------------------------------------- the layers


def layer_grads(layer_cls, dtype=np.float64, **kw):
    """A float64 layer with every kind of noise; finite differences of a loss
    whose masks are drawn the same way each time (the generator is reseeded)."""
    layer = layer_cls(3, 4, num_layers=2, bidirectional=True, dtype=dtype, seed=0, **kw)
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    dy = np.random.default_rng(2).normal(size=(5, 2, 8))

    def loss(x):
        layer.rng = np.random.default_rng(11)
        out, _ = layer(x)
        return float((out * dy).sum())

    loss(x)
    layer.zero_grad()
    dx, _ = layer.backward(dy)
    return layer, x, loss, dx


@pytest.mark.parametrize(
    "cls, kw",
    [
        (nn.LSTM, dict(zoneout_cell=0.4)),
        (nn.GRU, dict(reset_after=False)),
        (nn.GRU, {}),
        (nn.RNN, {}),
    ],
)
def test_layer_gradients_with_noise_match_finite_differences(cls, kw):
    layer, x, loss, dx = layer_grads(
        cls, input_dropout=0.3, recurrent_dropout=0.3, zoneout=0.3, dropout=0.2, **kw
    )
    eps = 1e-6
    for idx in [(0, 0, 0), (4, 1, 2), (2, 0, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        assert abs((loss(xp) - loss(xm)) / (2 * eps) - dx[idx]) < 1e-6
    for name in ("weight_hh_l0", "weight_ih_l1_reverse", "bias_hh_l1"):
        p, g = dict(layer.named_parameters())[name], layer.grads[name]
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            old = p[idx]
            p[idx] = old + eps
            up = loss(x)
            p[idx] = old - eps
            down = loss(x)
            p[idx] = old
            assert abs((up - down) / (2 * eps) - g[idx]) < 1e-6, (name, idx)


def test_layer_runs_the_reference_backend_to_the_same_numbers():
    kw = dict(input_dropout=0.2, recurrent_dropout=0.3, zoneout=0.1, zoneout_cell=0.2)
    x = np.random.default_rng(0).normal(size=(6, 3, 4))
    results = []
    for backend in (None, ref):
        m = nn.LSTM(4, 5, num_layers=2, dtype=np.float64, seed=3, backend=backend, **kw)
        out, (h, c) = m(x)
        dx, _ = m.backward(np.ones_like(out))
        results.append((out, h, c, dx, m.grads["weight_hh_l1"]))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_noise_is_drawn_in_training_only_and_zoneout_is_its_expectation_at_evaluation():
    x = np.random.default_rng(0).normal(size=(7, 4, 3)).astype(np.float32)
    plain = nn.GRU(3, 6, seed=4)
    noisy = nn.GRU(3, 6, seed=4, input_dropout=0.5, recurrent_dropout=0.5)
    noisy.eval()
    plain.eval()
    np.testing.assert_array_equal(noisy(x)[0], plain(x)[0])
    noisy.train()
    a, b = noisy(x)[0], noisy(x)[0]
    assert not np.array_equal(a, b)  # a fresh mask per call
    zoned = nn.LSTM(3, 6, seed=4, zoneout=0.25, zoneout_cell=0.5, dtype=np.float64).eval()
    base = nn.LSTM(3, 6, seed=4, dtype=np.float64)
    w = [base.state_dict()[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    full = lambda p: np.full((7, 4, 6), p)  # noqa: E731
    want = ref.forward("lstm", x, np.zeros((4, 6)), np.zeros((4, 6)), *w, None, False,
                       zoneout_h=full(0.25), zoneout_c=full(0.5))[0]  # fmt: skip
    np.testing.assert_allclose(zoned(x.astype(np.float64))[0], want, rtol=1e-10, atol=1e-12)


def test_seeded_layers_repeat():
    x = np.random.default_rng(0).normal(size=(5, 3, 2)).astype(np.float32)
    outs = []
    for _ in range(2):
        m = nn.LSTM(2, 8, seed=9, recurrent_dropout=0.4, zoneout=0.2, input_dropout=0.1)
        out, _ = m(x)
        m.backward(np.ones_like(out))
        outs.append((out, m.grads["weight_hh_l0"]))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_recurrent_dropout_regularises_toward_zero_mean_masks():
    """With many sequences the mask keeps about 1 - p of the units, scaled by 1/(1-p)."""
    m = nn.RNN(1, 400, seed=0, recurrent_dropout=0.25, dtype=np.float64)
    m(np.zeros((1, 300, 1)))
    mask = m._trace.masks[0].noise.kernel[0]["recurrent_mask"]
    assert mask.shape == (300, 400)
    assert set(np.unique(mask)) == {0.0, 1 / 0.75}
    assert abs((mask == 0).mean() - 0.25) < 0.01


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(recurrent_dropout=1.0), "recurrent_dropout"),
        (dict(zoneout=-0.1), "zoneout"),
        (dict(input_dropout="a"), "input_dropout"),
        (dict(zoneout_cell=0.2), "zoneout_cell is for the LSTM"),
    ],
)
def test_bad_rates_are_named(kw, match):
    with pytest.raises(ArgumentError, match=match):
        nn.GRU(3, 4, **kw)


def test_mut_cells_refuse_recurrent_dropout():
    with pytest.raises(ArgumentError, match="recurrent_dropout is not available for the mut2"):
        nn.MUT2(4, 4, recurrent_dropout=0.1)
    nn.MUT2(4, 4, zoneout=0.1)  # zoneout works for every cell


def test_kernel_errors_name_the_mask():
    args, kw = make("lstm", 3, 2, 3, 4)
    a = list(args.values())
    with pytest.raises(ShapeError, match="recurrent_mask"):
        _rnncore.forward("lstm", *a, None, False, recurrent_mask=np.ones((2, 5)))
    with pytest.raises(ShapeError, match="zoneout_h"):
        _rnncore.forward("lstm", *a, None, False, zoneout_h=np.ones((3, 2)))
    bad = kw["zoneout_c"].copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(NonFiniteError, match="zoneout_c"):
        _rnncore.forward("lstm", *a, None, False, zoneout_c=bad)
    g_args, _ = make("gru", 3, 2, 3, 4)
    with pytest.raises(ArgumentError, match="zoneout_c"):
        _rnncore.forward("gru", *g_args.values(), None, False, zoneout_c=np.ones((3, 2, 4)))
    m_args, _ = make("mut1", 3, 2, 4, 4)
    with pytest.raises(ArgumentError, match="recurrent_mask"):
        _rnncore.forward("mut1", *m_args.values(), None, False, recurrent_mask=np.ones((2, 4)))
    out = _rnncore.forward("lstm", *a, None, False, zoneout_c=kw["zoneout_c"])
    with pytest.raises(ArgumentError, match="cells_new"):  # a cache from a call without it
        plain = _rnncore.forward("lstm", *a, None, False)
        _rnncore.backward("lstm", a[0], *a[3:7], None, False, plain[3], out[0], None, None,
                          zoneout_c=kw["zoneout_c"])  # fmt: skip


# ---------------------------------------------------------------- training


def noisy_trainer(out, max_steps, seed=1):
    from rnncore.corpus import default_corpus
    from rnncore.data import CharVocab, StreamBatcher
    from rnncore.models import CharLM, LMConfig
    from rnncore.optim import create
    from rnncore.train import TrainConfig, Trainer

    text = default_corpus()[:3000]
    vocab = CharVocab.from_text(text)
    config = LMConfig(
        vocab_size=len(vocab), hidden_size=16, num_layers=2, seed=seed, input_dropout=0.1,
        recurrent_dropout=0.3, zoneout=0.1, zoneout_cell=0.2,
    )  # fmt: skip
    model = CharLM(config)
    opt = create("adam", dict(model.named_parameters()), lr=3e-3)
    settings = TrainConfig(max_steps=max_steps, max_epochs=None, eval_every=9, progress=False,
                           out_dir=str(out))  # fmt: skip
    return Trainer(model, opt, StreamBatcher(vocab.encode(text), 4, 16), settings, vocab=vocab)


def test_a_run_with_noise_resumes_bit_for_bit(tmp_path):
    from rnncore.checkpoint import load_checkpoint

    straight = noisy_trainer(tmp_path / "a", 40)
    straight.fit()
    first = noisy_trainer(tmp_path / "b", 17)
    first.fit()
    second = noisy_trainer(tmp_path / "b", 40, seed=5)
    assert second.restore(load_checkpoint(tmp_path / "b" / "latest"))
    second.fit()
    a, b = straight.model.state_dict(), second.model.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert straight.best_val_loss == second.best_val_loss


def test_the_command_line_trains_with_noise_and_keeps_it_in_the_checkpoint(tmp_path, capsys):
    from rnncore.checkpoint import load_checkpoint
    from rnncore.cli import main

    out = tmp_path / "run"
    flags = ["--recurrent-dropout", "0.2", "--zoneout", "0.1", "--zoneout-cell", "0.3",
             "--input-dropout", "0.1"]  # fmt: skip
    common = ["--rnn-size", "16", "--seq-length", "8", "--batch-size", "4", "--eval-every", "5"]
    assert main(["train", "--max-steps", "6", "--out", str(out), *common, *flags]) == 0
    cfg = load_checkpoint(out / "latest").state["model_config"]
    got = [cfg[k] for k in ("recurrent_dropout", "zoneout", "zoneout_cell", "input_dropout")]
    assert got == [0.2, 0.1, 0.3, 0.1]
    capsys.readouterr()
    assert main(["train", "--init-from", str(out), "--zoneout", "0.5", "--max-steps", "8"]) == 2
    assert "--zoneout differs from the checkpoint's zoneout=0.1" in capsys.readouterr().err
    args = ["train", "--min-char-rnn", "--recurrent-dropout", "0.1", "--out", str(tmp_path / "m")]
    assert main(args) == 2
    assert "--min-char-rnn fixes --recurrent-dropout" in capsys.readouterr().err


def test_the_lstm_with_projections_refuses_the_masks_by_name():
    with pytest.raises(ArgumentError, match="not available for the LSTM with projections"):
        nn.LSTM(4, 8, proj_size=3, recurrent_dropout=0.2)
    args, kw = make("lstm", 3, 2, 3, 4)
    w_hr = np.ones((2, 4))
    a = dict(args, w_hh=np.ones((16, 2)), h0=np.zeros((2, 2)))
    with pytest.raises(ArgumentError, match="w_hr"):
        _rnncore.forward("lstm", *a.values(), None, False, w_hr=w_hr, zoneout_h=kw["zoneout_h"])
    with pytest.raises(ArgumentError, match="projections"):
        ref.forward("lstm", *a.values(), None, False, w_hr=w_hr, zoneout_h=kw["zoneout_h"])
