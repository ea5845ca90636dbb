"""Per-character features of a text, to compare with what a model's cells do.

Every feature is an array ``(T,)`` over the characters of the text; entry ``t``
describes character ``text[t]`` (the state a model has after reading it):

- ``in_quote``: 1 inside double quotes (the quote marks included), else 0;
- ``bracket_depth``: open ``( [ {`` minus closed ones so far (a closing bracket
  still counts as inside);
- ``line_position``: the column, 0 at the first character of a line;
- ``in_comment``: 1 from a ``#`` to the end of its line;
- ``indent``: the number of leading spaces of the character's line;
- ``word_start``: 1 on a letter that follows a non-letter, non-digit;
- ``in_number``: 1 on a digit, or a ``.`` between two digits.

:func:`text_features` also runs user functions ``text -> (T,) numbers``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rnncore.errors import ArgumentError, ShapeError

__all__ = ["FEATURES", "text_features"]

FEATURES = (
    "in_quote",
    "bracket_depth",
    "line_position",
    "in_comment",
    "indent",
    "word_start",
    "in_number",
)

Feature = Callable[[str], Any]


def _in_quote(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    inside = False
    for t, ch in enumerate(text):
        if ch == '"':
            out[t] = 1.0  # both marks count as inside
            inside = not inside
        else:
            out[t] = float(inside)
    return out


def _bracket_depth(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    depth = 0
    for t, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        out[t] = depth
        if ch in ")]}":
            depth = max(depth - 1, 0)
    return out


def _line_position(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    col = 0
    for t, ch in enumerate(text):
        out[t] = col
        col = 0 if ch == "\n" else col + 1
    return out


def _in_comment(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    inside = False
    for t, ch in enumerate(text):
        inside = (inside or ch == "#") and ch != "\n"
        out[t] = float(inside)
    return out


def _indent(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    t = 0
    for line in text.splitlines(keepends=True):
        out[t : t + len(line)] = len(line) - len(line.lstrip(" "))
        t += len(line)
    return out


def _word_start(text: str) -> np.ndarray:
    prev = " " + text[:-1]
    return np.array([float(c.isalpha() and not p.isalnum()) for c, p in zip(text, prev)])


def _in_number(text: str) -> np.ndarray:
    digit = np.array([c.isdigit() for c in text], dtype=bool)
    dot = np.array([c == "." for c in text], dtype=bool)
    between = np.zeros_like(dot)
    between[1:-1] = dot[1:-1] & digit[:-2] & digit[2:]
    return (digit | between).astype(float)


_BUILTIN: dict[str, Feature] = {
    "in_quote": _in_quote,
    "bracket_depth": _bracket_depth,
    "line_position": _line_position,
    "in_comment": _in_comment,
    "indent": _indent,
    "word_start": _word_start,
    "in_number": _in_number,
}


def text_features(text: str, extra: Mapping[str, Feature] | None = None) -> dict[str, np.ndarray]:
    """``{name: (T,) float64}``: the built-in features of ``text``, then ``extra``'s.

    Args:
        text: the characters, ``T = len(text)``.
        extra: more features, ``name -> f(text)`` returning ``T`` finite numbers.

    Raises:
        ArgumentError: ``text`` is not a string, a name repeats a built-in one, or
            a function's values are not finite numbers.
        ShapeError: a function returns a number of values other than ``T``.
    """
    if not isinstance(text, str):
        raise ArgumentError(f"text must be a str, got {type(text).__name__}")
    out = {name: f(text) for name, f in _BUILTIN.items()}
    for name, f in (extra or {}).items():
        if name in out:
            raise ArgumentError(f"feature {name!r} is a built-in one; choose another name")
        if not callable(f):
            raise ArgumentError(f"feature {name!r} must be a function text -> (T,) numbers")
        try:
            values = np.asarray(f(text), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ArgumentError(f"feature {name!r} did not return numbers ({err})") from None
        if values.shape != (len(text),):
            raise ShapeError(
                f"feature {name!r} returned {values.size} values for a text of {len(text)}"
            )
        if not np.isfinite(values).all():
            raise ArgumentError(f"feature {name!r} returned values that are not finite")
        out[name] = values
    return out
