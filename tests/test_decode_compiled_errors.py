"""Bad input to the compiled decoder: an exception naming the argument, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

from rnncore import _rnncore, decode
from rnncore.decode.sampling import TOP_P_SLACK
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, RnnCoreError, ShapeError
from rnncore.models import CharLM, LMConfig

V, H, E = 6, 4, 3


def parts(cell="lstm", dtype=np.float64, embedding=True):
    """Valid constructor arguments of a 2-layer decoder."""
    rng = np.random.default_rng(0)
    G = _rnncore.gate_count(cell)

    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    k0 = E if embedding else V
    layers = [(r(G * H, k), r(G * H, H), r(G * H), r(G * H)) for k in (k0, H)]
    return {
        "mode": cell,
        "layers": layers,
        "head_weight": r(V, H),
        "head_bias": r(V),
        "embedding": r(V, E) if embedding else None,
    }


def state(cell="lstm", N=2, dtype=np.float64):
    h = np.zeros((2, N, H), dtype)
    return (h, h.copy()) if cell == "lstm" else (h, None)


def test_a_valid_decoder_steps():
    d = _rnncore.Decoder(**parts())
    assert (d.vocab_size, d.hidden_size, d.num_layers, d.mode, d.dtype) == (
        V,
        H,
        2,
        "lstm",
        "float64",
    )
    lp, h, c = d.step(np.array([0, 5]), *state())
    assert lp.shape == (2, V) and h.shape == c.shape == (2, 2, H)
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0)


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"mode": "tree"}, ArgumentError, "mode"),
        ({"head_weight": np.zeros((V, H), np.int32)}, DTypeError, "head_weight"),
        (
            {"head_weight": np.zeros((V, H + 1))},
            ShapeError,
            "weight_ih_l0",
        ),  # H comes from head_weight
        ({"head_weight": np.zeros(V)}, ShapeError, "head_weight"),
        ({"head_bias": np.zeros(V + 1)}, ShapeError, "head_bias"),
        ({"head_bias": np.zeros(V, np.float32)}, DTypeError, "head_bias"),
        ({"embedding": np.zeros((V + 1, E))}, ShapeError, "embedding"),
        ({"embedding": None}, ShapeError, "weight_ih_l0"),
        ({"layers": []}, ArgumentError, "layers"),
    ],
)
def test_bad_constructor_arguments_are_named(change, error, name):
    with pytest.raises(error, match=name):
        _rnncore.Decoder(**{**parts(), **change})


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("layer", [0, 1])
def test_bad_layer_arrays_are_named(layer, index):
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    kw = parts()
    good = kw["layers"][layer][index]
    for bad, error in [
        (good[..., :-1] if good.ndim == 2 else good[:-1], ShapeError),
        (good.astype(np.float32), DTypeError),
        (np.where(np.arange(good.size).reshape(good.shape) == 1, np.nan, good), NonFiniteError),
    ]:
        layers = [list(x) for x in kw["layers"]]
        layers[layer][index] = bad
        with pytest.raises(error, match=f"{names[index]}_l{layer}"):
            _rnncore.Decoder(**{**kw, "layers": [tuple(x) for x in layers]})


def test_non_finite_readout_is_named():
    kw = parts()
    kw["head_weight"][1, 2] = np.inf
    with pytest.raises(NonFiniteError, match="head"):
        _rnncore.Decoder(**kw)


@pytest.mark.parametrize(
    ("ids", "error"),
    [
        (np.array([0, V]), ArgumentError),
        (np.array([-1, 0]), ArgumentError),
        (np.array([0.0, 1.0]), DTypeError),
        (np.array([[0, 1]]), ShapeError),
        (np.zeros(0, np.int64), ShapeError),
        ([0, 1], DTypeError),
    ],
)
def test_bad_ids_are_named(ids, error):
    d = _rnncore.Decoder(**parts())
    with pytest.raises(error, match="ids"):
        d.step(ids, *state())


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bad_states_are_named(cell):
    d = _rnncore.Decoder(**parts(cell))
    ids = np.array([1, 2])
    h, c = state(cell)
    with pytest.raises(ShapeError, match="h"):
        d.step(ids, np.zeros((2, 3, H)), c)
    with pytest.raises(DTypeError, match="h"):
        d.step(ids, h.astype(np.float32), c)
    bad = h.copy()
    bad[1, 0, 2] = np.nan
    with pytest.raises(NonFiniteError, match="h"):
        d.step(ids, bad, c)
    with pytest.raises(ArgumentError, match="c"):
        d.step(ids, h, None if cell == "lstm" else h.copy())


def sample_kwargs(**change):
    kw = {
        "log_probs": np.full((2, V), -np.log(V)),
        "h": np.zeros((2, 2, H)),
        "c": np.zeros((2, 2, H)),
        "uniforms": np.full(10, 0.5),
        "length": 5,
        "top_p_slack": TOP_P_SLACK,
    }
    return {**kw, **change}


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"uniforms": np.full(9, 0.5)}, ShapeError, "uniforms"),
        ({"uniforms": np.full(10, 1.0)}, ArgumentError, "uniforms"),
        ({"uniforms": np.full(10, np.nan)}, ArgumentError, "uniforms"),
        ({"uniforms": np.full((2, 5), 0.5)}, ShapeError, "uniforms"),
        ({"log_probs": np.full((2, V + 1), -2.0)}, ShapeError, "log_probs"),
        ({"log_probs": np.full((2, V), np.nan)}, NonFiniteError, "log_probs"),
        ({"log_probs": np.zeros((2, V), np.float32)}, DTypeError, "log_probs"),
        ({"temperature": -1.0}, ArgumentError, "temperature"),
        ({"temperature": np.inf}, ArgumentError, "temperature"),
        ({"top_k": 0}, ArgumentError, "top_k"),
        ({"top_p": 0.0}, ArgumentError, "top_p"),
        ({"top_p": 1.5}, ArgumentError, "top_p"),
        ({"stop_id": V}, ArgumentError, "stop_id"),
        ({"top_p_slack": -1.0}, ArgumentError, "top_p_slack"),
    ],
)
def test_bad_sampling_arguments_are_named(change, error, name):
    d = _rnncore.Decoder(**parts())
    with pytest.raises(error, match=name):
        d.sample(**sample_kwargs(**change))


def test_greedy_needs_no_uniforms_and_masked_rows_are_fine():
    d = _rnncore.Decoder(**parts())
    lp = np.full((2, V), -np.inf)
    lp[:, 3] = 0.0  # all mass on one symbol: -inf elsewhere is allowed
    ids, ends = d.sample(**sample_kwargs(log_probs=lp, uniforms=np.zeros(0), temperature=0.0))
    assert ids.shape == (2, 5) and ids.dtype == np.int64 and (ids[:, 0] == 3).all()
    assert ends.tolist() == [5, 5]


def test_errors_through_the_python_api():
    model = CharLM(LMConfig(vocab_size=V, hidden_size=H, dtype="float64")).eval()
    fast = model.compile()
    with pytest.raises(ArgumentError, match="state"):
        fast.step(np.array([1]), np.zeros((2, 1, H)))
    with pytest.raises(ArgumentError, match="ids"):
        fast.step(np.array([V]))
    with pytest.raises(ArgumentError, match="CharLM"):
        decode.CompiledLM(object())
    with pytest.raises(RnnCoreError):
        decode.sample(model, length=3, prime_ids=[V])


@pytest.mark.parametrize(
    "cell", ["gru_reset_before", "lstm_cifg", "lstm_peephole", "mut1", "mut2", "mut3"]
)
def test_cells_without_a_compiled_decoder_decode_uncompiled(cell):
    E = 4 if cell in ("mut1", "mut2") else None  # they need input size == hidden size
    model = CharLM(LMConfig(vocab_size=5, cell=cell, hidden_size=4, embedding_dim=E, seed=0))
    assert not model.decodes_compiled
    with pytest.raises(ArgumentError, match="model: CompiledLM runs"):
        model.compile()
    assert model.sample(length=6, seed=2) == model.sample(length=6, seed=2)
