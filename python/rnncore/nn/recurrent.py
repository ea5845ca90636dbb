"""Multi-layer, optionally bidirectional RNN, LSTM and GRU: drop-ins for torch.nn.

Same constructor arguments, parameter names, shapes, gate layout and
initialisation as :class:`torch.nn.RNN`, :class:`torch.nn.LSTM` and
:class:`torch.nn.GRU`, on NumPy arrays, with an explicit :meth:`backward`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError
from rnncore.nn._base import lstm_mode
from rnncore.nn._layer import _RNNBase

_COMMON_DOC = """
    Args:
        input_size: ``D``, features of the input ``x``.
        hidden_size: ``H``, features of the hidden state.
        num_layers: stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
        bias: if False, the layer has no ``bias_ih_l{{k}}``/``bias_hh_l{{k}}``.
        batch_first: input and output are ``(N, T, ...)`` instead of ``(T, N, ...)``
            (``hx`` is not affected).
        dropout: if non-zero, inverted dropout with this probability on the outputs
            of every layer except the last, in training mode only.
        bidirectional: add a reverse direction to every layer (suffix ``_reverse``).
        input_dropout: (keyword) variational dropout of each layer's input, one
            mask per sequence, the same at every step (Keras's ``dropout``; Gal &
            Ghahramani 2016), in training mode only.
        recurrent_dropout: (keyword) variational dropout of the state the
            recurrent products ``W_hh h`` read, one mask per sequence and
            direction, applied inside the kernels' time loop (Keras's
            ``recurrent_dropout``); the state carried to the next step is not
            masked. Training mode only.
        zoneout: (keyword) zoneout of the hidden state (Krueger et al. 2017): at
            each step each unit keeps its previous value with this probability;
            at evaluation it keeps this fraction of it (the expectation).
        zoneout_cell: (keyword, LSTM only) the same for the cell state.
        dtype: ``np.float32`` (default) or ``np.float64``; inputs must have it.
        seed, rng: where the random numbers come from (initialisation and dropout
            masks): a ``numpy.random.Generator`` ``rng``, else
            ``np.random.default_rng(seed)``. The same seed gives the same weights.
            The generator is the attribute ``rng`` and may be replaced.
        backend: the kernel module; None (default) uses the compiled kernels
            ``rnncore._rnncore``. For debugging, ``backend=rnncore.reference`` runs
            the NumPy float64 reference instead (slow; results are cast to ``dtype``).

    Inputs: ``x, hx=None, lengths=None``
        - **x**: ``(T, N, D)``, ``(N, T, D)`` if ``batch_first``, or ``(T, D)`` unbatched.
        - **hx**: {hx} None means zeros.
        - **lengths**: ``(N,)`` integers in ``1..T``, any order, or None: sequence
          ``n`` is ``x[:lengths[n], n]`` (torch's packed-sequence semantics; the
          reverse direction starts at each sequence's own last step).

    Outputs: ``output, {out}``
        - **output**: ``(T, N, num_directions*H)`` (``(N, T, ...)`` if ``batch_first``,
          ``(T, ...)`` unbatched): the last layer's ``h_t``, forward and reverse
          directions concatenated; zero at padded steps ``t >= lengths[n]``.
        - {out_desc}

    Backward: ``dx, d_hx0 = layer.backward(d_output, d_hx=None)`` backpropagates
    through the most recent forward call, returns the gradients of ``x`` and of
    ``hx`` (same structure and shapes) and adds the parameter gradients to
    ``layer.grads`` (keyed like ``state_dict()``; :meth:`zero_grad` resets them).

    Attributes:
        weight_ih_l[k]: ``(G*H, D)`` for ``k = 0``, ``(G*H, num_directions*H)`` otherwise.
        weight_hh_l[k]: ``(G*H, H)``.
        bias_ih_l[k], bias_hh_l[k]: ``(G*H,)``.
        All drawn from ``U(-1/sqrt(H), 1/sqrt(H))``; {G}.
"""

_H0 = (  # the shape of h_0 and c_0, continued on a new line of the docstring
    "``(num_layers*num_directions, N, H)``\n"
    "          (``(num_layers*num_directions, H)`` unbatched)."
)
_HN = "**h_n**: the final state of every layer and direction, the shape of ``h_0``."


class RNN(_RNNBase):
    __doc__ = r"""Multi-layer Elman RNN with tanh or ReLU non-linearity.

    For each element of the input sequence each layer computes

    .. math::
        h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})

    where ``h_t`` is the hidden state at time ``t``, ``x_t`` the input of the layer
    at time ``t`` and ``h_{t-1}`` the state at ``t - 1`` (or ``h_0``). With
    ``nonlinearity='relu'``, ReLU replaces tanh.

    Example::

        >>> rnn = RNN(10, 20, num_layers=2, seed=0)
        >>> output, h_n = rnn(np.zeros((5, 3, 10), np.float32))   # (T, N, D)
        >>> output.shape, h_n.shape
        ((5, 3, 20), (2, 3, 20))
