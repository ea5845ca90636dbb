"""What the models of :mod:`rnncore.models` share.

:class:`Model` composes :mod:`rnncore.nn` layers under names (``embedding``,
``rnn``, ``head``, ...) and exposes them as one set of parameters with prefixed
names (``rnn.weight_ih_l0``), one ``grads`` dict whose arrays are the layers' own
(so layers accumulate into it directly), one state dict, one train/eval switch
and one random generator ``rng`` shared by every layer (dropout masks), whose
``bit_generator.state`` a checkpoint can save. :class:`Config` gives the model
configs ``to_dict``/``from_dict``. The helpers check token ids and build the
input encoding (one-hot or an :class:`~rnncore.nn.Embedding`) and the recurrent
stack.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, TypeVar

import numpy as np

from rnncore import _validate, nn
from rnncore._threads import CallGuard
from rnncore.errors import ArgumentError, DTypeError, ShapeError
from rnncore.nn._base import CELL_STATE, GATES, Array, Module
from rnncore.nn._noise import NoiseConfig
from rnncore.nn.functional import _in_range, _integers

CELLS = tuple(GATES)  # the cell names: the kernels' modes
# The one table of other spellings, accepted wherever a cell is named (configs,
# ``rnncore train --model``): char-rnn's ``rnn``, and hyphens for underscores.
# (``nn.RNN(nonlinearity="tanh")`` is torch's spelling of the layer ``rnn_tanh``.)
CELL_ALIASES = {"rnn": "rnn_tanh", **{c.replace("_", "-"): c for c in CELLS if "_" in c}}
# cells the compiled decoder does not run
UNCOMPILED = (
    "lstm_cifg", "lstm_peephole", "lstm_ln", "gru_reset_before", "gru_ln", "mut1", "mut2", "mut3",
)  # fmt: skip
MUT_LAYERS = {"mut1": nn.MUT1, "mut2": nn.MUT2, "mut3": nn.MUT3}  # Jozefowicz et al. 2015
DTYPES = ("float32", "float64")

C = TypeVar("C", bound="Config")


class Config:
    """Mixin of the model configs (dataclasses): ``to_dict`` and ``from_dict``.

    ``dataclasses.asdict(config)`` (or :meth:`to_dict`) is JSON-serialisable and
    ``type(config)(**d)`` or :meth:`from_dict` rebuilds the config.
    """

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict of JSON types."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: Mapping[str, Any]) -> C:
        """The config with the fields of ``d``; unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ArgumentError(f"{cls.__name__}.from_dict needs a dict, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ArgumentError(f"unknown {cls.__name__} fields {unknown}; known: {sorted(fields)}")
        try:
            return cls(**d)
        except TypeError as err:  # a required field is missing
            raise ArgumentError(f"{cls.__name__}: {err}") from err


def cell_name(name: Any) -> str:
    """The cell name ``name`` stands for: one of :data:`CELLS`, or an alias of one
    (:data:`CELL_ALIASES`)."""
    if isinstance(name, str) and name in CELL_ALIASES:
        return CELL_ALIASES[name]
    return _validate.choice("cell", name, [*CELLS, *CELL_ALIASES])


def check_common(cfg: Any) -> None:
    """Checks of the fields every model config has (raises ArgumentError/DTypeError)."""
    features = getattr(cfg, "input_size", None)
    if features is not None:  # float features instead of token ids
        _validate.positive_int("input_size", features)
        if cfg.vocab_size != 0:
            raise ArgumentError(
                f"vocab_size must be 0 with input_size={features} (features, not token ids), "
                f"got {cfg.vocab_size!r}"
            )
    else:
        _validate.positive_int("vocab_size", cfg.vocab_size)
    cfg.cell = cell_name(cfg.cell)
    _validate.positive_int("hidden_size", cfg.hidden_size)
    _validate.positive_int("num_layers", cfg.num_layers)
    _validate.probability("dropout", cfg.dropout)
    if cfg.embedding_dim is not None:
        _validate.positive_int("embedding_dim", cfg.embedding_dim)
    if cfg.dtype not in DTYPES:
        raise DTypeError(f"dtype must be 'float32' or 'float64', got {cfg.dtype!r}")
    cfg_noise(cfg)  # the rates inside the recurrence, of the configs that have them
    if cfg.seed is not None and (
        isinstance(cfg.seed, bool) or not isinstance(cfg.seed, numbers.Integral) or cfg.seed < 0
    ):
        raise ArgumentError(f"seed must be None or an integer >= 0, got {cfg.seed!r}")


NOISE_FIELDS = ("input_dropout", "recurrent_dropout", "zoneout", "zoneout_cell")


def cfg_noise(cfg: Any) -> dict[str, float]:
    """The non-zero rates of dropout inside the recurrence that ``cfg`` sets (the
    fields :data:`NOISE_FIELDS`, absent from some configs), checked for its cell."""
    rates = {k: getattr(cfg, k) for k in NOISE_FIELDS if getattr(cfg, k, 0.0) != 0}
    if rates:
        NoiseConfig.checked(cfg.cell, **rates)
    return rates


def make_rnn(
    cell: str,
    input_size: int,
    cfg: Any,
    rng: np.random.Generator,
    backend: ModuleType | None,
    bidirectional: bool = False,
) -> nn.RNN | nn.LSTM | nn.GRU | nn.MUT1 | nn.MUT2 | nn.MUT3:
    """The time-major recurrent stack ``cfg`` describes, drawing from ``rng``.

    Raises:
        ArgumentError: ``cell`` is mut1 or mut2 (which add their input itself to a
            gate) and ``input_size`` is not ``cfg.hidden_size``, or the stack is
            bidirectional with more than one layer.
    """
    common: dict[str, Any] = {
        "num_layers": cfg.num_layers,
        "dropout": cfg.dropout if cfg.num_layers > 1 else 0.0,
        "bidirectional": bidirectional,
        "dtype": np.dtype(cfg.dtype),
        "rng": rng,
        "backend": backend,
        **cfg_noise(cfg),
    }
    if cell in CELL_STATE:
        flags = {
            "cifg": cell == "lstm_cifg",
            "peephole": cell == "lstm_peephole",
            "layer_norm": cell == "lstm_ln",
        }
        proj_size = getattr(cfg, "proj_size", 0)  # only some configs have one
        return nn.LSTM(input_size, cfg.hidden_size, proj_size=proj_size, **flags, **common)
    if cell in MUT_LAYERS:
        if cell in ("mut1", "mut2") and input_size != cfg.hidden_size:
            raise ArgumentError(
                f"cell={cell!r} adds its input itself to a gate, so the recurrent layer's "
                f"input size ({input_size}: the embedding size, or the vocabulary or "
                f"feature count without one) must equal hidden_size ({cfg.hidden_size}); "
                f"set embedding_dim (--embedding-size) to hidden_size"
            )
        return MUT_LAYERS[cell](input_size, cfg.hidden_size, **common)
    if cell in ("gru", "gru_reset_before", "gru_ln"):
        flags = {"reset_after": cell != "gru_reset_before", "layer_norm": cell == "gru_ln"}
        return nn.GRU(input_size, cfg.hidden_size, **flags, **common)
    return nn.RNN(input_size, cfg.hidden_size, nonlinearity=cell[4:], **common)


def check_ids(name: str, value: Any, V: int, ndim: int, layout: str) -> Array:
    """Token ids: an integer array with ``ndim`` axes, none empty, values in ``0..V-1``."""
    ids = _integers(name, value)
    if ids.ndim != ndim:
        raise ShapeError(f"{name} must be {layout}, got shape {ids.shape}")
    if ids.size == 0:
        raise ShapeError(f"{name} must not be empty, got shape {ids.shape}")
    _in_range(name, ids, V)
    return ids


def check_same_shape(name: str, value: Any, shape: tuple[int, ...], layout: str) -> Array:
    """An integer array of exactly ``shape`` (targets, tags): values are checked later."""
    arr = _integers(name, value)
    _validate.shape(name, arr, shape, layout)
    return arr


def check_features(name: str, value: Any, dtype: np.dtype, D: int, steps: str = "T") -> Array:
    """Float feature sequences ``(N, T, D)`` of exactly ``dtype``, none empty, finite
    (what a model with ``input_size = D`` reads instead of token ids); ``steps``
    names the time axis in messages."""
    arr = _validate.float_array(name, value, dtype)
    if arr.ndim != 3 or arr.shape[2] != D or 0 in arr.shape:
        raise ShapeError(
            f"{name} must be (N, {steps}, {D}) = (batch, steps, input_size) features, got "
            f"shape {arr.shape}"
        )
    _validate.finite(name, arr)
    return arr


def collect_symbols(prev: Array, done: Array, outputs: list[list[int]], eos_id: int) -> bool:
    """One greedy step's symbols ``prev (N,)`` into ``outputs``: a row that emits
    ``eos_id`` is ``done`` (in place) and takes no more; returns whether all are."""
    for b in np.flatnonzero(~done):
        if prev[b] == eos_id:
            done[b] = True
        else:
            outputs[b].append(int(prev[b]))
    return bool(done.all())


def check_lengths(value: Any, N: int, T: int) -> Array | None:
    """``(N,)`` lengths in ``1..T`` as int64, or None when ``value`` is None."""
    return None if value is None else _validate.lengths(value, N, T)


class Model(CallGuard):
    """Named layers seen as one: parameters, grads, state dict, mode and ``rng``."""

    def __init__(self, seed: int | None) -> None:
        self._layers: dict[str, Module] = {}
        self.grads: dict[str, Array] = {}
        self._rng = np.random.default_rng(seed)
        self.training = True

    def _add(self, name: str, layer: Module) -> Any:
        """Register ``layer`` under ``name``; its parameters become ``name.param``."""
        self._layers[name] = layer
        for pname, g in layer.grads.items():
            self.grads[f"{name}.{pname}"] = g  # the layer's own array: it accumulates here
        return layer

    @property
    def rng(self) -> np.random.Generator:
        """The generator of every random draw (dropout masks); shared by all layers."""
        return self._rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self._rng = _validate.generator(None, value)
        for layer in self._layers.values():
            layer.rng = self._rng

    # ----------------------------------------------------------------- parameters

    def named_parameters(self) -> Iterator[tuple[str, Array]]:
        """``("layer.param", array)`` pairs; the arrays are the live ones."""
        for name, layer in self._layers.items():
            for pname, p in layer.named_parameters():
                yield f"{name}.{pname}", p

    def parameters(self) -> Iterator[Array]:
        """The parameter arrays (live), in the order of :meth:`named_parameters`."""
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self) -> int:
        """The number of scalar parameters."""
        return sum(p.size for p in self.parameters())

    def state_dict(self) -> dict[str, Array]:
        """A copy of every parameter under its prefixed name."""
        return {name: p.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy every parameter from ``state`` (the keys of :meth:`state_dict`), in place.

        Values are cast to the model's dtype. Nothing changes unless all are valid.

        Raises:
            ArgumentError: keys are missing or unexpected.
            ShapeError, DTypeError, NonFiniteError: a value is not a valid parameter.
        """
        names = dict(self.named_parameters())
        missing = [k for k in names if k not in state]
        unexpected = [k for k in state if k not in names]
        if missing or unexpected:
            raise ArgumentError(
                f"state dict does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        backup = self.state_dict()
        try:
            for lname, layer in self._layers.items():
                prefix = lname + "."
                part = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                if part:
                    layer.load_state_dict(part)
        except Exception:
            for name, p in self.named_parameters():
                np.copyto(p, backup[name])
            raise

    def zero_grad(self) -> None:
        """Set every gradient to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def _poison_grads(self) -> None:
        """Make every gradient NaN: the backward of a non-finite loss."""
        for g in self.grads.values():
            g.fill(np.nan)

    # ----------------------------------------------------------------- modes

    def train(self, mode: bool = True) -> Model:
        """Training mode (dropout active); returns self."""
        self.training = _validate.flag("train(mode)", mode)
        for layer in self._layers.values():
            layer.train(self.training)
        return self

    def eval(self) -> Model:
        """Evaluation mode (no dropout), the same as ``train(False)``; returns self."""
        return self.train(False)

    def __repr__(self) -> str:
        lines = [f"  ({name}): {layer!r}" for name, layer in self._layers.items()]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

    # ----------------------------------------------------------------- input encoding

    def _encode(self, ids: Array, V: int, dtype: np.dtype) -> Array:
        """``ids (T, N)`` in range -> ``x (T, N, D)``: the embedding, or one-hot (D = V)."""
        if "embedding" in self._layers:
            return self._layers["embedding"]._forward(ids)  # type: ignore[attr-defined]
        x = np.zeros((*ids.shape, V), dtype=dtype)  # (T, N, V)
        np.put_along_axis(x, ids[..., None], 1, axis=-1)
        return x

    def _encode_backward(self, dx: Array) -> None:
        """Backward of :meth:`_encode`: ``dx (T, N, D)`` into the embedding, if any."""
        if "embedding" in self._layers:
            self._layers["embedding"]._backward(dx)  # type: ignore[attr-defined]
