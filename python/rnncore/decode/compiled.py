"""A language model's decoding step compiled: one Rust call per step, or per sample.

:class:`CompiledLM` is a snapshot of a :class:`~rnncore.models.CharLM`'s weights,
checked and packed once for the decoding kernels. It is decodable like the model
(``initial_state``, ``step``, ``forward``, ``vocab_size``) and adds
:meth:`CompiledLM.sample_loop`, which draws a whole batch of samples without
returning to Python. Its numbers are the model's in evaluation mode (no
dropout), to rounding: the same products summed in another order.

The decoders compile a model on entry (:func:`compiled`), so a model trained
between two calls is always decoded with its current weights. A model whose
parameters hold bitwise the values of its last compilation (compared with a kept
copy) reuses that compilation: repeated decoding calls pack once.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore._native import kernels
from rnncore.decode._model import nonnegative_int, take_rows
from rnncore.decode.ensemble import Ensemble
from rnncore.errors import ArgumentError, DTypeError
from rnncore.nn._base import Array, State

__all__ = ["WEIGHTS", "CompiledLM", "compiled", "step_rows"]


WEIGHTS = ("bfloat16", "int8")
"""The compressed forms of :class:`CompiledLM`'s weight matrices."""


BFLOAT16_OVERFLOW = np.array(0x7F7F8000, np.uint32).view(np.float32)[()]
"""The smallest float32 that rounds to infinity in bfloat16 (half-way between
its largest finite value, ``0x7f7f``, and infinity; the tie goes to the even
infinity)."""


def _bfloat16_range(name: str, w: Array) -> None:
    """Raise unless every weight of ``w`` has a finite bfloat16 (through float32,
    as the rounding goes)."""
    with np.errstate(over="ignore"):
        top = np.abs(w).astype(np.float32).max() if w.size else np.float32(0)
    if top >= BFLOAT16_OVERFLOW:
        raise ArgumentError(
            f"weights='bfloat16': {name} holds {top:.4g}, beyond bfloat16's range "
            f"(|w| < {BFLOAT16_OVERFLOW:.4g}); compile it with weights=None or 'int8'"
        )


