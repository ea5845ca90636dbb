"""Bad arguments to :mod:`rnncore.nn` raise the right class with the argument's name.

Every error is a subclass of :class:`RnnCoreError` and of the built-in class a
Python user expects (``ValueError`` or ``TypeError``). Input checks run in Python
before any kernel, so they use the reference backend; the tests of read-only and
non-contiguous inputs run on each backend.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from rnncore import nn, reference
from rnncore.errors import (
    ArgumentError,
    DTypeError,
    NonFiniteError,
    RnnCoreError,
    ShapeError,
    StateError,
)

BUILTIN = {  # the class a caller that knows nothing of rnncore would catch
    ShapeError: ValueError,
    DTypeError: TypeError,
    NonFiniteError: ValueError,
    ArgumentError: ValueError,
    StateError: RuntimeError,
    RnnCoreError: Exception,
}


@contextmanager
def raises(cls, *words):
    """Expect ``cls`` (also its built-in base) with every one of ``words`` in the message."""
    with pytest.raises(BUILTIN[cls]) as info:
        yield
    assert type(info.value) is cls, repr(info.value)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def lstm(**kw):
    """A float32 LSTM(D=3, H=4) with two layers: hx is (2, N, 4)."""
    return nn.LSTM(3, 4, num_layers=2, seed=0, backend=reference, **kw)


def gru(**kw):
    return nn.GRU(3, 4, num_layers=2, seed=0, backend=reference, **kw)


def f32(*shape, fill=0.5):
    return np.full(shape, fill, np.float32)


# ------------------------------------------------------------------------- constructors


@pytest.mark.parametrize(
    "kwargs, cls, word",
    [
        ({"input_size": 0}, ArgumentError, "input_size"),
        ({"input_size": 2.5}, ArgumentError, "input_size"),
        ({"input_size": True}, ArgumentError, "input_size"),
        ({"hidden_size": -1}, ArgumentError, "hidden_size"),
        ({"num_layers": 0}, ArgumentError, "num_layers"),
        ({"nonlinearity": "sigmoid"}, ArgumentError, "nonlinearity"),
        ({"bias": "yes"}, ArgumentError, "bias"),
        ({"batch_first": None}, ArgumentError, "batch_first"),
        ({"bidirectional": 2}, ArgumentError, "bidirectional"),
        ({"dropout": 1.0}, ArgumentError, "dropout"),
        ({"dropout": -0.1}, ArgumentError, "dropout"),
        ({"dropout": "0.5"}, ArgumentError, "dropout"),
        ({"dtype": np.float16}, DTypeError, "dtype"),
        ({"dtype": np.int32}, DTypeError, "dtype"),
        ({"dtype": "not a dtype"}, DTypeError, "dtype"),
        ({"seed": 1, "rng": np.random.default_rng(1)}, ArgumentError, "seed or rng"),
        ({"rng": np.random.RandomState(0)}, ArgumentError, "rng"),
        ({"seed": -1}, ArgumentError, "seed"),
        ({"backend": object()}, ArgumentError, "backend"),
    ],
)
def test_bad_constructor_arguments(kwargs, cls, word):
    args = {"input_size": 3, "hidden_size": 4, **kwargs}
    with raises(cls, word):
        nn.RNN(**args)


@pytest.mark.parametrize("cell_cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_bad_cell_constructor_arguments(cell_cls):
    with raises(ArgumentError, "input_size"):
        cell_cls(0, 4)
    with raises(ArgumentError, "hidden_size"):
        cell_cls(3, 4.0)
    with raises(DTypeError, "dtype"):
        cell_cls(3, 4, dtype=np.complex128)
    with raises(ArgumentError, "train"):
        cell_cls(3, 4).train("yes")


# ------------------------------------------------------------------------- layer inputs


@pytest.mark.parametrize(
    "make, x, cls, words",
    [
        (lstm, np.zeros((5, 2, 3)), DTypeError, ["x has dtype float64", "float32", "np.float64"]),
        (lstm, [[[0.5] * 3] * 2] * 5, DTypeError, ["x must be an array of dtype float32", "list"]),
        (lstm, np.zeros((5, 2, 3), np.int64), DTypeError, ["x", "floating-point", "int64"]),
        (lstm, f32(3), ShapeError, ["x must be 3-D (T, N, D) or 2-D unbatched (T, D)", "1-D"]),
        (lstm, f32(5, 2, 3, 1), ShapeError, ["x must be 3-D", "4-D"]),
        (lstm, f32(0, 2, 3), ShapeError, ["x has an empty time dimension"]),
        (lstm, f32(5, 0, 3), ShapeError, ["x has an empty batch dimension"]),
        (lstm, f32(0, 3), ShapeError, ["x has an empty time dimension"]),
        (lambda: lstm(batch_first=True), f32(2, 0, 3), ShapeError, ["empty time dimension"]),
        (lambda: lstm(batch_first=True), f32(0, 5, 3), ShapeError, ["empty batch dimension"]),
        (lambda: lstm(batch_first=True), f32(2), ShapeError, ["x must be 3-D (N, T, D)"]),
        (lstm, f32(5, 2, 4), ShapeError, ["x must have input_size=3", "(5, 2, 4)"]),
        (gru, f32(5, 2, 3, fill=np.nan), NonFiniteError, ["x contains NaN or infinity"]),
        (gru, f32(5, 3, fill=np.inf), NonFiniteError, ["x contains NaN or infinity"]),
    ],
)
def test_bad_x(make, x, cls, words):
    with raises(cls, *words):
        make()(x)


@pytest.mark.parametrize(
    "make, x, hx, cls, words",
    [
        (lstm, f32(5, 2, 3), f32(2, 2, 4), ArgumentError, ["hx must be a tuple (h_0, c_0)"]),
        (lstm, f32(5, 2, 3), (f32(2, 2, 4),), ArgumentError, ["hx must be a tuple"]),
        (lstm, f32(5, 2, 3), (f32(2, 2, 4), f32(2, 2, 3)), ShapeError,
         ["hx[1] (c_0) must have shape (2, 2, 4) = (num_layers*num_directions, N, H), "
          "got (2, 2, 3)"]),
        (lstm, f32(5, 2, 3), (np.zeros((2, 2, 4)), f32(2, 2, 4)), DTypeError,
         ["hx[0] (h_0) has dtype float64"]),
        (lstm, f32(5, 2, 3), (f32(2, 2, 4), f32(2, 2, 4, fill=np.nan)), NonFiniteError,
         ["hx[1] (c_0) contains NaN"]),
        (lstm, f32(5, 2, 3), (None, f32(2, 2, 4)), ArgumentError, ["hx[0] (h_0)", "None"]),
        (gru, f32(5, 2, 3), (f32(2, 2, 4),), ArgumentError, ["hx (h_0) must be a single array"]),
        (gru, f32(5, 2, 3), f32(2, 4), ShapeError, ["hx (h_0) must have shape (2, 2, 4)"]),
        (gru, f32(5, 3), f32(2, 1, 4), ShapeError,
         ["hx (h_0) must have shape (2, 4) = (num_layers*num_directions, H)"]),
        (gru, f32(5, 2, 3), f32(2, 2, 4, fill=-np.inf), NonFiniteError, ["hx (h_0) contains"]),
    ],
)  # fmt: skip
def test_bad_hx(make, x, hx, cls, words):
    with raises(cls, *words):
        make()(x, hx)


@pytest.mark.parametrize(
    "x, lengths, cls, words",
    [
        (f32(5, 2, 3), np.array([2.0, 3.0]), DTypeError, ["lengths must hold integers"]),
        (f32(5, 2, 3), np.array([True, True]), DTypeError, ["lengths must hold integers"]),
        (f32(5, 2, 3), np.array([2, 3, 4]), ShapeError, ["lengths must have shape (2,)"]),
        (f32(5, 2, 3), np.array([[2, 3]]), ShapeError, ["lengths must have shape (2,)"]),
        (f32(5, 2, 3), np.array([0, 3]), ArgumentError, ["lengths must lie in 1..T = 1..5"]),
        (f32(5, 2, 3), [6, 3], ArgumentError, ["lengths must lie in 1..T = 1..5"]),
        (f32(5, 3), np.array([2]), ArgumentError, ["lengths needs batched input"]),
    ],
)
def test_bad_lengths(x, lengths, cls, words):
    with raises(cls, *words):
        gru()(x, lengths=lengths)


def test_bad_backward_arguments():
    layer = lstm()
    with raises(StateError, "LSTM.backward() needs a forward() call first"):
        layer.backward(f32(5, 2, 4))
    layer(f32(5, 2, 3))
    good = f32(5, 2, 4)
    with raises(ShapeError, "d_output must have shape (5, 2, 4)", "got (5, 2, 3)"):
        layer.backward(f32(5, 2, 3))
    with raises(DTypeError, "d_output has dtype float64"):
        layer.backward(np.zeros((5, 2, 4)))
    with raises(NonFiniteError, "d_output contains NaN"):
        layer.backward(f32(5, 2, 4, fill=np.nan))
    with raises(ArgumentError, "d_hx must be a tuple (d_h_n, d_c_n)"):
        layer.backward(good, f32(2, 2, 4))
    with raises(ShapeError, "d_hx[0] (d_h_n) must have shape (2, 2, 4)"):
        layer.backward(good, (f32(2, 4), None))
    with raises(NonFiniteError, "d_hx[1] (d_c_n) contains NaN"):
        layer.backward(good, (None, f32(2, 2, 4, fill=np.nan)))
    layer.backward(good, (None, f32(2, 2, 4)))  # either part may be None
    g = gru()
    g(f32(5, 3))  # unbatched
    with raises(ShapeError, "d_hx (d_h_n) must have shape (2, 4)"):
        g.backward(f32(5, 4), f32(2, 1, 4))


# ------------------------------------------------------------------------- cells


def test_bad_cell_inputs():
    cell = nn.LSTMCell(3, 4, seed=0, backend=reference)
    with raises(ShapeError, "x must be 2-D (N, D) or 1-D unbatched (D,)"):
        cell(f32(5, 2, 3))
    with raises(ShapeError, "x has an empty batch dimension"):
        cell(f32(0, 3))
    with raises(ShapeError, "x must have input_size=3"):
        cell(f32(2, 4))
    with raises(DTypeError, "x has dtype float64"):
        cell(np.zeros((2, 3)))
    with raises(ShapeError, "hx[0] (h) must have shape (2, 4) = (N, H), got (4,)"):
        cell(f32(2, 3), (f32(4), f32(2, 4)))
    with raises(ShapeError, "hx[1] (c) must have shape (4,) = (H,)"):
        cell(f32(3), (f32(4), f32(1, 4)))
    with raises(StateError, "LSTMCell.backward() has no cached step"):
        cell.backward(f32(2, 4))
    cell(f32(2, 3))
    with raises(ShapeError, "d_h must have shape (2, 4) = (N, H)"):
        cell.backward(f32(4))
    with raises(NonFiniteError, "d_c contains NaN"):
        cell.backward(f32(2, 4), f32(2, 4, fill=np.nan))
    with raises(ArgumentError, "d_h must be an array"):
        cell.backward(None, f32(2, 4))
    cell.backward(f32(2, 4))  # the failed calls left the step on the stack
    gcell = nn.GRUCell(3, 4, seed=0, backend=reference)
    with raises(ArgumentError, "hx (h) must be a single array"):
        gcell(f32(2, 3), (f32(2, 4),))
    gcell(f32(2, 3))
    with raises(ArgumentError, "d_c is only used by LSTMCell"):
        gcell.backward(f32(2, 4), f32(2, 4))


# ------------------------------------------------------------------------- parameters


def test_bad_state_dicts_and_assignments():
    layer = gru()
    state = layer.state_dict()
    with raises(ArgumentError, "missing keys ['bias_hh_l1']"):
        layer.load_state_dict({k: v for k, v in state.items() if k != "bias_hh_l1"})
    with raises(ArgumentError, "unexpected keys ['bias']"):
        layer.load_state_dict({**state, "bias": np.zeros(3)})
    bad = {**state, "weight_hh_l1": np.zeros((12, 5)), "weight_ih_l0": np.ones((12, 3))}
    with raises(ShapeError, "weight_hh_l1 must have shape (12, 4), got (12, 5)"):
        layer.load_state_dict(bad, strict=False)
    assert not np.array_equal(layer.weight_ih_l0, np.ones((12, 3)))  # nothing was loaded
    with raises(NonFiniteError, "bias_ih_l0 contains NaN"):
        layer.load_state_dict({**state, "bias_ih_l0": np.full(12, np.nan)})
    with raises(DTypeError, "weight_ih_l0 must hold real numbers"):
        layer.load_state_dict({**state, "weight_ih_l0": np.full((12, 3), "a")})
    with raises(ShapeError, "weight_hh_l0 must have shape (12, 4)"):
        layer.weight_hh_l0 = np.zeros((4, 4))
    with pytest.raises(AttributeError, match="weight_hh_l2"):
        _ = layer.weight_hh_l2


def test_missing_compiled_kernels_say_how_to_use_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "rnncore._rnncore", None)  # makes the import fail
    layer = nn.GRU(3, 4, seed=0)  # constructing needs no kernels
    with pytest.raises(ImportError, match=r"backend=rnncore\.reference"):
        layer(f32(5, 2, 3))


# ------------------------------------------------------------------------- memory layouts


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def strided(a):
    """The same values in a non-contiguous view (every other element of the last axis)."""
    wide = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


@pytest.mark.parametrize("layout", [read_only, strided, np.asfortranarray])
@pytest.mark.parametrize("make", [nn.LSTM, nn.GRU])
def test_read_only_and_non_contiguous_inputs_give_the_same_result(make, layout, backend, rng):
    layer = make(3, 4, num_layers=2, bidirectional=True, dtype=np.float64, backend=backend, seed=0)
    lstm_layer = make is nn.LSTM
    x = rng.standard_normal((5, 3, 3))
    hx = [rng.standard_normal((4, 3, 4)) for _ in range(2 if lstm_layer else 1)]
    lengths = np.array([5, 2, 4])
    d_output = rng.standard_normal((5, 3, 8))
    d_hx = [rng.standard_normal((4, 3, 4)) for _ in hx]
    pack = tuple if lstm_layer else (lambda parts: parts[0])

    def run(f):
        inputs = [f(a) for a in (x, *hx, d_output, *d_hx)]
        saved = [a.copy() for a in inputs]
        hx_in, d_hx_in = inputs[1 : 1 + len(hx)], inputs[2 + len(hx) :]
        out, state = layer(inputs[0], pack(hx_in), f(lengths[:, None])[:, 0])
        dx, dh0 = layer.backward(inputs[1 + len(hx)], pack(d_hx_in))
        for a, b in zip(inputs, saved):
            np.testing.assert_array_equal(a, b)  # inputs are never modified
        return [out, *np.atleast_1d(state), dx, *np.atleast_1d(dh0)]

    for a, b in zip(run(np.ascontiguousarray), run(layout)):
        np.testing.assert_array_equal(a, b)


def test_lists_are_accepted_when_their_dtype_matches(rng):
    layer = nn.RNN(3, 4, dtype=np.float64, seed=0, backend=reference)
    x = rng.standard_normal((5, 2, 3))
    np.testing.assert_array_equal(layer(x.tolist())[0], layer(x)[0])
    cell = nn.RNNCell(3, 4, dtype=np.float64, seed=0, backend=reference)
    np.testing.assert_array_equal(cell(x[0].tolist()), cell(x[0]))


def test_rnncore_imports_and_runs_on_the_reference_without_the_extension():
    """In a fresh interpreter where the extension cannot be imported: ``import
    rnncore`` works, a layer and a model run on the reference, and the first
    call that needs a compiled kernel says what to do."""
    code = """
import sys
sys.modules["rnncore._rnncore"] = None  # makes the import fail
import numpy as np
import rnncore
from rnncore import nn
from rnncore.models import CharLM, LMConfig
x = np.zeros((5, 2, 3), np.float32)
out, _ = nn.LSTM(3, 4, seed=0, backend=rnncore.reference)(x)
assert out.shape == (5, 2, 4)
lm = CharLM(LMConfig(vocab_size=7, cell="gru", hidden_size=5), backend=rnncore.reference)
print(len(lm.sample(length=4, seed=0)[0]))
try:
    rnncore.set_num_threads(1)
except ImportError as err:
    print(err)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "4"
    assert "backend=rnncore.reference" in lines[1]
