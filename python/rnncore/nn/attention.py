"""The attention decoder: a recurrent cell with attention over encoder outputs and
input feeding, run over a whole target sequence in one kernel call, teacher-forced
or with scheduled sampling of its inputs."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, overload

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.nn._base import GATES, Array, KernelModule, State
from rnncore.nn.functional import _in_range, _integers

ATTENTIONS = ("additive", "general", "dot")
MODES = ("rnn_tanh", "rnn_relu", "lstm", "gru")
# Kernel weight name -> parameter name.
PARAMETERS = {
    "w_ih": "weight_ih",
    "w_hh": "weight_hh",
    "b_ih": "bias_ih",
    "b_hh": "bias_hh",
    "w_query": "attention_weight_query",
    "w_key": "attention_weight_key",
    "v": "attention_v",
}


@dataclass(frozen=True)
class ScheduledSampling:
    """Scheduled sampling (Bengio et al. 2015) for :meth:`AttentionDecoder.forward`.

    At every step ``t >= 1``, each row ``b`` independently with probability ``prob``
    is fed ``embedding[argmax(head_weight @ output_{t-1}[b] + head_bias)]``, the
    model's own prediction, instead of its teacher input ``y[t, b]``. The coin
    flips depend only on ``(seed, b, t)`` (:func:`rnncore.reference.sampling_flips`),
    not on the other rows or the thread count. No gradient flows through the
    choice.
    """

    prob: float  # in [0, 1]; 0 is teacher forcing
    seed: int  # 0..2**64-1; the same seed gives the same flips
    ids: Any  # (T, N) teacher ids; y must be embedding[ids]
    embedding: Any  # (V, E) the table y was looked up in
    head_weight: Any  # (V, H + M) the head over output_t = [h_t; context_t]
    head_bias: Any = None  # (V,) or None


class AttentionDecoder(KernelModule):
    r"""A decoder that attends over encoder outputs at every step (Bahdanau et al.
    2015; Luong et al. 2015 for ``general``/``dot`` and input feeding)::

        x_t = [y_t; context_{t-1}]                  (N, E + M)  input feeding
        h_t (, c_t) = cell(x_t, h_{t-1} (, c_{t-1}))  RNN, LSTM or GRU step
        score(h_t, m_s) = v . tanh(W_q h_t + W_k m_s)  additive
                        = h_t . (W_k m_s)             general
                        = h_t . m_s                   dot (M == H)
        weights_t = softmax over the valid source steps (exactly 0 at padding)
        context_t = sum_s weights_t[s] m_s           (N, M)
        output_t = [h_t; context_t]                  (N, H + M), for the head

    With ``sampling`` (:class:`ScheduledSampling`) some inputs ``y_t`` are the
    embedding of the model's own previous prediction instead. The key projection
    ``W_k m`` is computed once per call. The whole target sequence is one call to
    the compiled kernels (``rnncore._rnncore.decoder_forward``) or, with
    ``backend=rnncore.reference``, to the float64 NumPy reference.

    Args:
        input_size: ``E``, size of the (embedded) decoder inputs.
        hidden_size: ``H``.
        memory_size: ``M``, size of the encoder outputs (``2H_enc`` for a
            bidirectional encoder).
        mode: the cell, ``"lstm"`` (default), ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"``.
        attention: ``"additive"`` (default), ``"general"`` or ``"dot"``.
        attention_size: ``A``, units of the additive score (default ``H``).
        bias: whether the cell has biases.
        dtype, seed, rng, backend: as for :class:`~rnncore.nn.LSTM`.

    Parameters (drawn from ``U(-1/sqrt(H), 1/sqrt(H))``): ``weight_ih (G*H, E + M)``,
    ``weight_hh (G*H, H)``, ``bias_ih``, ``bias_hh (G*H,)`` in torch's gate order;
    additive: ``attention_weight_query (A, H)``, ``attention_weight_key (A, M)``,
    ``attention_v (A,)``; general: ``attention_weight_key (H, M)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int,
        mode: str = "lstm",
        attention: str = "additive",
        attention_size: int | None = None,
        bias: bool = True,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        super().__init__(hidden_size, dtype=dtype, seed=seed, rng=rng, backend=backend)
        self._mode = _validate.choice("mode", mode, MODES)
        self.attention = _validate.choice("attention", attention, ATTENTIONS)
        self.input_size = _validate.positive_int("input_size", input_size)
        self.memory_size = _validate.positive_int("memory_size", memory_size)
        self.bias = _validate.flag("bias", bias)
        H, M = self.hidden_size, self.memory_size
        if attention == "dot" and M != H:
            raise ShapeError(f"dot attention needs memory_size == hidden_size, got {M} and {H}")
        A = H
        if attention_size is not None:
            A = _validate.positive_int("attention_size", attention_size)
        self.attention_size = A if attention == "additive" else (H if attention == "general" else M)
        G = GATES[self._mode]
        self._add_parameter("weight_ih", (G * H, self.input_size + M))
        self._add_parameter("weight_hh", (G * H, H))
        if self.bias:
            self._add_parameter("bias_ih", (G * H,))
            self._add_parameter("bias_hh", (G * H,))
        if attention == "additive":
            self._add_parameter("attention_weight_query", (A, H))
            self._add_parameter("attention_weight_key", (A, M))
            self._add_parameter("attention_v", (A,))
        elif attention == "general":
            self._add_parameter("attention_weight_key", (H, M))
        self._cache: tuple[Any, int, int, int] | None = None  # (kernel cache, T, N, S)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, {self.memory_size}, mode={self._mode!r}"
        s += f", attention={self.attention!r}"
        return s + ("" if self.bias else ", bias=False")

    def _kernel_weights(self) -> dict[str, Array]:
        return {k: self._params[p] for k, p in PARAMETERS.items() if p in self._params}

    @overload
    def forward(
        self,
        y: Any,
        memory: Any,
        lengths: Any = ...,
        hx: State | None = ...,
        context0: Any = ...,
        *,
        sampling: None = ...,
        keys: Any = ...,
        prepared: Any = ...,
    ) -> tuple[Array, Array, State, Array]: ...

    @overload
    def forward(
        self,
        y: Any,
        memory: Any,
        lengths: Any = ...,
        hx: State | None = ...,
        context0: Any = ...,
        *,
        sampling: ScheduledSampling,
        keys: Any = ...,
        prepared: Any = ...,
    ) -> tuple[Array, Array, State, Array, Array]: ...

    def forward(
        self,
        y: Any,
        memory: Any,
        lengths: Any = None,
        hx: State | None = None,
        context0: Any = None,
        *,
        sampling: ScheduledSampling | None = None,
        keys: Any = None,
        prepared: Any = None,
    ) -> tuple:
        """Run the decoder over ``T`` steps, teacher-forced unless ``sampling``.

        Args:
            y: ``(T, N, E)`` decoder inputs (embedded previous target symbols).
            memory: ``(N, S, M)`` encoder outputs.
            lengths: ``(N,)`` source lengths in ``1..S`` (padded source steps get
                weight 0), or None (all ``S``).
            hx: initial state ``h0 (N, H)``, or ``(h0, c0)`` for lstm; None is zeros.
            context0: ``(N, M)`` the context fed into step 0 (None: zeros); the last
                context of a previous call to continue a sequence step by step.
            sampling: a :class:`ScheduledSampling`, or None (teacher forcing).
            keys: ``(N, S, A)`` :meth:`keys` of ``memory``, or None (projected in
                the call): a decoder stepped one call at a time projects its memory
                once this way.
            prepared: :meth:`prepare` of the current weights, or None: a decoder
                stepped one call at a time packs its weights once this way.

        Returns:
            ``(output (T, N, H + M), weights (T, N, S), hx_n, context_n (N, M))``
            with ``hx_n`` shaped like ``hx``; with ``sampling`` also ``fed (T, N)``
            int64, the ids fed at every step (:meth:`backward`'s ``dy`` is the
            gradient of their embedding rows).
        """
        y = _validate.float_array("y", y, self.dtype)
        _validate.ndim("y", y, (3,), "(T, N, E)")
        _validate.features("y", y, self.input_size)
        _validate.nonempty("y", y, [(0, "time", "T"), (1, "batch", "N")])
        _validate.finite("y", y)
        T, N, _ = y.shape
        memory = _validate.float_array("memory", memory, self.dtype)
        _validate.ndim("memory", memory, (3,), "(N, S, M)")
        if memory.shape[0] != N or memory.shape[2] != self.memory_size:
            raise ShapeError(
                f"memory must be ({N}, S, {self.memory_size}) = (N, S, M) for y of batch "
                f"{N}, got {memory.shape}"
            )
        _validate.nonempty("memory", memory, [(1, "source", "S")])
        _validate.finite("memory", memory)
        S = memory.shape[1]
        if lengths is not None:
            lengths = _validate.lengths(lengths, N, S)
        H = self.hidden_size
        h0, c0 = self._state("hx", hx, ("h0", "c0"), (N, H), "(N, H)")
        if h0 is None:
            h0 = np.zeros((N, H), dtype=self.dtype)
            c0 = np.zeros((N, H), dtype=self.dtype) if self._mode == "lstm" else None
        if context0 is None:
            context0 = np.zeros((N, self.memory_size), dtype=self.dtype)
        context0 = self._array("context0", context0, (N, self.memory_size), "(N, M)")
        kernel_sampling = None if sampling is None else self._sampling(sampling, y)
        if keys is not None:
            keys = self._array("keys", keys, (N, S, self.attention_size), "(N, S, A)")
        extra = {} if prepared is None else {"prepared": prepared}
        results = self._kernels.decoder_forward(
            self._mode, self.attention, y, memory, lengths, h0, c0,
            self._kernel_weights(), context0=context0, sampling=kernel_sampling, keys=keys,
            **extra,
        )  # fmt: skip
        output, weights, h_n, c_n, cache = results[:5]
        self._cache = (cache, T, N, S) if self.training else None
        output = self._cast(output)  # (T, N, H + M)
        c_n = None if c_n is None else self._cast(c_n)
        hx_n = self._pack(self._cast(h_n), c_n)
        if sampling is None:
            return output, self._cast(weights), hx_n, output[-1, :, H:]
        fed = np.asarray(results[5], dtype=np.int64)  # (T, N)
        return output, self._cast(weights), hx_n, output[-1, :, H:], fed

    def prepare(self) -> Any:
        """The weights packed once for many one-step calls (``forward(prepared=)``),
        or None on a backend that does not pack (the NumPy reference). Valid until
        the weights change (a training step, ``load_state_dict``): make a new one
        then."""
        prepare = getattr(self._kernels, "decoder_prepare", None)
        if prepare is None:
            return None
        return prepare(
            self._mode, self.attention, self._kernel_weights(), self.input_size, self.memory_size
        )

    def keys(self, memory: Any) -> Array:
        """The keys ``(N, S, A)`` the attention projects ``memory (N, S, M)`` to
        (``memory`` itself for dot), for :meth:`forward`'s ``keys``."""
        memory = _validate.float_array("memory", memory, self.dtype)
        _validate.ndim("memory", memory, (3,), "(N, S, M)")
        _validate.features("memory", memory, self.memory_size)
        _validate.finite("memory", memory)
        keys = self._kernels.decoder_keys(self.attention, memory, self._kernel_weights())
        return self._cast(keys)

    def _sampling(self, sampling: Any, y: Array) -> dict[str, Any]:
        """The kernels' ``sampling`` dict from a checked :class:`ScheduledSampling`
        for ``y (T, N, E)``."""
        if not isinstance(sampling, ScheduledSampling):
            raise ArgumentError(
                f"sampling must be a ScheduledSampling or None, got {type(sampling).__name__}"
            )
        prob = _validate.unit_interval("sampling.prob", sampling.prob)
        seed = _validate.seed64("sampling.seed", sampling.seed)
        T, N, E = y.shape
        table = _validate.float_array("embedding", sampling.embedding, self.dtype)
        _validate.ndim("embedding", table, (2,), "(V, E)")
        _validate.features("embedding", table, E)
        V = table.shape[0]
        _validate.nonempty("embedding", table, [(0, "vocabulary", "V")])
        _validate.finite("embedding", table)
        HM = self.hidden_size + self.memory_size
        ids = _integers("sampling.ids", sampling.ids)
        _validate.shape("sampling.ids", ids, (T, N), "(T, N)")
        _in_range("sampling.ids", ids, V)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not np.array_equal(table[ids], y):
            raise ArgumentError("y must be the embedding rows of sampling.ids (embedding[ids])")
        bias = sampling.head_bias
        head_weight = self._array("head_weight", sampling.head_weight, (V, HM), "(V, H + M)")
        return {
            "p": prob,
            "seed": seed,
            "ids": ids,
            "embedding": table,
            "head_weight": head_weight,
            "head_bias": None if bias is None else self._array("head_bias", bias, (V,), "(V,)"),
        }

    def backward(
        self, d_output: Any, d_weights: Any = None, d_hx: State | None = None
    ) -> tuple[Array, Array, State, Array]:
        """Backpropagation through time for the most recent training-mode forward.

        Args:
            d_output: ``(T, N, H + M)`` gradient of the output.
            d_weights: ``(T, N, S)`` gradient of the attention weights, or None.
            d_hx: gradient of ``hx_n`` (``dh_n`` or ``(dh_n, dc_n)``), or None.

        Returns:
            ``(dy (T, N, E), dmemory (N, S, M), dhx, dcontext0 (N, M))``; adds the
            parameter gradients to :attr:`grads`.
        """
        if self._cache is None:
            raise StateError("AttentionDecoder.backward() needs a forward() in training mode first")
        cache, T, N, S = self._cache
        H, M = self.hidden_size, self.memory_size
        d_output = _validate.float_array("d_output", d_output, self.dtype)
        _validate.shape("d_output", d_output, (T, N, H + M), "(T, N, H + M)")
        _validate.finite("d_output", d_output)
        if d_weights is not None:
            d_weights = self._array("d_weights", d_weights, (T, N, S), "(T, N, S)")
        dh_n, dc_n = self._state("d_hx", d_hx, ("dh_n", "dc_n"), (N, H), "(N, H)", True)
        grads = self._kernels.decoder_backward(
            self._mode, self.attention, self._kernel_weights(), cache, d_output,
            dh_n, dc_n, d_weights=d_weights,
        )  # fmt: skip
        for k, p in PARAMETERS.items():
            if p in self.grads:
                self.grads[p] += grads[k]
        dc0 = None if grads["c0"] is None else self._cast(grads["c0"])
        return (
            self._cast(grads["y"]),
            self._cast(grads["memory"]),
            self._pack(self._cast(grads["h0"]), dc0),
            self._cast(grads["context0"]),
        )