""" + _COMMON_DOC.format(hx="``h_0`` " + _H0, out="h_n", out_desc=_HN, G="G = 1")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        zoneout_cell: float = 0.0,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        self.nonlinearity = _validate.choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        super().__init__(
            f"rnn_{nonlinearity}",
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
            zoneout_cell=zoneout_cell,
            dtype=dtype,
            seed=seed,
            rng=rng,
            backend=backend,
        )


class LSTM(_RNNBase):
    __doc__ = r"""Multi-layer long short-term memory (LSTM) RNN.

    For each element of the input sequence each layer computes

    .. math::
        \begin{array}{ll}
        i_t = \sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\
        f_t = \sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\
        g_t = \tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\
        o_t = \sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\
        c_t = f_t \odot c_{t-1} + i_t \odot g_t \\
        h_t = o_t \odot \tanh(c_t)
        \end{array}

    with input, forget, cell and output gates ``i, f, g, o`` stacked in this order
    in ``weight_ih_l[k] = W_ii|W_if|W_ig|W_io`` (and likewise the others), ``sigma``
    the sigmoid and ``odot`` the elementwise product.

    ``cifg=True`` (keyword) couples the input gate to the forget gate, ``i_t = 1 -
    f_t`` (CIFG, Greff et al. 2017): there is no input gate, and the weights hold
    the gates ``f, g, o`` in this order (``G = 3``, so ``weight_ih_l[k]`` is
    ``(3H, D)``), under the same names.

    ``peephole=True`` (keyword) adds peephole connections (Gers & Schmidhuber
    2000): the input and forget gates also see ``c_{t-1}`` and the output gate sees
    ``c_t``, through per-unit weights, ``i_t = sigma(... + p_i * c_{t-1})``, ``f_t =
    sigma(... + p_f * c_{t-1})``, ``o_t = sigma(... + p_o * c_t)``. Each layer and
    direction has one more parameter, ``weight_peep_l[k]`` (``_reverse`` for the
    reverse direction) of shape ``(3H,)`` holding ``p_i|p_f|p_o``, drawn like the
    others from ``U(-1/sqrt(H), 1/sqrt(H))`` (so a fresh layer is not a plain
    LSTM; zero them for that). Not combinable with ``cifg=True``. There is no ONNX
    operator for it nor a compiled decoder.

    ``layer_norm=True`` (keyword) normalises the two products and the cell state
    (Ba et al. 2016): ``a_t = LN_x(W_ih x_t) + b_ih + LN_h(W_hh h_{t-1}) + b_hh``
    gives the four gates, ``c_t`` is as above and ``h_t = o_t * tanh(LN_c(c_t))``,
    each ``LN(v) = gain * (v - mean(v)) / sqrt(var(v) + 1e-5) + shift`` over the
    ``4H`` (``H``) entries of a row. Each layer and direction has two more
    parameters, ``weight_ln_l[k]`` (the gains, ones at first) and ``bias_ln_l[k]``
    (the shifts, zeros), ``(9H,)`` each: ``LN_x`` (4H), ``LN_h`` (4H), ``LN_c`` (H).
    Not combinable with ``cifg`` or ``peephole``; no ONNX operator nor compiled
    decoder.
    ``proj_size = P > 0`` (torch's argument, ``0 < P < H``) makes it an LSTM with
    projections (Sak et al. 2014): ``h_t = W_{hr} (o_t \odot \tanh(c_t))``, so
    ``h`` has ``P`` features and ``c`` keeps ``H``. Each layer and direction has
    one more parameter, ``weight_hr_l[k]`` (``_reverse``) of shape ``(P, H)``,
    without bias; ``weight_hh_l[k]`` is ``(4H, P)``, layer ``k > 0`` reads
    ``num_directions*P`` features, ``h_0``/``h_n`` are ``(num_layers*num_directions,
    N, P)``, ``c_0``/``c_n`` ``(num_layers*num_directions, N, H)`` and the output
    ``(T, N, num_directions*P)``. Only for the plain LSTM (not ``cifg``,
    ``peephole``), and without traces, ONNX export or a compiled decoder.

    Example::

        >>> lstm = LSTM(10, 20, num_layers=2, bidirectional=True, seed=0)
        >>> output, (h_n, c_n) = lstm(np.zeros((5, 3, 10), np.float32))
        >>> output.shape, h_n.shape
        ((5, 3, 40), (4, 3, 20))
        >>> lstmp = LSTM(10, 20, proj_size=5, seed=0)
        >>> output, (h_n, c_n) = lstmp(np.zeros((5, 3, 10), np.float32))
        >>> output.shape, h_n.shape, c_n.shape
        ((5, 3, 5), (1, 3, 5), (1, 3, 20))
""" + _COMMON_DOC.format(
        hx="a tuple ``(h_0, c_0)``, each " + _H0,
        out="(h_n, c_n)",
        out_desc=_HN + "\n        - **c_n**: the final cell states, the same shape.",
        G="G = 4 (gates i|f|g|o)",
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        input_dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        zoneout_cell: float = 0.0,
        cifg: bool = False,
        peephole: bool = False,
        layer_norm: bool = False,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        self.cifg = _validate.flag("cifg", cifg)
        self.peephole = _validate.flag("peephole", peephole)
        self.layer_norm = _validate.flag("layer_norm", layer_norm)
        super().__init__(
            lstm_mode(self.cifg, self.peephole, self.layer_norm),
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
            zoneout_cell=zoneout_cell,
            dtype=dtype,
            seed=seed,
            rng=rng,
            backend=backend,
            proj_size=proj_size,
        )


class GRU(_RNNBase):
    __doc__ = r"""Multi-layer gated recurrent unit (GRU) RNN.

    For each element of the input sequence each layer computes

    .. math::
        \begin{array}{ll}
        r_t = \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t = \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t = \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}
        \end{array}

    with reset, update and new gates ``r, z, n`` stacked in this order in
    ``weight_ih_l[k] = W_ir|W_iz|W_in`` (and likewise the others).

    ``reset_after=False`` (keyword) applies the reset gate to the state before the
    product, ``n_t = tanh(W_in x_t + b_in + W_hn (r_t * h_{t-1}) + b_hn)``: Cho et
    al.'s GRU and Keras's ``reset_after=False``, with the same parameter names and
    shapes (:func:`rnncore.convert.from_keras_gru` converts Keras's weights). It
    costs a second, dependent product per step.

    ``layer_norm=True`` (keyword) normalises the two products (Ba et al. 2016):
    ``[x_r x_z x_n] = LN_x(W_ih x_t) + b_ih`` and ``[h_r h_z h_n] = LN_h(W_hh
    h_{t-1}) + b_hh`` enter the equations above, each ``LN`` over the ``3H``
    entries of a row with its own gain and shift: the parameters
    ``weight_ln_l[k]`` (ones at first) and ``bias_ln_l[k]`` (zeros), ``(6H,)``
    each, ``LN_x`` then ``LN_h``. The reset-after form only; no ONNX operator
    nor compiled decoder.

    Example::

        >>> gru = GRU(10, 20, batch_first=True, seed=0)
        >>> output, h_n = gru(np.zeros((3, 5, 10), np.float32))   # (N, T, D)
        >>> output.shape, h_n.shape
        ((3, 5, 20), (1, 3, 20))
""" + _COMMON_DOC.format(hx="``h_0`` " + _H0, out="h_n", out_desc=_HN, G="G = 3 (gates r|z|n)")

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
        zoneout_cell: float = 0.0,
        reset_after: bool = True,
        layer_norm: bool = False,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        self.reset_after = _validate.flag("reset_after", reset_after)
        self.layer_norm = _validate.flag("layer_norm", layer_norm)
        if self.layer_norm and not self.reset_after:
            raise ArgumentError(
                "layer_norm=True is for the reset-after GRU; reset_after=False cannot be combined"
            )
        super().__init__(
            "gru_ln" if self.layer_norm else "gru" if self.reset_after else "gru_reset_before",
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
            zoneout_cell=zoneout_cell,
            dtype=dtype,
            seed=seed,
            rng=rng,
            backend=backend,
        )
