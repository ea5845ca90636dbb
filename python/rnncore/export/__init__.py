"""ONNX export of rnncore's layers and models (needs ``pip install rnncore[onnx]``).

:func:`to_onnx` writes a model that any ONNX runtime runs, built from the
standard ``RNN``/``LSTM``/``GRU`` operators (:mod:`rnncore.export._stack`), in
evaluation mode (no dropout), float32 only. Graph inputs and outputs, by what is exported
(``N`` and ``T`` are dynamic):

- ``rnncore.nn.RNN``/``LSTM``/``GRU``: ``x`` (``(T, N, D)``, ``(N, T, D)`` if
  ``batch_first``), ``h0`` (and ``c0`` for LSTM) ``(L*dirs, N, H)``, and with
  ``lengths=True`` ``lengths (N,)`` int64 -> ``output``, ``h_n`` (and ``c_n``);
- ``CharLM``: ``ids (N, T)`` int64, ``h0`` (and ``c0``) ``(L, N, H)`` ->
  ``logits (N, T, V)``, ``h_n`` (and ``c_n``);
- ``SequenceClassifier``: ``ids (N, T)``, ``lengths (N,)`` int64 -> ``logits (N, C)``;
- ``SequenceTagger``: ``ids (N, T)``, ``lengths (N,)`` int64 -> ``logits (N, T, C)``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnncore.errors import ArgumentError, DTypeError

__all__ = ["to_onnx"]

OPSET = 17


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ImportError(
            "rnncore.export.to_onnx needs the onnx package; install it with "
            "`pip install rnncore[onnx]` (onnx, and onnxruntime to run the result)"
        ) from err
    return onnx


def to_onnx(model: Any, path: str | os.PathLike, *, lengths: bool = False) -> None:
    """Write ``model`` to ``path`` as an ONNX model (opset 17).

    Args:
        model: an ``rnncore.nn.RNN``/``LSTM``/``GRU``, or a ``CharLM``,
            ``SequenceClassifier`` or ``SequenceTagger`` from :mod:`rnncore.models`.
        path: the ``.onnx`` file to write.
        lengths: for a recurrent layer, add a ``lengths (N,)`` input (torch's
            packed-sequence semantics, as the layer's ``lengths`` argument). The
            classifier and tagger always take lengths; a ``CharLM`` never does.

    Raises:
        ArgumentError: ``model`` is not one of the above.
        DTypeError: ``model`` is not float32.
        ImportError: onnx is not installed.
    """
    onnx = _onnx()
    from onnx import helper

    from rnncore.export import _stack
    from rnncore.models import CharLM, SequenceClassifier, SequenceTagger
    from rnncore.nn._layer import _RNNBase

    if not isinstance(model, (_RNNBase, CharLM, SequenceClassifier, SequenceTagger)):
        raise ArgumentError(
            "model must be an rnncore.nn.RNN/LSTM/GRU, a CharLM, a SequenceClassifier "
            f"or a SequenceTagger, got {type(model).__name__}"
        )
    if model.dtype != np.float32:
        raise DTypeError(
            "ONNX export needs a float32 model (onnxruntime's RNN, LSTM and GRU operators "
            f"have no float64 kernels), got {model.dtype}; build the model with dtype "
            "float32 and load its state dict"
        )
    g = _stack.Graph(model.dtype)
    if isinstance(model, _RNNBase):
        _layer(g, model, lengths)
    elif isinstance(model, CharLM):
        _char_lm(g, model)
    else:
        _encoder(g, model, isinstance(model, SequenceTagger))
    graph = helper.make_graph(g.nodes, type(model).__name__, g.inputs, g.outputs, g.initializers)
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="rnncore"
    )
    proto.ir_version = 8  # readable by onnxruntime 1.14 and later
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))


def _states(g: Any, lstm: bool, LD: int, H: int) -> tuple[str, str | None]:
    h0 = g.input("h0", g.elem, [LD, "N", H])
    c0 = g.input("c0", g.elem, [LD, "N", H]) if lstm else None
    return h0, c0


def _state_outputs(g: Any, h_n: str, c_n: str | None, LD: int, H: int) -> None:
    g.output(h_n, "h_n", g.elem, [LD, "N", H])
    if c_n is not None:
        g.output(c_n, "c_n", g.elem, [LD, "N", H])


def _lengths(g: Any) -> str:
    """The ``lengths (N,)`` int64 input, cast to ONNX's int32 ``sequence_lens``."""
    from onnx import TensorProto

    name = g.input("lengths", TensorProto.INT64, ["N"])
    return g.op("Cast", [name], to=TensorProto.INT32)[0]


def _layer(g: Any, layer: Any, with_lengths: bool) -> None:
    from rnncore.export import _stack

    dirs = 2 if layer.bidirectional else 1
    LD, H, D = layer.num_layers * dirs, layer.hidden_size, layer.input_size
    x = g.input("x", g.elem, ["N", "T", D] if layer.batch_first else ["T", "N", D])
    if layer.batch_first:
        x = g.op("Transpose", [x], perm=[1, 0, 2])[0]  # (N, T, D) -> (T, N, D)
    h0, c0 = _states(g, layer._mode == "lstm", LD, H)
    lens = _lengths(g) if with_lengths else None
    out, h_n, c_n, _ = _stack.stack(g, layer, x, h0, c0, lens)
    if layer.batch_first:
        out = g.op("Transpose", [out], perm=[1, 0, 2])[0]
    shape = ["N", "T", dirs * H] if layer.batch_first else ["T", "N", dirs * H]
    g.output(out, "output", g.elem, shape)
    _state_outputs(g, h_n, c_n, LD, H)


def _encode(g: Any, model: Any, ids_tn: str) -> str:
    """``ids (T, N)`` -> ``x (T, N, D)``: embedding rows, or one-hot rows (D = V)."""
    layers = model._layers
    if "embedding" in layers:
        table = layers["embedding"].weight  # (V, E)
    else:
        table = np.eye(model.config.vocab_size, dtype=model.dtype)  # (V, V)
    return g.op("Gather", [g.const("table", table), ids_tn], axis=0)[0]


def _head(g: Any, model: Any, features: str) -> str:
    """``features (..., K)`` -> ``(..., O)`` through ``model.head``."""
    head = model.head
    y = g.op("MatMul", [features, g.const("head_weight_t", np.ascontiguousarray(head.weight.T))])[0]
    if head.bias is not None:
        y = g.op("Add", [y, g.const("head_bias", head.bias)])[0]
    return y


def _ids(g: Any) -> str:
    """The ``ids (N, T)`` int64 input, transposed to ``(T, N)``."""
    from onnx import TensorProto

    ids = g.input("ids", TensorProto.INT64, ["N", "T"])
    return g.op("Transpose", [ids], perm=[1, 0])[0]


def _char_lm(g: Any, model: Any) -> None:
    from rnncore.export import _stack

    cfg = model.config
    L, H, V = cfg.num_layers, cfg.hidden_size, cfg.vocab_size
    x = _encode(g, model, _ids(g))  # (T, N, D)
    h0, c0 = _states(g, cfg.cell == "lstm", L, H)
    out, h_n, c_n, _ = _stack.stack(g, model.rnn, x, h0, c0, None)  # (T, N, H)
    logits = g.op("Transpose", [_head(g, model, out)], perm=[1, 0, 2])[0]  # (N, T, V)
    g.output(logits, "logits", g.elem, ["N", "T", V])
    _state_outputs(g, h_n, c_n, L, H)


def _encoder(g: Any, model: Any, tagger: bool) -> None:
    from rnncore.export import _stack

    cfg = model.config
    if cfg.input_size is not None:  # float features (N, T, D), not ids
        x = g.input("x", g.elem, ["N", "T", cfg.input_size])
        x = g.op("Transpose", [x], perm=[1, 0, 2])[0]  # (T, N, D)
    else:
        x = _encode(g, model, _ids(g))  # (T, N, D)
    lens = _lengths(g)
    out, _, _, y_h = _stack.stack(g, model.rnn, x, None, None, lens)  # (T, N, dirs*H)
    dirs = 2 if cfg.bidirectional else 1
    if tagger:
        logits = g.op("Transpose", [_head(g, model, out)], perm=[1, 0, 2])[0]  # (N, T, C)
        g.output(logits, "logits", g.elem, ["N", "T", cfg.num_tags])
        return
    if cfg.pooling == "mean":
        total = g.op("ReduceSum", [out, g.const("axes", np.array([0], np.int64))], keepdims=0)[0]
        count = g.op(
            "Cast",
            [g.op("Unsqueeze", [lens, g.const("ax1", np.array([1], np.int64))])[0]],
            to=g.elem,
        )[0]
        pooled = g.op("Div", [total, count])[0]  # (N, dirs*H)
    else:  # the final state of each direction of the last layer
        pooled = g.op("Transpose", [y_h], perm=[1, 0, 2])[0]  # (N, dirs, H)
        shape = g.const("pooled_shape", np.array([0, dirs * cfg.hidden_size], np.int64))
        pooled = g.op("Reshape", [pooled, shape])[0]  # (N, dirs*H)
    g.output(_head(g, model, pooled), "logits", g.elem, ["N", cfg.num_classes])
