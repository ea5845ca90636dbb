"""The MUT1, MUT2 and MUT3 layers and cells: the three architectures that
Jozefowicz, Zaremba & Sutskever (2015, "An Empirical Exploration of Recurrent
Network Architectures") found by search. The layers are multi-layer, optionally
bidirectional, with the interface of :class:`~rnncore.nn.GRU`; the cells
(``MUT1Cell``, ...) run one step with that of :class:`~rnncore.nn.GRUCell`."""

from __future__ import annotations

import textwrap
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError
from rnncore.nn._layer import _RNNBase
from rnncore.nn.cells import _CellBase
from rnncore.nn.recurrent import _COMMON_DOC, _H0, _HN

_MUT_DOC = r"""

    Each of ``z`` (update) and ``r`` (reset) is a sigmoid gate; every gate has one
    bias, the sum of its blocks of ``bias_ih_l[k]`` and ``bias_hh_l[k]`` (as in a
    GRU). There are no unused weights, so ``weight_ih_l[k]`` and ``weight_hh_l[k]``
    have {rows} rows, stacked in this order:

{layout}

    The reset multiplies the state before the product with ``W_hh``, as in
    ``GRU(reset_after=False)``. There is no ONNX operator for the MUT cells nor a
    compiled decoder: the export refuses them, and decoding runs this layer.
{square}
    Example::

        >>> layer = {name}(8, 8, num_layers=2, seed=0)
        >>> output, h_n = layer(np.zeros((5, 3, 8), np.float32))   # (T, N, D)
        >>> output.shape, h_n.shape
        ((5, 3, 8), (2, 3, 8))
"""

_SQUARE_NOTE = """
    {name} adds the input itself to a gate, so ``input_size`` must equal
    ``hidden_size`` (an :class:`~rnncore.errors.ArgumentError` otherwise); a layer
    above the first reads ``H`` features, so stacking works, but not together with
    ``bidirectional=True`` (the layers above would read ``2H``).
"""


def _check_sizes(name: str, mode: str, input_size: Any, hidden_size: Any) -> None:
    """MUT1 and MUT2 add ``x`` itself to a gate: ``input_size`` must be
    ``hidden_size``. Checked before any parameter is drawn from the generator."""
    if mode in ("mut1", "mut2"):
        D = _validate.positive_int("input_size", input_size)
        H = _validate.positive_int("hidden_size", hidden_size)
        if D != H:
            raise ArgumentError(
                f"{name} adds x itself to a gate, so input_size ({D}) must equal hidden_size ({H})"
            )


class _MUTBase(_RNNBase):
    """A MUT layer: checks the sizes its mode needs, then builds as any layer."""

    _MODE = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        _check_sizes(type(self).__name__, self._MODE, input_size, hidden_size)
        if self._MODE in ("mut1", "mut2"):
            if _validate.flag("bidirectional", bidirectional) and num_layers != 1:
                raise ArgumentError(
                    f"{type(self).__name__} needs input_size == hidden_size in every layer: "
                    f"with bidirectional=True the layers above the first would read "
                    f"2*hidden_size features; use num_layers=1 or one direction"
                )
        super().__init__(
            self._MODE,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            dtype=dtype,
            seed=seed,
            rng=rng,
            backend=backend,
        )


def _doc(name: str, equations: str, rows: str, layout: str, square: bool) -> str:
    head = f"Multi-layer {name} RNN (Jozefowicz et al. 2015).\n\n"
    head += "    For each element of the input sequence each layer computes\n" + equations
    layout = textwrap.fill(layout, width=88, initial_indent="    ", subsequent_indent="    ")
    note = _SQUARE_NOTE.format(name=name) if square else ""
    head += _MUT_DOC.format(name=name, rows=rows, layout=layout, square=note)
    return head + _COMMON_DOC.format(
        hx="``h_0`` " + _H0, out="h_n", out_desc=_HN, G="rows as given above"
    )


