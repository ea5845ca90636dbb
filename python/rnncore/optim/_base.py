"""What every optimizer of :mod:`rnncore.optim` shares.

An :class:`Optimizer` holds the parameters it updates (a dict name -> live NumPy
array, e.g. ``dict(model.named_parameters())``), the learning rate, a step count
and its per-parameter state arrays (``buffers``, allocated at construction). The
whole state is ``state_dict() -> (tensors, meta)``: arrays keyed
``"{buffer}.{parameter}"`` (for safetensors) and a JSON-serialisable dict of the
step count and hyperparameters, from which :meth:`Optimizer.load_state_dict`
restores the optimizer bit for bit.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, CheckpointError, DTypeError, ShapeError

Array = np.ndarray


def non_negative(name: str, value: Any) -> float:
    """``value`` as a finite ``float >= 0`` (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a non-negative number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ArgumentError(f"{name} must be a finite number >= 0, got {value}")
    return value


def fraction(name: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (a decay rate such as a beta or momentum)."""
    value = non_negative(name, value)
    if value >= 1:
        raise ArgumentError(f"{name} must be in [0, 1), got {value}")
    return value


def lerp_(a: Array, b: Array, w: float) -> None:
    """``a += w * (b - a)`` in place, with torch's formula for ``lerp_`` (exact at w = 1)."""
    if abs(w) < 0.5:
        a += w * (b - a)
    else:
        np.copyto(a, b - (b - a) * (1 - w))


class Optimizer:
    """Base class: parameters, ``lr``, step count, buffers, state dict and grads checks.

    A subclass passes its hyperparameters to ``__init__`` as keywords, checks them
    in :meth:`_check_hyperparameters` (they become attributes and go into the
    state dict's ``meta``), names its per-parameter buffers in :meth:`_buffer_names`
    and implements :meth:`_update`.
    """

    def __init__(self, params: Mapping[str, Any], lr: float, **hyperparameters: Any) -> None:
        if not isinstance(params, Mapping):
            raise ArgumentError(
                "params must be a dict name -> array such as dict(model.named_parameters()), "
                f"got {type(params).__name__}"
            )
        if not params:
            raise ArgumentError("params is empty: there is nothing to optimize")
        for name, p in params.items():
            if not isinstance(p, np.ndarray):
                raise ArgumentError(
                    f"params[{name!r}] must be a NumPy array (updated in place), "
                    f"got {type(p).__name__}"
                )
            if p.dtype not in _validate.FLOAT_DTYPES:
                raise DTypeError(f"params[{name!r}] must be float32 or float64, got {p.dtype}")
            if not p.flags.writeable:
                raise ArgumentError(f"params[{name!r}] is read-only; it is updated in place")
        self.params: dict[str, Array] = dict(params)
        self.lr = lr
        self.steps = 0  # number of updates applied so far
        self.state: dict[str, dict[str, Array]] = {}  # buffer -> parameter name -> array
        self._configure(self._check_hyperparameters(**hyperparameters))

    def _check_hyperparameters(self, **hyperparameters: Any) -> dict[str, Any]:
        """The hyperparameters checked and normalised (JSON types; tuples allowed)."""
        raise NotImplementedError

    def _buffer_names(self) -> tuple[str, ...]:
        """The per-parameter state arrays the current hyperparameters need."""
        return ()

    def _configure(self, hyperparameters: dict[str, Any]) -> None:
        """Set checked hyperparameters as attributes and allocate missing buffers (zeros)."""
        self._hyper_names = tuple(hyperparameters)
        for key, value in hyperparameters.items():
            setattr(self, key, value)
        self.state = {
            buf: self.state.get(buf) or {n: np.zeros_like(p) for n, p in self.params.items()}
            for buf in self._buffer_names()
        }

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Everything but ``lr`` that defines the update, by name."""
        return {key: getattr(self, key) for key in self._hyper_names}

    @property
    def lr(self) -> float:
        """The learning rate of the next step; may be set at any time (schedules do)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = non_negative("lr", value)

    def __repr__(self) -> str:
        hp = "".join(f", {k}={v!r}" for k, v in self.hyperparameters.items())
        return f"{type(self).__name__}({len(self.params)} arrays, lr={self.lr}{hp})"

    # ----------------------------------------------------------------- step

    def step(self, grads: Mapping[str, Any]) -> None:
        """Update every parameter in place from ``grads`` (name -> array of its shape).

        ``grads`` may hold more names than ``params`` (those are ignored, e.g. frozen
        parameters), never fewer. Gradients must be finite: screen them with
        :class:`~rnncore.optim.NonFiniteGuard` to skip bad steps instead of raising.
        """
        checked = self._check_grads(grads)
        self.steps += 1
        for name, p in self.params.items():
            self._update(name, p, checked[name])

    def _update(self, name: str, p: Array, g: Array) -> None:
        """Apply one step to parameter ``name`` (``p`` in place) with gradient ``g``."""
        raise NotImplementedError

    def _check_grads(self, grads: Mapping[str, Any]) -> dict[str, Array]:
        if not isinstance(grads, Mapping):
            raise ArgumentError(f"grads must be a dict name -> array, got {type(grads).__name__}")
        missing = [name for name in self.params if name not in grads]
        if missing:
            raise ArgumentError(f"grads has no entry for parameters {missing}")
        checked = {}
        for name, p in self.params.items():
            g = np.asarray(grads[name])
            if g.dtype != p.dtype:
                raise DTypeError(f"grads[{name!r}] has dtype {g.dtype}, its parameter {p.dtype}")
            if g.shape != p.shape:
                raise ShapeError(f"grads[{name!r}] has shape {g.shape}, its parameter {p.shape}")
            _validate.finite(f"grads[{name!r}]", g)
            checked[name] = g
        return checked

    # ----------------------------------------------------------------- state dict

    def state_dict(self) -> tuple[dict[str, Array], dict[str, Any]]:
        """``(tensors, meta)``: copies of the buffers, and the step count and hyperparameters.

        ``tensors`` is keyed ``"{buffer}.{parameter}"``; ``meta`` holds only JSON
        types: ``{"type", "step", "lr", <hyperparameters>}`` (tuples become lists).
        """
        tensors = {
            f"{buf}.{name}": a.copy()
            for buf, arrays in self.state.items()
            for name, a in arrays.items()
        }
        meta: dict[str, Any] = {"type": type(self).__name__, "step": self.steps, "lr": self.lr}
        for key, value in self.hyperparameters.items():
            meta[key] = list(value) if isinstance(value, tuple) else value
        return tensors, meta

    def load_state_dict(self, tensors: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the same parameter names and shapes).

        Hyperparameters and ``lr`` come from ``meta``, as torch restores them from its
        param groups. Nothing changes unless everything matches.

        Raises:
            CheckpointError: another optimizer type, missing or unexpected keys, an
                invalid hyperparameter, or an array of the wrong shape or dtype.
        """
        if meta.get("type") != type(self).__name__:
            raise CheckpointError(
                f"optimizer state is for {meta.get('type')!r}, not {type(self).__name__!r}"
            )
        wanted = [k for k in ("step", "lr", *self._hyper_names) if k not in meta]
        if wanted:
            raise CheckpointError(f"optimizer meta lacks {wanted}")
        step = meta["step"]
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise CheckpointError(f"optimizer meta step must be an integer >= 0, got {step!r}")
        try:
            hyper = self._check_hyperparameters(**{k: meta[k] for k in self._hyper_names})
            lr = non_negative("lr", meta["lr"])
        except ArgumentError as err:
            raise CheckpointError(f"optimizer meta is invalid: {err}") from err
        old_hyper, old_state = self.hyperparameters, self.state
        self._configure(hyper)  # the buffers these hyperparameters need
        try:
            arrays = self._check_tensors(tensors)
        except CheckpointError:
            self.state = old_state
            self._configure(old_hyper)
            raise
        for buf, arrays_of_buf in arrays.items():
            for name, a in arrays_of_buf.items():
                np.copyto(self.state[buf][name], a)
        self.lr = lr
        self.steps = int(step)

    def _check_tensors(self, tensors: Mapping[str, Any]) -> dict[str, dict[str, Array]]:
        """``tensors`` as buffer -> name -> array, checked against the parameters."""
        expected = {f"{buf}.{name}": (buf, name) for buf in self.state for name in self.params}
        missing = [k for k in expected if k not in tensors]
        unexpected = [k for k in tensors if k not in expected]
        if missing or unexpected:
            raise CheckpointError(
                f"optimizer state does not match the parameters: missing {missing}, "
                f"unexpected {unexpected}"
            )
        arrays: dict[str, dict[str, Array]] = {buf: {} for buf in self.state}
        for key, (buf, name) in expected.items():
            a = np.asarray(tensors[key])
            p = self.params[name]
            if a.shape != p.shape or a.dtype != p.dtype:
                raise CheckpointError(
                    f"optimizer state {key!r} is {a.dtype} {a.shape}, expected {p.dtype} {p.shape}"
                )
            arrays[buf][name] = a
        return arrays
