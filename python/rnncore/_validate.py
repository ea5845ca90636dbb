"""Argument checks shared by the layers and cells of :mod:`rnncore.nn`.

Each function checks one thing, names the argument in its message and raises one
of the classes of :mod:`rnncore.errors`. Arrays are converted with
``np.asarray``/``np.ascontiguousarray``, so a copy is made only when needed and
inputs are never modified.
"""

from __future__ import annotations

import contextlib
import numbers
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rnncore.errors import (
    ArgumentError,
    DTypeError,
    NonFiniteError,
    OutOfMemoryError,
    ShapeError,
)

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 1 (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ArgumentError(f"{name} must be a positive integer, got {value}")
    return int(value)


def non_negative_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` >= 0 (``bool`` is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def buffer_len(name: str, *dims: int, itemsize: int = 8) -> int:
    """The product of ``dims``, or :class:`OutOfMemoryError` naming ``name`` when
    a buffer of that many ``itemsize``-byte elements cannot exist on this machine."""
    n = 1
    for d in dims:
        n *= int(d)
    if n * itemsize > sys.maxsize:
        shown = " x ".join(str(int(d)) for d in dims)
        raise OutOfMemoryError(f"{name}: {shown} elements cannot be held in memory")
    return n


@contextlib.contextmanager
def allocating(name: str) -> Iterator[None]:
    """Turn a ``MemoryError`` raised inside into :class:`OutOfMemoryError` naming ``name``."""
    try:
        yield
    except OutOfMemoryError:
        raise
    except MemoryError as err:
        raise OutOfMemoryError(f"{name}: does not fit in memory ({err})") from None


def first_non_finite(arrays: Mapping[str, Any]) -> str | None:
    """The name of the first array of ``arrays`` holding NaN or infinity, or None."""
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            return name
    return None


def proj_size(value: Any, hidden_size: int, mode: str) -> int:
    """``proj_size`` of a recurrent layer as an ``int`` in ``0..hidden_size-1``: 0
    for none, else the features of the projected ``h`` of an LSTM (torch's rules)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ArgumentError(
            f"proj_size should be a positive integer or zero to disable projections, got {value!r}"
        )
    if value == 0:
        return 0
    if value >= hidden_size:
        raise ArgumentError(
            f"proj_size has to be smaller than hidden_size, got proj_size={value} "
            f"and hidden_size={hidden_size}"
        )
    if mode != "lstm":
        raise ArgumentError(
            f"proj_size is only supported for the plain LSTM, not for {mode} "
            "(cifg=True and peephole=True have no projection)"
        )
    return int(value)


def flag(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (only ``True``/``False``, also NumPy's)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def probability(name: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (a dropout probability)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ArgumentError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def unit_interval(name: str, value: Any) -> float:
    """``value`` as a ``float`` in ``[0, 1]`` (a sampling probability)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ArgumentError(f"{name} must be a number in [0, 1], got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ArgumentError(f"{name} must be in [0, 1], got {value}")
    return float(value)


def seed64(name: str, value: Any) -> int:
    """``value`` as an ``int`` in ``0..2**64-1`` (a seed of the compiled kernels)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ArgumentError(f"{name} must be an integer in 0..2**64-1, got {value!r}")
    if not 0 <= int(value) < 2**64:
        raise ArgumentError(f"{name} must lie in 0..2**64-1, got {value}")
    return int(value)


def choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ArgumentError(f"{name} must be one of {options}, got {value!r}")
    return value


def float_dtype(value: Any) -> np.dtype:
    """The parameter dtype of a layer: float32 or float64."""
    try:
        dtype = np.dtype(value)
    except TypeError as err:
        raise DTypeError(f"dtype must be np.float32 or np.float64, got {value!r}") from err
    if dtype not in FLOAT_DTYPES:
        raise DTypeError(f"dtype must be np.float32 or np.float64, got {dtype}")
    return dtype


def generator(seed: Any, rng: Any) -> np.random.Generator:
    """The random generator of a layer: ``rng`` itself or ``default_rng(seed)``."""
    if rng is not None:
        if seed is not None:
            raise ArgumentError("pass either seed or rng, not both")
        if not isinstance(rng, np.random.Generator):
            raise ArgumentError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return rng
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"seed must be None or a non-negative integer, got {seed!r}") from err


def float_array(name: str, value: Any, dtype: np.dtype) -> np.ndarray:
    """``value`` as a C-contiguous array of exactly ``dtype``.

    Like torch, nothing is cast implicitly: a float64 array (or a Python list,
    which ``np.asarray`` turns into float64) given to a float32 layer is an error
    whose message says how to convert it.
    """
    arr = np.asarray(value)
    if arr.dtype == dtype:
        return arr if arr.ndim == 0 else np.ascontiguousarray(arr)  # (it makes 0-D 1-D)
    fix = f"convert it with np.asarray({name}, dtype=np.{dtype})"
    if not isinstance(value, np.ndarray):
        raise DTypeError(
            f"{name} must be an array of dtype {dtype}; the {type(value).__name__} given "
            f"becomes dtype {arr.dtype} under np.asarray and inputs are never cast "
            f"implicitly: {fix}"
        )
    if arr.dtype in FLOAT_DTYPES:
        raise DTypeError(
            f"{name} has dtype {arr.dtype} but the layer's parameters are {dtype}: "
            f"{fix}, or build the layer with dtype=np.{arr.dtype}"
        )
    raise DTypeError(
        f"{name} must be a floating-point array of dtype {dtype}, got {arr.dtype}: {fix}"
    )


def ndim(name: str, arr: np.ndarray, allowed: Sequence[int], layouts: str) -> None:
    """Raise unless ``arr.ndim`` is in ``allowed``; ``layouts`` describes them."""
    if arr.ndim not in allowed:
        raise ShapeError(f"{name} must be {layouts}, got a {arr.ndim}-D array of shape {arr.shape}")


def shape(name: str, arr: np.ndarray, expected: tuple[int, ...], meaning: str) -> None:
    """Raise unless ``arr.shape == expected``; ``meaning`` spells it in symbols."""
    if arr.shape != tuple(expected):
        raise ShapeError(f"{name} must have shape {tuple(expected)} = {meaning}, got {arr.shape}")


def features(name: str, arr: np.ndarray, size: int) -> None:
    """Raise unless the last axis of ``arr`` has ``size`` (= input_size) entries."""
    if arr.shape[-1] != size:
        raise ShapeError(
            f"{name} must have input_size={size} features in its last dimension (D), "
            f"got shape {arr.shape}"
        )


def nonempty(name: str, arr: np.ndarray, axes: Sequence[tuple[int, str, str]]) -> None:
    """Raise if an axis is empty; ``axes`` lists ``(axis, word, symbol)``."""
    for axis, word, symbol in axes:
        if arr.shape[axis] == 0:
            raise ShapeError(
                f"{name} has an empty {word} dimension ({symbol}=0, shape {arr.shape})"
            )


def finite(name: str, arr: np.ndarray) -> None:
    """Raise if ``arr`` holds NaN or infinity, naming the first bad index."""
    if not np.isfinite(arr).all():
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise NonFiniteError(f"{name} contains NaN or infinity (first at index {first})")


def lengths(value: Any, N: int, T: int) -> np.ndarray:
    """Sequence lengths as a contiguous ``(N,)`` int64 array with values in ``1..T``."""
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise DTypeError(f"lengths must hold integers, got dtype {arr.dtype}")
    shape("lengths", arr, (N,), "(N,)")
    if arr.min() < 1 or arr.max() > T:
        raise ArgumentError(
            f"lengths must lie in 1..T = 1..{T}, got values from {arr.min()} to {arr.max()}"
        )
    return np.ascontiguousarray(arr, dtype=np.int64)
