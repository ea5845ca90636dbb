"""The one-call min-char-rnn step against the same step through the layers,
the optimizer and the clip; when it is used; its errors."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import _rnncore, cli
from rnncore.checkpoint import load_checkpoint
from rnncore.corpus import default_corpus
from rnncore.data import CharVocab, StreamBatcher
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError
from rnncore.models import min_char_rnn
from rnncore.models.min_char_rnn import FUSED_ORDER, fused_arrays

V, H, T = 11, 13, 25


def chunk(seed):
    ids = np.random.default_rng(seed).integers(0, V, T + 1)
    return ids[:-1], ids[1:]


def layers_only(setup):
    """The same set-up with the one-call step turned off."""
    setup.fused = False
    return setup


def run(setup, steps):
    h, out = setup.initial_state(), []
    for s in range(steps):
        loss, h = setup.train_step(*chunk(s), h)
        out.append(loss)
    return out, h


@pytest.mark.parametrize("dtype, tol, steps", [("float64", 1e-11, 4), ("float32", 2e-5, 2)])
@pytest.mark.parametrize("clip", [5.0, 0.01])
def test_the_one_call_step_matches_the_layers(dtype, tol, steps, clip):
    """float32 for two steps only: Adagrad's first steps divide by the root of
    the gradients' own squares, which turns rounding in a tiny gradient into a
    visible change of the weights."""
    fused = min_char_rnn(V, hidden_size=H, clip=clip, dtype=dtype, seed=1)
    plain = layers_only(min_char_rnn(V, hidden_size=H, clip=clip, dtype=dtype, seed=1))
    assert fused_arrays(fused.model, fused.optimizer) is not None
    for p in (fused, plain):  # larger weights: the gradients reach the clip
        p.model.load_state_dict({k: v * 30 for k, v in p.model.state_dict().items()})
    losses_f, h_f = run(fused, steps)
    losses_p, h_p = run(plain, steps)
    np.testing.assert_allclose(losses_f, losses_p, rtol=tol)
    np.testing.assert_allclose(h_f, h_p, atol=tol)
    assert h_f.shape == (1, 1, H) and h_f.dtype == np.dtype(dtype)
    for name in FUSED_ORDER:
        want = plain.model.grads[name]
        np.testing.assert_allclose(fused.model.grads[name], want, atol=tol, err_msg=name)
        want = dict(plain.model.named_parameters())[name]
        got = dict(fused.model.named_parameters())[name]
        np.testing.assert_allclose(got, want, atol=tol, err_msg=name)
    for name, s in plain.optimizer.state["sum"].items():
        np.testing.assert_allclose(fused.optimizer.state["sum"][name], s, rtol=tol, atol=tol)
    assert fused.optimizer.steps == plain.optimizer.steps == steps
    assert not fused.model.rnn.bias_hh_l0.any()
    if clip == 0.01:
        at_clip = np.abs(fused.model.grads["rnn.weight_hh_l0"]) == np.dtype(dtype).type(0.01)
        assert at_clip.any()


def test_the_layers_run_when_the_set_up_is_not_plain(monkeypatch):
    def refuse(*args):
        raise AssertionError("the one-call step must not run")

    setup = min_char_rnn(V, hidden_size=H, seed=0)
    setup.optimizer.lr_decay = 0.1
    monkeypatch.setattr(_rnncore, "min_char_rnn_step", refuse)
    setup.train_step(*chunk(0), setup.initial_state())
    setup = min_char_rnn(V, hidden_size=H, seed=0)
    del setup.optimizer.params["head.bias"]
    setup.train_step(*chunk(0), setup.initial_state())


def test_a_non_finite_step_raises_and_changes_nothing():
    setup = min_char_rnn(V, hidden_size=H, seed=0)
    setup.model.rnn.weight_ih_l0[:] = 1e3  # every unit at tanh = 1 ...
    setup.model.head.weight[:] = 1e308  # ... so the logits overflow
    before = {k: v.copy() for k, v in setup.model.named_parameters()}
    with pytest.raises(NonFiniteError):
        setup.train_step(*chunk(0), setup.initial_state())
    for k, v in setup.model.named_parameters():
        np.testing.assert_array_equal(v, before[k])
    assert setup.optimizer.steps == 0
    assert not any(s.any() for s in setup.optimizer.state["sum"].values())


def test_bad_weights_and_states_are_named():
    setup = min_char_rnn(V, hidden_size=H, seed=0)
    setup.model.rnn.weight_hh_l0[2, 3] = np.nan
    with pytest.raises(NonFiniteError, match="weight_hh_l0"):
        setup.train_step(*chunk(0), setup.initial_state())
    setup = min_char_rnn(V, hidden_size=H, seed=0)
    with pytest.raises(ShapeError, match="state"):
        setup.train_step(*chunk(0), np.zeros((1, 2, H)))
    with pytest.raises(ArgumentError, match="inputs"):
        setup.train_step(np.full(T, V), chunk(0)[1], setup.initial_state())
    with pytest.raises(ShapeError, match="targets"):
        setup.train_step(*chunk(0)[:1], np.zeros(T - 1, np.int64), setup.initial_state())


def call_args(**change):
    setup = min_char_rnn(V, hidden_size=H, seed=0)
    params, grads, sums = fused_arrays(setup.model, setup.optimizer)
    x, y = chunk(0)
    kw = {
        "inputs": x,
        "targets": y,
        "h0": np.zeros(H),
        "params": params,
        "grads": grads,
        "sums": sums,
        "lr": 0.1,
        "eps": 1e-8,
        "clip": 5.0,
    }
    kw.update(change)
    return kw


@pytest.mark.parametrize(
    "change, error, name",
    [
        ({"h0": np.zeros(H, np.float32)}, DTypeError, "weight_ih_l0"),
        ({"h0": np.zeros(H, np.int64)}, DTypeError, "h0"),
        ({"h0": np.zeros((1, H))}, ShapeError, "h0"),
        ({"h0": np.full(H, np.inf)}, NonFiniteError, "h0"),
        ({"inputs": np.zeros(T, np.float64)}, DTypeError, "inputs"),
        ({"inputs": np.full(T, V)}, ArgumentError, "inputs"),
        ({"targets": np.zeros(3, np.int64)}, ShapeError, "targets"),
        ({"lr": -1.0}, ArgumentError, "lr"),
        ({"eps": np.nan}, ArgumentError, "eps"),
        ({"clip": 0.0}, ArgumentError, "clip"),
        ({"sums": []}, ArgumentError, "sums"),
    ],
)
def test_bad_arguments_to_the_kernel_are_named(change, error, name):
    with pytest.raises(error, match=name):
        _rnncore.min_char_rnn_step(**call_args(**change))


def test_arrays_updated_in_place_must_be_writeable_distinct_and_contiguous():
    kw = call_args()
    grads = list(kw["grads"])
    grads[1] = np.zeros((H, H), order="F")
    with pytest.raises(ArgumentError, match=r"grads\[weight_hh_l0\].*C-contiguous"):
        _rnncore.min_char_rnn_step(**{**kw, "grads": grads})
    sums = list(kw["sums"])
    sums[0] = kw["sums"][0].copy()
    sums[0].flags.writeable = False
    with pytest.raises(ArgumentError, match=r"sums\[weight_ih_l0\]"):
        _rnncore.min_char_rnn_step(**{**kw, "sums": sums})
    grads = list(kw["grads"])
    grads[0] = kw["params"][0]  # the same array twice
    with pytest.raises(ArgumentError, match=r"grads\[weight_ih_l0\]"):
        _rnncore.min_char_rnn_step(**{**kw, "grads": grads})
    params = list(kw["params"])
    params[4] = np.zeros((V, H + 1))
    with pytest.raises(ShapeError, match=r"head\.weight"):
        _rnncore.min_char_rnn_step(**{**kw, "params": params})


def test_the_cli_the_layers_and_the_one_call_step_train_the_same_model(tmp_path):
    """50 steps of ``rnncore train --min-char-rnn`` (the Trainer, which takes the
    one-call step), of :meth:`MinCharRNN.train_step` on the same chunks with the
    one-call step, and with it turned off: the same parameters."""
    text = default_corpus()[:3000]
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    argv = ["train", "--min-char-rnn", "--data", str(tmp_path / "in.txt"), "--rnn-size", "13"]
    argv += ["--max-steps", "50", "--val-fraction", "0.1", "--test-fraction", "0"]
    argv += ["--out", str(tmp_path / "run"), "--no-progress", "--seed", "3"]
    assert cli.main(argv) == 0
    from_cli = load_checkpoint(tmp_path / "run" / "latest").model

    vocab = CharVocab.from_text(text)
    setups = [min_char_rnn(len(vocab), hidden_size=13, seed=3) for _ in range(2)]
    layers_only(setups[1])
    for setup in setups:
        batcher = StreamBatcher(vocab.encode(text), 1, 25, (0.9, 0.1, 0.0))
        h = setup.initial_state()
        for _ in range(50):
            batch = batcher.next_batch()
            if batch.index == 0:
                h = setup.initial_state()
            _, h = setup.train_step(batch.inputs[0], batch.targets[0], h)
    fused, layers = (dict(s.model.state_dict()) for s in setups)
    assert fused_arrays(setups[0].model, setups[0].optimizer) is not None
    for name, want in fused.items():
        np.testing.assert_array_equal(from_cli[name], want, err_msg=name)  # the same calls
        np.testing.assert_allclose(layers[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
