"""Misuse of rnncore.torch modules: an error of the type torch raises, and clear.

Every case is run on the torch.nn module first, to pin the type torch uses.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnncore.torch")
from torch.nn.utils.rnn import pack_padded_sequence  # noqa: E402

import rnncore  # noqa: E402


def both(name, *args, **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(rt, name)(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def same_error(theirs, ours, call, match):
    """``call(module)`` fails for both with the same built-in class; ours is an rnncore error."""
    with pytest.raises(Exception) as t_err:
        call(theirs)
    with pytest.raises(Exception, match=match) as o_err:
        call(ours)
    assert isinstance(o_err.value, rnncore.RnnCoreError)
    builtin = next(c for c in type(t_err.value).__mro__ if c.__module__ == "builtins")
    assert isinstance(o_err.value, builtin), (type(t_err.value), type(o_err.value))


LSTM_ARGS = ("LSTM", 4, 3, 2)
h = torch.zeros(2, 2, 3)
CASES = [
    ("wrong input size", lambda m: m(torch.zeros(5, 2, 5)), r"input_size.*Expected 4, got 5"),
    ("4-D input", lambda m: m(torch.zeros(5, 2, 4, 1)), "3-D.*2-D unbatched.*got 4-D"),
    ("h0 batch", lambda m: m(torch.zeros(5, 2, 4), (torch.zeros(2, 3, 3), h)), r"h_0.*\(2, 2, 3\)"),
    ("c0 batch", lambda m: m(torch.zeros(5, 2, 4), (h, torch.zeros(2, 3, 3))), r"c_0.*\(2, 2, 3\)"),
    ("h0 layers", lambda m: m(torch.zeros(5, 2, 4), (torch.zeros(1, 2, 3), h)), "h_0"),
    ("3-D h0, unbatched", lambda m: m(torch.zeros(5, 4), (h, h)), r"h_0.*\(2, 3\)"),
    ("input dtype", lambda m: m(torch.zeros(5, 2, 4, dtype=torch.float64)), "float64.*float32"),
    ("empty sequence", lambda m: m(torch.zeros(0, 2, 4)), "at least one step"),
    (
        "packed dtype",
        lambda m: m(pack_padded_sequence(torch.zeros(5, 2, 4, dtype=torch.float64), [5, 3])),
        "input.data.*float64",
    ),
]


@pytest.mark.parametrize(("what", "call", "match"), CASES, ids=[c[0] for c in CASES])
def test_lstm_misuse(what, call, match):
    same_error(*both(*LSTM_ARGS), call, match)


def test_cell_misuse():
    theirs, ours = both("LSTMCell", 4, 3)
    same_error(theirs, ours, lambda m: m(torch.zeros(2, 5)), "input_size: got 5 expected 4")
    hx = (torch.zeros(3, 3), torch.zeros(3, 3))
    same_error(theirs, ours, lambda m: m(torch.zeros(2, 4), hx), r"h_0.*\(2, 3\)")
    same_error(theirs, ours, lambda m: m(torch.zeros(2, 4, 1)), "2-D.*got 3-D")
    theirs, ours = both("GRUCell", 4, 3)
    same_error(theirs, ours, lambda m: m(torch.zeros(2, 4), torch.zeros(3, 3)), r"\(2, 3\)")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dropout": 2.0}, None),
        ({"hidden_size": 0}, None),
        ({"num_layers": 0}, None),
        ({"proj_size": -1}, None),
        ({"proj_size": 3}, None),  # not smaller than hidden_size
        ({"proj_size": 7}, None),
    ],
)
def test_constructor_errors_are_torch_own(kwargs, match):
    args = {"input_size": 4, "hidden_size": 3, **kwargs}
    with pytest.raises(ValueError) as t_err:
        torch.nn.LSTM(**args)
    with pytest.raises(ValueError) as o_err:
        rt.LSTM(**args)
    assert str(o_err.value) == str(t_err.value)


def test_unsupported_constructor_arguments():
    with pytest.raises(rnncore.DTypeError, match=r"float32 or torch\.float64"):
        rt.GRU(4, 3, dtype=torch.float16)
    m = rt.RNN(4, 3).to(torch.bfloat16)
    with pytest.raises(rnncore.DTypeError, match="parameters must all be"):
        m(torch.zeros(2, 1, 4, dtype=torch.bfloat16))


def test_hx_structure():
    m = rt.LSTM(4, 3)
    with pytest.raises(rnncore.ArgumentError, match=r"tuple \(h_0, c_0\)"):
        m(torch.zeros(2, 1, 4), torch.zeros(1, 1, 3))
    with pytest.raises(rnncore.ArgumentError, match="one tensor h_0"):
        rt.GRU(4, 3)(torch.zeros(2, 1, 4), (torch.zeros(1, 1, 3),) * 2)
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
        m([[0.0] * 4])


def test_non_finite_input_and_state_are_refused_like_rnncore_layers():
    m = rt.GRU(4, 3)
    with pytest.raises(rnncore.NonFiniteError, match="input"):
        m(torch.full((2, 1, 4), float("nan")))
    with pytest.raises(rnncore.NonFiniteError, match="h_0"):
        m(torch.zeros(2, 1, 4), torch.full((1, 1, 3), float("inf")))
    with pytest.raises(rnncore.NonFiniteError):
        rnncore.nn.GRU(4, 3)(torch.full((2, 1, 4), float("nan")).numpy())
    with torch.no_grad():
        m.weight_hh_l0[0, 0] = float("nan")  # refused by the kernels, as in rnncore.nn
    with pytest.raises(rnncore.NonFiniteError, match="w_hh"):
        m(torch.ones(2, 1, 4))


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_state_dict_keys_behave_as_torch(strict, change):
    theirs, ours = both("GRU", 4, 3, 2)
    state = theirs.state_dict()
    if change == "missing":
        del state["bias_hh_l1"]
    elif change == "extra":
        state["weight_ih_l2"] = torch.zeros(9, 3)
    else:
        state["weight_hh_l0"] = torch.zeros(9, 4)
    outcomes = []
    for module in (theirs, ours):
        try:
            outcomes.append(tuple(module.load_state_dict(state, strict=strict)))
        except RuntimeError as err:
            outcomes.append(str(err).replace("GRU", "_"))
    assert outcomes[0] == outcomes[1]


def test_state_dicts_move_both_ways():
    theirs, ours = both("LSTM", 3, 5, 2)
    ours2 = rt.LSTM(3, 5, 2, bidirectional=False)
    assert ours2.load_state_dict(theirs.state_dict()) == ([], [])
    theirs2 = torch.nn.LSTM(3, 5, 2)
    assert theirs2.load_state_dict(ours.state_dict()) == ([], [])
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v)
