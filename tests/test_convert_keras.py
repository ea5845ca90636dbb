"""The GRU with the reset before the product against Keras's GRU, and the weight
conversion of :func:`rnncore.convert.from_keras_gru`.

Keras 3 runs here on its NumPy backend (``KERAS_BACKEND=numpy``, which imports
jax; ``scripts/requirements-optional.txt`` installs both). Independently of
Keras, the reference is checked against a transcription of Keras's
``GRUCell.call`` equations in Keras's own layout (gate order ``z, r, h``,
``x @ kernel``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnncore import nn, reference
from rnncore.convert import from_keras_gru
from rnncore.errors import ArgumentError, ShapeError


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def keras_gru_transcribed(x, kernel, recurrent_kernel, bias, reset_after):
    """Keras 3 ``GRUCell.call`` (default activations) over ``x (N, T, D)``, float64:
    returns ``(output (N, T, H), h_n (N, H))``."""
    N, T, _ = x.shape
    H = recurrent_kernel.shape[0]
    h = np.zeros((N, H))
    input_bias, recurrent_bias = (bias[0], bias[1]) if reset_after else (bias, None)
    outputs = []
    for t in range(T):
        x_t = x[:, t] @ kernel + input_bias  # (N, 3H) blocks z|r|h
        x_z, x_r, x_h = x_t[:, :H], x_t[:, H : 2 * H], x_t[:, 2 * H :]
        if reset_after:
            m = h @ recurrent_kernel + recurrent_bias  # (N, 3H)
            z = sigmoid(x_z + m[:, :H])
            r = sigmoid(x_r + m[:, H : 2 * H])
            hh = np.tanh(x_h + r * m[:, 2 * H :])
        else:
            z = sigmoid(x_z + h @ recurrent_kernel[:, :H])
            r = sigmoid(x_r + h @ recurrent_kernel[:, H : 2 * H])
            hh = np.tanh(x_h + (r * h) @ recurrent_kernel[:, 2 * H :])
        h = z * h + (1.0 - z) * hh
        outputs.append(h)
    return np.stack(outputs, axis=1), h


def keras_weights(rng, D, H, reset_after):
    bias_shape = (2, 3 * H) if reset_after else (3 * H,)
    return [
        rng.standard_normal((D, 3 * H)) * 0.5,
        rng.standard_normal((H, 3 * H)) * 0.5,
        rng.standard_normal(bias_shape) * 0.3,
    ]


def rnncore_gru(weights, D, H, reset_after, backend=None):
    kw = {"batch_first": True, "reset_after": reset_after, "dtype": np.float64}
    gru = nn.GRU(D, H, **kw, backend=backend)
    gru.load_state_dict(from_keras_gru(weights, reset_after=reset_after))
    return gru


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("backend", [None, reference], ids=["rust", "reference"])
def test_gru_matches_a_transcription_of_keras(reset_after, backend, rng):
    N, T, D, H = 3, 6, 4, 5
    weights = keras_weights(rng, D, H, reset_after)
    x = rng.standard_normal((N, T, D))
    want_out, want_h = keras_gru_transcribed(x, *weights, reset_after)
    out, h_n = rnncore_gru(weights, D, H, reset_after, backend)(x)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_n[0], want_h, rtol=1e-12, atol=1e-13)


def test_reset_before_and_after_differ(rng):
    """The two forms are different cells: same weights, different outputs."""
    weights = keras_weights(rng, 3, 4, False)
    x = rng.standard_normal((2, 5, 3))
    before, _ = rnncore_gru(weights, 3, 4, False)(x)
    after = nn.GRU(3, 4, batch_first=True, dtype=np.float64)
    after.load_state_dict(from_keras_gru(weights, reset_after=False))
    assert np.abs(after(x)[0] - before).max() > 1e-2


@pytest.mark.parametrize("reset_after", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_gru_matches_keras(reset_after, use_bias, rng):
    os.environ.setdefault("KERAS_BACKEND", "numpy")
    keras = pytest.importorskip("keras")
    N, T, D, H = 4, 7, 3, 9
    layer = keras.layers.GRU(
        H,
        reset_after=reset_after,
        use_bias=use_bias,
        return_sequences=True,
        return_state=True,
        dtype="float64",
    )
    x = rng.standard_normal((N, T, D))
    layer(x)  # builds the weights
    layer.set_weights([rng.standard_normal(w.shape) * 0.5 for w in layer.get_weights()])
    weights = layer.get_weights()  # as Keras holds them (its variables keep float32)
    want_out, want_h = (np.asarray(a) for a in layer(x))
    gru = nn.GRU(D, H, bias=use_bias, batch_first=True, reset_after=reset_after, dtype="float64")
    gru.load_state_dict(from_keras_gru(weights, reset_after=reset_after))
    out, h_n = gru(x)
    # Keras computes in float32 here; the two GRU forms differ by ~0.1 (see above).
    np.testing.assert_allclose(out, want_out, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(h_n[0], want_h, rtol=1e-5, atol=2e-6)


def test_conversion_names_the_layer_and_zeroes_the_second_bias(rng):
    weights = keras_weights(rng, 2, 3, False)
    state = from_keras_gru(weights, layer=1)
    assert {k: v.shape for k, v in state.items()} == {
        "weight_ih_l1": (9, 2),
        "weight_hh_l1": (9, 3),
        "bias_ih_l1": (9,),
        "bias_hh_l1": (9,),
    }
    np.testing.assert_array_equal(state["bias_hh_l1"], 0.0)
    # Keras's z|r|h blocks become r|z|n rows.
    np.testing.assert_array_equal(state["weight_ih_l1"][:3], weights[0][:, 3:6].T)
    np.testing.assert_array_equal(state["weight_ih_l1"][3:6], weights[0][:, :3].T)


@pytest.mark.parametrize(
    "weights, kwargs, error, words",
    [
        ("kernel", {}, ArgumentError, "list of arrays"),
        ([np.zeros((2, 9))], {}, ArgumentError, "got 1 arrays"),
        ([np.zeros((2, 9)), np.zeros((3, 8))], {}, ShapeError, "recurrent_kernel must be (H, 3H)"),
        ([np.zeros((2, 6)), np.zeros((3, 9))], {}, ShapeError, "kernel must be (D, 9)"),
        ([np.zeros((2, 9)), np.zeros((3, 9)), np.zeros(9)], {"reset_after": True}, ShapeError,
         "bias must have shape (2, 9)"),
        ([np.zeros((2, 9)), np.zeros((3, 9)), np.zeros((2, 9))], {}, ShapeError,
         "bias must have shape (9,)"),
        ([np.zeros((2, 9)), np.zeros((3, 9), int)], {}, ArgumentError, "must hold floats"),
        ([np.zeros((2, 9)), np.zeros((3, 9))], {"layer": -1}, ArgumentError, "layer must be"),
        ([np.zeros((2, 9)), np.zeros((3, 9))], {"reset_after": 1}, ArgumentError, "reset_after"),
    ],
)  # fmt: skip
def test_bad_keras_weights_are_named_errors(weights, kwargs, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        from_keras_gru(weights, **kwargs)