class CompiledLM:
    """A ``CharLM``'s stack, readout and embedding packed for decoding.

    Args:
        model: a :class:`~rnncore.models.CharLM` (any cell, depth, dtype; one-hot
            or embedded input). Later changes to its weights are not seen: compile
            again.
        weights: how the weight matrices (every ``weight_ih``, ``weight_hh`` and
            the readout's) are kept. ``None`` (or the model's dtype name): as they
            are (also ``"full"``). ``"bfloat16"``: rounded to bfloat16 (nearest,
            ties to even; a float64 weight is rounded to float32 first), half the
            bytes of float32; a weight beyond bfloat16's range is refused.
            ``"int8"``: each row ``i`` as ``q[i] * s[i]`` with
            ``s[i] = max|W[i]| / 127`` and ``q`` rounded into ``[-127, 127]``, a
            quarter of the bytes. The products widen them (and multiply by the
            row's scale) in registers, so the decoder computes exactly what the
            full decoder of the rounded weights computes; biases, the embedding
            and layer 0's table of symbols keep the dtype. A batch-1 step streams
            every weight once, so fewer bytes are a faster step; what it costs in
            quality is measured in ``benches/bench_decode.py --weights``.

    Attributes:
        vocab_size: ``V``.
        dtype: the model's float dtype; states and log-probabilities have it.
        weights: ``"full"``, ``"bfloat16"`` or ``"int8"``.
        weight_bytes: bytes of the packed weight matrices (with any scales).

    A compiled model decodes; it does not train: ``loss``, ``backward``,
    ``parameters`` and :class:`~rnncore.train.Trainer` refuse it. Train the
    ``CharLM`` and compile again.

    Example::

        >>> fast = CompiledLM(model)
        >>> log_probs, state = fast.step(np.array([3, 7]), fast.initial_state(2))  # (2, V)
        >>> small = CompiledLM(model, weights="int8")   # a quarter of the bytes
    """

    decodes_only = True
    """Read by :class:`~rnncore.train.Trainer`, which refuses such a model."""

    def __init__(self, model: Any, weights: str | None = None) -> None:
        config = getattr(model, "config", None)
        if config is None or not hasattr(config, "cell") or not hasattr(model, "head"):
            raise ArgumentError(f"model must be a CharLM, got {type(model).__name__}")
        if config.cell not in ("lstm", "gru", "rnn_tanh", "rnn_relu"):
            raise ArgumentError(
                "model: CompiledLM runs the cells lstm, gru, rnn_tanh and rnn_relu; the "
                f"decoders run a {config.cell} model through its sequence layers instead"
            )
        if getattr(config, "proj_size", 0):
            raise ArgumentError(
                "model: CompiledLM has no LSTM with projections (proj_size > 0); the "
                "decoders run such a model through its sequence layers instead"
            )
        dtype_name = np.dtype(config.dtype).name
        if weights is not None and not isinstance(weights, str):
            raise DTypeError(f"weights must be a str or None, got {type(weights).__name__}")
        weights = _validate.choice("weights", weights, (None, "full", dtype_name, *WEIGHTS))
        params = dict(model.named_parameters())
        layers = []
        for k in range(config.num_layers):
            names = (f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}")
            layers.append(tuple(params.get(f"rnn.{n}") for n in names))
        if weights == "bfloat16":
            for name in [
                f"rnn.weight_{w}_l{k}" for k in range(config.num_layers) for w in ("ih", "hh")
            ]:
                _bfloat16_range(name, params[name])
            _bfloat16_range("head.weight", params["head.weight"])
        self._decoder = kernels().Decoder(
            config.cell,
            layers,
            params["head.weight"],
            params.get("head.bias"),
            params.get("embedding.weight"),
            weights=weights if weights in WEIGHTS else "full",  # None, "full", the dtype
        )
        self.weights: str = self._decoder.weights
        self.weight_bytes: int = self._decoder.weight_bytes
        self.vocab_size = int(config.vocab_size)
        self.dtype = np.dtype(config.dtype)
        self._lstm = config.cell == "lstm"
        self._shape = (config.num_layers, config.hidden_size)

    def __repr__(self) -> str:
        d = self._decoder
        return (
            f"CompiledLM(mode={d.mode!r}, vocab_size={d.vocab_size}, "
            f"hidden_size={d.hidden_size}, num_layers={d.num_layers}, dtype={d.dtype!r}, "
            f"weights={d.weights!r})"
        )

    # ----------------------------------------------------------------- training

    def _refuse(self, what: str) -> Any:
        raise ArgumentError(
            f"{what}: a CompiledLM (weights={self.weights!r}) decodes only; train the "
            "CharLM it was compiled from and compile it again"
        )

    def loss(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a compiled model does not train."""
        return self._refuse("loss")

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        """Refused: a compiled model does not train."""
        return self._refuse("backward")

    def parameters(self) -> Any:
        """Refused: a compiled model has no trainable parameters."""
        return self._refuse("parameters")

    def named_parameters(self) -> Any:
        """Refused: a compiled model has no trainable parameters."""
        return self._refuse("named_parameters")

    # ----------------------------------------------------------------- state

    def initial_state(self, N: int) -> State:
        """Zeros: ``(h, c)`` for an LSTM, else ``h``; each ``(num_layers, N, H)``."""
        N = _validate.positive_int("N", N)
        _validate.buffer_len("initial_state(N)", self._shape[0], N, self._shape[1])
        with _validate.allocating("initial_state(N)"):
            h = np.zeros((self._shape[0], N, self._shape[1]), self.dtype)
            return (h, np.zeros_like(h)) if self._lstm else h

    def _split(self, state: State, N: int) -> tuple[Array, Array | None]:
        """``state`` (None: zeros) as the kernels take it: ``h`` and ``c`` or None."""
        if state is None:
            state = self.initial_state(N)
        if self._lstm:
            if not isinstance(state, tuple) or len(state) != 2:
                raise ArgumentError("state must be a tuple (h, c) for an LSTM")
            return state[0], state[1]
        if isinstance(state, tuple):
            raise ArgumentError("state must be a single array h (only an LSTM has (h, c))")
        return state, None

    def _join(self, h: Array, c: Array | None) -> State:
        return (h, c) if self._lstm else h

    # ----------------------------------------------------------------- stepping

    def step(self, ids: Any, state: State = None, rows: Any = None) -> tuple[Array, State]:
        """``ids (N,)`` -> ``(log_probs (N, V), state)``; one call, GIL released.

        With ``rows (N,)``, row ``i`` continues row ``rows[i]`` of ``state``
        (which may hold any number of rows; repeats allowed): a beam's
        surviving hypotheses, gathered in the same call.
        """
        ids = np.asarray(ids)
        h, c = self._split(state, ids.shape[0] if ids.ndim == 1 else 1)
        rows = None if rows is None else np.asarray(rows)
        log_probs, h, c = self._decoder.step(ids, h, c, rows)
        return log_probs, self._join(h, c)

    def forward(self, ids: Any, state: State = None) -> tuple[Array, State]:
        """``ids (N, T)`` -> ``(log_probs (N, T, V), state)``: ``T`` steps in one call."""
        ids = np.asarray(ids)
        h, c = self._split(state, ids.shape[0] if ids.ndim == 2 else 1)
        log_probs, h, c = self._decoder.run(ids, h, c)
        return log_probs, self._join(h, c)

    def sample_loop(
        self,
        log_probs: Array,
        state: State,
        uniforms: Array,
        *,
        length: int,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        stop_id: int | None,
        top_p_slack: float,
    ) -> tuple[Array, Array]:
        """Draw up to ``length`` ids per row in one call.

        Args:
            log_probs: ``(N, V)`` float64, each row's distribution of its first id.
            state: the state of the ``N`` rows.
            uniforms: ``(M,)`` float64 in ``[0, 1)``; step ``t`` uses one per row
                still running, in row order (``M >= length * N``; empty when
                ``temperature == 0``).
            length, temperature, top_k, top_p, stop_id: as
                :func:`rnncore.decode.sample`.
            top_p_slack: :data:`rnncore.decode.sampling.TOP_P_SLACK`.

        Returns:
            ``(ids (N, length) int64, ends (N,) int64)``: row ``n`` drew
            ``ids[n, :ends[n]]``.
        """
        N = np.asarray(log_probs).shape[0] if np.ndim(log_probs) else 1
        length = nonnegative_int("length", length)
        _validate.buffer_len("length * N", length, N)  # the (N, length) ids
        top_k = None if top_k is None else _validate.positive_int("top_k", top_k)
        stop_id = None if stop_id is None else nonnegative_int("stop_id", stop_id)
        h, c = self._split(state, N)
        return self._decoder.sample(
            np.asarray(log_probs, dtype=np.float64),
            h,
            c,
            np.asarray(uniforms, dtype=np.float64),
            length,
            temperature,
            top_k,
            top_p,
            stop_id,
            top_p_slack=top_p_slack,
        )


def compiled(model: Any) -> Any:
    """``model`` with its decoding step compiled where it can be.

    A ``CharLM`` on the compiled kernels becomes a :class:`CompiledLM`; an
    :class:`~rnncore.decode.Ensemble` has its members compiled; anything else
    (a model on the NumPy reference, a custom model) is returned as it is.
    """
    if isinstance(model, Ensemble):
        return Ensemble([compiled(m) for m in model.models], model.mode, model.weights)
    if getattr(model, "decodes_compiled", False) is True:
        return _compiled_lm(model)
    return model


_KEPT: weakref.WeakKeyDictionary[Any, tuple[str, dict[str, Array], CompiledLM]]
_KEPT = weakref.WeakKeyDictionary()
"""Each model's last compilation, with a copy of the parameters it was made from."""


def _bits(a: Array) -> Array:
    """``a``'s elements as unsigned integers of their size: equal bits, equal values
    (``-0.0`` and ``0.0`` differ, unlike ``==``)."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def _compiled_lm(model: Any) -> CompiledLM:
    """:class:`CompiledLM` of ``model``: the last one, if every parameter still holds
    bitwise what it held then (no stale weights are possible), else a new one."""
    params = dict(model.named_parameters())
    config = repr(model.config)
    try:
        kept = _KEPT.get(model)
    except TypeError:  # not weakly referenceable: compile every time
        return CompiledLM(model)
    if kept is not None:
        kept_config, snapshot, fast = kept
        if (
            kept_config == config
            and snapshot.keys() == params.keys()
            and all(
                p.shape == snapshot[k].shape
                and p.dtype == snapshot[k].dtype
                and np.array_equal(_bits(p), _bits(snapshot[k]))
                for k, p in params.items()
            )
        ):
            return fast
    fast = CompiledLM(model)
    _KEPT[model] = (config, {k: np.array(p, copy=True) for k, p in params.items()}, fast)
    return fast


def step_rows(model: Any, ids: Array, state: State, rows: Array) -> tuple[Array, State]:
    """``model.step(ids (R,), rows rows (R,) of state)``: the rows gathered inside
    the compiled step when the model is compiled, else by ``take_rows``."""
    if isinstance(model, CompiledLM):
        return model.step(ids, state, rows)
    return model.step(ids, take_rows(state, rows))
