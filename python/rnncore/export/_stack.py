"""A recurrent stack (:class:`rnncore.nn.RNN`, ``LSTM``, ``GRU``) as ONNX nodes.

One standard ONNX ``RNN``/``LSTM``/``GRU`` operator per layer (both directions
in one node), with the weights regrouped from torch's gate order to ONNX's:

- LSTM: torch ``i|f|g|o`` -> ONNX ``i|o|f|c``;
- GRU: torch ``r|z|n`` -> ONNX ``z|r|h``, with ``linear_before_reset = 1``
  (torch applies the reset gate after the recurrent product, bias included);
- GRU with ``reset_after=False``: the same, with ``linear_before_reset = 0``;
- RNN: one gate, ``Tanh`` or ``Relu``.

Other cells (``lstm_cifg``) have no standard operator and are refused.

ONNX's ``W (dirs, G*H, D)``, ``R (dirs, G*H, H)`` and ``B (dirs, 2*G*H)`` stack
the directions; ``sequence_lens`` gives torch's packed-sequence semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from rnncore.errors import ArgumentError

ORDER = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn_tanh": [0], "rnn_relu": [0]}
OP = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}
# The GRU with the reset before the product is ONNX's GRU with linear_before_reset = 0.
ORDER["gru_reset_before"], OP["gru_reset_before"] = ORDER["gru"], "GRU"


@dataclass
class Graph:
    """Nodes, initializers, inputs and outputs being collected, with fresh names."""

    dtype: np.dtype
    nodes: list[Any] = field(default_factory=list)
    initializers: list[Any] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    _count: int = 0

    @property
    def elem(self) -> int:
        return TensorProto.FLOAT if self.dtype == np.float32 else TensorProto.DOUBLE

    def name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: Any) -> str:
        """An initializer holding ``value`` (as an array); returns its name."""
        name = self.name(stem)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        """Append a node; returns its output names."""
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def input(self, name: str, elem: int, shape: list[Any]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem, shape))
        return name

    def output(self, value: str, name: str, elem: int, shape: list[Any]) -> None:
        self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, elem, shape))


def _regroup(w: np.ndarray, mode: str, H: int) -> np.ndarray:
    """Rows of ``w (G*H, ...)`` from torch's gate order to ONNX's."""
    return np.concatenate([w[g * H : (g + 1) * H] for g in ORDER[mode]], axis=0)


def stack(
    g: Graph,
    rnn: Any,
    x: str,
    h0: str | None,
    c0: str | None,
    lens: str | None,
) -> tuple[str, str, str | None, str]:
    """Nodes of ``rnn`` over ``x (T, N, D)``; ``h0``/``c0`` ``(L*dirs, N, H)`` or None
    (zeros), ``lens`` an int32 ``(N,)`` or None.

    Returns ``output (T, N, dirs*H)``, ``h_n`` and ``c_n`` (``(L*dirs, N, H)``,
    ``c_n`` None unless LSTM) and the last layer's ``Y_h (dirs, N, H)``.
    """
    mode, H, dirs = rnn._mode, rnn.hidden_size, 2 if rnn.bidirectional else 1
    if mode not in OP:
        raise ArgumentError(
            f"the {mode} cell has no standard ONNX operator; export takes the cells {sorted(OP)}"
        )
    if getattr(rnn, "proj_size", 0):
        raise ArgumentError(
            f"an LSTM with projections (proj_size={rnn.proj_size}) has no ONNX operator: "
            "ONNX's LSTM has no projection W_hr; export takes proj_size=0 only"
        )
    params = dict(rnn.named_parameters())
    h_parts: list[str] = []
    c_parts: list[str] = []
    y_h = ""
    for k in range(rnn.num_layers):
        sfx = [f"_l{k}", f"_l{k}_reverse"][:dirs]
        W = np.stack([_regroup(params["weight_ih" + s], mode, H) for s in sfx])
        R = np.stack([_regroup(params["weight_hh" + s], mode, H) for s in sfx])
        ins = [x, g.const(f"W_l{k}", W), g.const(f"R_l{k}", R)]
        if rnn.bias:
            B = np.stack(  # (dirs, 2*G*H): input biases, then recurrent biases
                [
                    np.concatenate(
                        [_regroup(params[b + s], mode, H) for b in ("bias_ih", "bias_hh")]
                    )
                    for s in sfx
                ]
            )
            ins.append(g.const(f"B_l{k}", B))
        else:
            ins.append("")
        ins.append(lens or "")
        layer_states = g.const(f"layer{k}", np.array([k * dirs], np.int64))
        end = g.const(f"layer{k}_end", np.array([(k + 1) * dirs], np.int64))
        axis0 = g.const("axis0", np.array([0], np.int64))
        for s in (h0, c0) if mode == "lstm" else (h0,):
            ins.append("" if s is None else g.op("Slice", [s, layer_states, end, axis0])[0])
        attrs: dict[str, Any] = {
            "hidden_size": H,
            "direction": "bidirectional" if dirs == 2 else "forward",
        }
        if mode == "gru":
            attrs["linear_before_reset"] = 1
        if mode.startswith("rnn"):
            attrs["activations"] = ["Relu" if mode == "rnn_relu" else "Tanh"] * dirs
        n_out = 3 if mode == "lstm" else 2
        outs = g.op(OP[mode], ins, n_out, **attrs)
        y, y_h = outs[0], outs[1]  # (T, dirs, N, H), (dirs, N, H)
        h_parts.append(y_h)
        if mode == "lstm":
            c_parts.append(outs[2])
        y = g.op("Transpose", [y], perm=[0, 2, 1, 3])[0]  # (T, N, dirs, H)
        shape = g.const("shape", np.array([0, 0, dirs * H], np.int64))
        x = g.op("Reshape", [y, shape])[0]  # (T, N, dirs*H)
    h_n = g.op("Concat", h_parts, axis=0)[0] if len(h_parts) > 1 else h_parts[0]
    c_n = None
    if c_parts:
        c_n = g.op("Concat", c_parts, axis=0)[0] if len(c_parts) > 1 else c_parts[0]
    return x, h_n, c_n, y_h
