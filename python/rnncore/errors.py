"""The exceptions rnncore raises.

Every error that comes from bad input is a subclass of :class:`RnnCoreError` and
also of the built-in class a Python user would expect (``ValueError``,
``TypeError`` or ``MemoryError``), so ``except ValueError`` keeps working. The
compiled kernels raise these same classes (they import them from here), so an
error looks the same whether the Python layer or the Rust binding caught it.
"""

from __future__ import annotations

__all__ = [
    "ArgumentError",
    "CheckpointError",
    "DTypeError",
    "DivergedError",
    "NonFiniteError",
    "OutOfMemoryError",
    "RnnCoreError",
    "ShapeError",
    "StateError",
]


class RnnCoreError(Exception):
    """Base class of every error raised by rnncore."""


class ShapeError(RnnCoreError, ValueError):
    """An array has the wrong number of dimensions, a wrong or empty shape, or
    shapes that do not agree with each other."""


class DTypeError(RnnCoreError, TypeError):
    """An array has a dtype the operation does not accept, or dtypes disagree."""


class NonFiniteError(RnnCoreError, ValueError):
    """An array holds NaN or infinity where finite values are required."""


class DivergedError(NonFiniteError):
    """Training skipped too many steps in a row with a non-finite loss, gradient
    or update: the learning rate is too large for this model (the message names
    it). The weights are those of the last good step."""


class ArgumentError(RnnCoreError, ValueError):
    """An argument has a value outside its allowed range (for instance a sequence
    length outside ``1..T`` or an unknown cell mode)."""


class CheckpointError(RnnCoreError, ValueError):
    """A checkpoint is missing, truncated, corrupted or does not match the model."""


class OutOfMemoryError(RnnCoreError, MemoryError):
    """A buffer the call needs does not fit in memory (or its size overflows):
    too many rows, symbols or steps for this machine. Nothing was changed."""


class StateError(RnnCoreError, RuntimeError):
    """An operation was called out of order (for instance ``backward`` before any
    forward call it could backpropagate through)."""
