"""What every layer and cell of :mod:`rnncore.nn` shares.

:class:`Module` owns the parameters (NumPy arrays under PyTorch's names), their
gradients, the state dict, the training flag, the dtype and the random generator:
everything :class:`~rnncore.nn.Linear`, :class:`~rnncore.nn.Embedding` and
:class:`~rnncore.nn.Dropout` need. :class:`KernelModule` adds the kernel backend and is
the base of the recurrent layers and cells; it is the only place that calls the
kernels: one direction of one layer at a time, through
:meth:`KernelModule._kernel_forward` and :meth:`KernelModule._kernel_backward`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from rnncore import _validate
from rnncore import reference as _reference
from rnncore._grad import is_grad_enabled
from rnncore._native import kernels
from rnncore._threads import CallGuard
from rnncore.errors import ArgumentError, DTypeError, NonFiniteError, ShapeError
from rnncore.reference.cells import CELL_STATE
from rnncore.reference.cells import GATES as GATES  # the one table of the modes, re-exported
from rnncore.reference.cells import LAYER_NORM as LAYER_NORM  # re-exported for the layers
from rnncore.reference.cells import PEEPHOLE as PEEPHOLE  # re-exported for the layers

# The kernels' keyword arguments of the extra parameters, and the layers' names of them.
EXTRA = {"w_peep": "weight_peep", "w_hr": "weight_hr", "w_ln": "weight_ln", "b_ln": "bias_ln"}

Array = np.ndarray
State = Any  # an (h, c) tuple for LSTMs, a single array otherwise


def lstm_mode(cifg: bool, peephole: bool, layer_norm: bool = False) -> str:
    """The kernel mode of ``nn.LSTM``/``nn.LSTMCell`` with these (checked) flags.

    Raises:
        ArgumentError: more than one of ``cifg``, ``peephole`` and
            ``layer_norm``, variants there are no kernels for.
    """
    chosen = [
        k for k, v in (("cifg", cifg), ("peephole", peephole), ("layer_norm", layer_norm)) if v
    ]
    if len(chosen) > 1:
        raise ArgumentError(
            f"{' and '.join(f'{k}=True' for k in chosen)} cannot be combined: there is no "
            "LSTM with more than one of these variants (pick one)"
        )
    if layer_norm:
        return "lstm_ln"
    return "lstm_cifg" if cifg else "lstm_peephole" if peephole else "lstm"


class IncompatibleKeys(NamedTuple):
    """What :meth:`KernelModule.load_state_dict` returns, as in torch."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _to_numpy(value: Any) -> Array:
    """An array from a NumPy array, a torch tensor or anything ``np.asarray`` takes."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class Module(CallGuard):
    """Parameters, gradients, state dict, train/eval mode, dtype and random generator.

    Subclasses register their parameters with :meth:`_register` in PyTorch's order;
    :attr:`grads` then holds a zero array of the same shape under the same name.
    """

    def __init__(
        self,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        self._params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.dtype = _validate.float_dtype(dtype)
        self.rng = _validate.generator(seed, rng)
        self.training = True

    # ----------------------------------------------------------------- parameters

    def _register(self, name: str, value: Array) -> None:
        """Register parameter ``name`` with initial ``value`` (cast to the layer's dtype)."""
        self._params[name] = np.ascontiguousarray(value, dtype=self.dtype)
        self.grads[name] = np.zeros(value.shape, dtype=self.dtype)

    def __getattr__(self, name: str) -> Any:
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            return params[name]  # the live array: in-place updates change the layer
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_params")
        if params is not None and name in params:
            np.copyto(params[name], self._as_parameter(name, value))  # keeps the array alive
        else:
            object.__setattr__(self, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._params))

    def named_parameters(self) -> Iterator[tuple[str, Array]]:
        """``(name, array)`` pairs in PyTorch's order; the arrays are the live ones."""
        yield from self._params.items()

    def parameters(self) -> Iterator[Array]:
        """The parameter arrays (live) in PyTorch's order."""
        yield from self._params.values()

    def state_dict(self) -> dict[str, Array]:
        """A copy of every parameter, keyed and ordered as torch's ``state_dict()``."""
        return {name: p.copy() for name, p in self._params.items()}

    def _as_parameter(self, name: str, value: Any) -> Array:
        """``value`` checked against parameter ``name`` and cast to the layer's dtype."""
        arr = _to_numpy(value)
        if arr.dtype == np.bool_ or not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise DTypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        expected = self._params[name].shape
        if arr.shape != expected:
            raise ShapeError(f"{name} must have shape {expected}, got {arr.shape}")
        arr = arr.astype(self.dtype, copy=False)
        _validate.finite(name, arr)
        return arr

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy parameters from ``state`` into the layer (in place).

        Values may be NumPy arrays or torch tensors (anything with
        ``.detach().cpu().numpy()``); they are cast to the layer's dtype. Nothing is
        changed unless every value is valid.

        Raises:
            ArgumentError: ``strict`` and keys are missing or unexpected.
            ShapeError: a value has the wrong shape (the message names its key).
        """
        missing = [k for k in self._params if k not in state]
        unexpected = [k for k in state if k not in self._params]
        if strict and (missing or unexpected):
            raise ArgumentError(
                f"state dict does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        checked = {k: self._as_parameter(k, v) for k, v in state.items() if k in self._params}
        for name, value in checked.items():
            np.copyto(self._params[name], value)
        return IncompatibleKeys(missing, unexpected)

    def zero_grad(self) -> None:
        """Set every gradient in :attr:`grads` to zero (in place)."""
        for g in self.grads.values():
            g.fill(0)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ----------------------------------------------------------------- modes

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active, steps cached for backward); returns self."""
        self.training = _validate.flag("train(mode)", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode, the same as ``train(False)``; returns self."""
        return self.train(False)

    # ----------------------------------------------------------------- repr

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        if self.dtype != np.float32:
            extra += f", dtype={self.dtype}"
        return f"{type(self).__name__}({extra})"


class KernelModule(Module):
    """A :class:`Module` that runs the recurrent kernels: the base of RNNs and cells.

    Subclasses set ``self._mode`` (a key of :data:`GATES`) and register their
    parameters with :meth:`_add_parameter` in PyTorch's order.
    """

    _mode: str

    def __init__(
        self,
        hidden_size: int,
        *,
        dtype: Any = np.float32,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
        backend: ModuleType | None = None,
    ) -> None:
        if backend is not None and not all(
            callable(getattr(backend, f, None)) for f in ("forward", "backward")
        ):
            raise ArgumentError(
                "backend must be None (the compiled kernels) or a module with forward() and "
                f"backward() such as rnncore.reference, got {backend!r}"
            )
        self.hidden_size = _validate.positive_int("hidden_size", hidden_size)
        super().__init__(dtype=dtype, seed=seed, rng=rng)
        self._backend = backend

    def _add_parameter(self, name: str, shape: tuple[int, ...]) -> None:
        """Register a parameter drawn from U(-1/sqrt(H), 1/sqrt(H)), like torch."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        _validate.buffer_len(name, *shape)  # a named error for sizes no machine holds
        with _validate.allocating(name):
            self._register(name, self.rng.uniform(-bound, bound, size=shape))

    # ----------------------------------------------------------------- inputs

    def _state(
        self,
        name: str,
        value: Any,
        labels: tuple[str, str],
        expected: tuple[int, ...],
        meaning: str,
        allow_none: bool = False,
        cell: tuple[tuple[int, ...], str] | None = None,
    ) -> tuple[Array | None, Array | None]:
        """Check a state (``hx``) or its gradient; returns ``(h, c)``, ``c`` None unless LSTM.

        ``value`` is an array, or an ``(h, c)`` tuple for LSTMs. ``labels`` name the
        two parts in messages; ``allow_none`` lets either part of a tuple be None.
        ``cell`` is ``(expected, meaning)`` of ``c`` when it differs from ``h``'s
        (an LSTM with projections: ``h`` has ``P`` features, ``c`` has ``H``).
        """
        if value is None:
            return None, None
        lstm = self._mode in CELL_STATE
        if lstm:
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ArgumentError(
                    f"{name} must be a tuple ({labels[0]}, {labels[1]}) for "
                    f"{type(self).__name__}, got {type(value).__name__}"
                )
            shapes = [(expected, meaning), cell or (expected, meaning)]
            parts = [
                (f"{name}[{i}] ({label})", v, *shapes[i])
                for i, (label, v) in enumerate(zip(labels, value))
            ]
        else:
            if isinstance(value, tuple):
                raise ArgumentError(
                    f"{name} ({labels[0]}) must be a single array for {type(self).__name__}, "
                    f"got a {type(value).__name__}"
                )
            parts = [(f"{name} ({labels[0]})", value, expected, meaning)]
        arrays: list[Array | None] = []
        for part, v, shape, means in parts:
            if v is None and allow_none:
                arrays.append(None)
                continue
            if v is None:
                raise ArgumentError(f"{part} must be an array, got None")
            arrays.append(self._array(part, v, shape, means))
        return arrays[0], (arrays[1] if lstm else None)

    def _pack(self, h: Array, c: Array | None) -> State:
        """A state as the caller sees it: ``(h, c)`` for LSTMs, ``h`` otherwise."""
        return (h, c) if self._mode in CELL_STATE else h

    def _array(self, name: str, value: Any, expected: tuple[int, ...], meaning: str) -> Array:
        """``value`` as a finite array of the layer's dtype and shape ``expected``."""
        arr = _validate.float_array(name, value, self.dtype)
        _validate.shape(name, arr, expected, meaning)
        _validate.finite(name, arr)
        return arr

    # ----------------------------------------------------------------- kernels

    @property
    def _kernels(self) -> ModuleType:
        """The kernel module: the one given as ``backend``, else the compiled kernels."""
        if self._backend is not None:
            return self._backend
        return kernels()

    def __getstate__(self) -> dict[str, Any]:
        """For pickle and copy.deepcopy: the backend module is stored by name."""
        state = self.__dict__.copy()
        backend = state.pop("_backend")
        state["_backend_name"] = None if backend is None else backend.__name__
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        name = state.pop("_backend_name")
        state["_backend"] = None if name is None else importlib.import_module(name)
        self.__dict__.update(state)

    def _weights(self, sfx: str) -> tuple[Array, Array, Array | None, Array | None]:
        """``(w_ih (G*H, D), w_hh (G*H, H), b_ih (G*H,), b_hh (G*H,))`` of one direction."""
        p = self._params
        return (
            p[f"weight_ih{sfx}"],
            p[f"weight_hh{sfx}"],
            p.get(f"bias_ih{sfx}"),
            p.get(f"bias_hh{sfx}"),
        )

    def _add_constant(self, name: str, shape: tuple[int, ...], value: float) -> None:
        """Register a parameter filled with ``value`` (a normalisation's gain or shift)."""
        _validate.buffer_len(name, *shape)
        with _validate.allocating(name):
            self._register(name, np.full(shape, value))

    def _extra(self, sfx: str) -> dict[str, Array]:
        """The extra parameters of one direction as the kernels' keywords:
        ``{"w_peep": (3H,)}`` for a peephole LSTM, ``{"w_hr": (P, H)}`` for an LSTM
        with projections, ``{"w_ln": (B*H,), "b_ln": (B*H,)}`` for a
        layer-normalised cell, ``{}`` otherwise (so a backend is only given the
        keywords by the mode that takes them)."""
        return {
            k: self._params[name + sfx] for k, name in EXTRA.items() if name + sfx in self._params
        }

    def _cast(self, a: Any) -> Array:
        """A kernel result in the layer's dtype (the reference computes in float64)."""
        return np.asarray(a).astype(self.dtype, copy=False)

    def _kernel_forward(
        self,
        sfx: str,
        x: Array,
        h0: Array,
        c0: Array | None,
        lengths: Array | None,
        reverse: bool,
        noise: dict[str, Array] | None = None,
    ) -> tuple[Array, Array, Array | None, Any]:
        """One direction over a sequence: x (T, N, D), h0, c0 (N, H); ``noise``
        the dropout masks inside the recurrence (:mod:`rnncore.nn._noise`).

        Returns ``output (T, N, H), h_n (N, H), c_n (N, H) or None, cache``;
        ``cache`` is None under :func:`rnncore.no_grad` (the kernels' inference
        path, which keeps nothing for a backward).
        """
        kw = {**self._extra(sfx), **(noise or {})}
        keep = is_grad_enabled()
        if not keep and self._backend in (None, _reference):
            kw["keep"] = False  # another backend is called as before; its cache is dropped
        try:
            out, h_n, c_n, cache = self._kernels.forward(
                self._mode, x, h0, c0, *self._weights(sfx), lengths, reverse, **kw
            )
        except NonFiniteError as err:
            raise self._named_weight(err) from None
        c_n = None if c_n is None else self._cast(c_n)
        return self._cast(out), self._cast(h_n), c_n, (cache if keep else None)

    def _named_weight(self, err: NonFiniteError) -> NonFiniteError:
        """A kernel's NaN error, naming the parameter at its source when one of
        this layer's parameters is not finite (they are checked when set: a NaN
        there was written in place, or by a diverged step); else ``err``."""
        name = _validate.first_non_finite(self._params)
        if name is None:
            return err
        return NonFiniteError(
            f"{type(self).__name__}.{name} contains NaN or infinity (it was checked "
            f"when set: changed in place since, or by a diverged step; the kernel "
            f"saw: {err})"
        )

    def _kernel_backward(
        self,
        sfx: str,
        x: Array,
        lengths: Array | None,
        reverse: bool,
        cache: Any,
        d_output: Array,
        d_h_n: Array | None,
        d_c_n: Array | None,
        noise: dict[str, Array] | None = None,
    ) -> tuple[Array, Array, Array | None]:
        """Backward of :meth:`_kernel_forward` (given the same ``noise``); adds the
        weight gradients to :attr:`grads`.

        ``d_output`` is (T, N, H), ``d_h_n``/``d_c_n`` (N, H) or None. Returns
        ``dx (T, N, D), dh0 (N, H), dc0 (N, H) or None`` (with a projection
        ``d_output`` is (T, N, P), ``d_h_n`` and ``dh0`` (N, P)).
        """
        w = self._weights(sfx)
        extra = self._extra(sfx)
        kw = {**extra, **(noise or {})}
        try:
            dx, dh0, dc0, *d_params = self._kernels.backward(
                self._mode, x, *w, lengths, reverse, cache, d_output, d_h_n, d_c_n, **kw
            )
        except NonFiniteError as err:
            raise self._named_weight(err) from None
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", *(EXTRA[k] for k in extra))
        for name, d in zip(names, d_params):
            if d is not None:
                self._add_grad(name + sfx, d)
        dc0 = None if dc0 is None else self._cast(dc0)
        return self._cast(dx), self._cast(dh0), dc0

    def _add_grad(self, name: str, d: Array) -> None:
        """Add one kernel's gradient of parameter ``name`` to :attr:`grads`."""
        self.grads[name] += d