class MUT1(_MUTBase):
    __doc__ = _doc(
        "MUT1",
        r"""
    .. math::
        \begin{array}{ll}
        z_t = \sigma(W_{xz} x_t + b_z) \\
        r_t = \sigma(W_{xr} x_t + W_{hr} h_{t-1} + b_r) \\
        h_t = \tanh(W_{hh} (r_t \odot h_{t-1}) + \tanh(x_t) + b_h) \odot z_t
              + h_{t-1} \odot (1 - z_t)
        \end{array}
""",
        "``2H``",
        "``weight_ih_l[k] = W_xz|W_xr`` ``(2H, D)``, ``weight_hh_l[k] = W_hr|W_hh``"
        " ``(2H, H)``, ``bias_ih_l[k] = b_xz|b_xr``, ``bias_hh_l[k] = b_hr|b_hh``"
        " (so ``b_z = b_xz``, ``b_r = b_xr + b_hr``, ``b_h = b_hh``)",
        square=True,
    )
    _MODE = "mut1"


class MUT2(_MUTBase):
    __doc__ = _doc(
        "MUT2",
        r"""
    .. math::
        \begin{array}{ll}
        z_t = \sigma(W_{xz} x_t + W_{hz} h_{t-1} + b_z) \\
        r_t = \sigma(x_t + W_{hr} h_{t-1} + b_r) \\
        h_t = \tanh(W_{hh} (r_t \odot h_{t-1}) + W_{xh} x_t + b_h) \odot z_t
              + h_{t-1} \odot (1 - z_t)
        \end{array}
""",
        "``2H`` (input) and ``3H`` (recurrent)",
        "``weight_ih_l[k] = W_xz|W_xh`` ``(2H, D)``, ``weight_hh_l[k] ="
        " W_hz|W_hr|W_hh`` ``(3H, H)``, ``bias_ih_l[k] = b_xz|b_xh``, ``bias_hh_l[k] ="
        " b_hz|b_hr|b_hh`` (so ``b_z = b_xz + b_hz``, ``b_r = b_hr``, ``b_h = b_xh +"
        " b_hh``)",
        square=True,
    )
    _MODE = "mut2"


class MUT3(_MUTBase):
    __doc__ = _doc(
        "MUT3",
        r"""
    .. math::
        \begin{array}{ll}
        z_t = \sigma(W_{xz} x_t + W_{hz} \tanh(h_{t-1}) + b_z) \\
        r_t = \sigma(W_{xr} x_t + W_{hr} h_{t-1} + b_r) \\
        h_t = \tanh(W_{hh} (r_t \odot h_{t-1}) + W_{xh} x_t + b_h) \odot z_t
              + h_{t-1} \odot (1 - z_t)
        \end{array}
""",
        "``3H``",
        "``weight_ih_l[k] = W_xz|W_xr|W_xh`` ``(3H, D)``, ``weight_hh_l[k] ="
        " W_hz|W_hr|W_hh`` ``(3H, H)``, and the biases alike (each gate's bias is the"
        " sum of its two blocks)",
        square=False,
    )
    _MODE = "mut3"


class _MUTCellBase(_CellBase):
    """A MUT cell: checks the sizes its mode needs, then builds as any cell."""

    _MODE = ""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        _check_sizes(type(self).__name__, self._MODE, input_size, hidden_size)
        super().__init__(
            self._MODE, input_size, hidden_size, bias, dtype=dtype, seed=seed, rng=rng,
            backend=backend,
        )  # fmt: skip


_CELL_DOC = """One step of {layer}: ``h' = cell(x, h)``, with ``x (N, D)`` (``(D,)``
    unbatched) and ``h (N, H)``, the equations, parameter layout and size rules of
    :class:`{layer}` (parameters ``weight_ih``, ``weight_hh``, ``bias_ih``,
    ``bias_hh``); ``cell.backward(d_h)`` returns ``(dx, dh_prev)`` of the most recent
    cached step, as :class:`~rnncore.nn.GRUCell` does.
"""


class MUT1Cell(_MUTCellBase):
    __doc__ = _CELL_DOC.format(layer="MUT1")
    _MODE = "mut1"


class MUT2Cell(_MUTCellBase):
    __doc__ = _CELL_DOC.format(layer="MUT2")
    _MODE = "mut2"


class MUT3Cell(_MUTCellBase):
    __doc__ = _CELL_DOC.format(layer="MUT3")
    _MODE = "mut3"
