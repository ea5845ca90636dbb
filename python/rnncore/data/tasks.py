"""Built-in sequence-to-sequence tasks that need no download, generated from a seed.

- :func:`date_pairs`: human-written dates in many formats ("3 May 1998",
  "05/03/98", "Sunday, May 3rd 1998", ...) -> ISO ``1998-05-03``.
- :func:`reversal_pairs`: a string of letters -> the same string reversed; at 30-50
  symbols a decoder without attention has to hold the whole input in its state.

The same ``seed`` always gives the same pairs (NumPy's generator and the
standard library's calendar only).
"""

from __future__ import annotations

import datetime

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError

__all__ = ["DATE_FORMATS", "date_pairs", "reversal_pairs"]

MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]  # fmt: skip
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FIRST = datetime.date(1950, 1, 1)  # two-digit years 50..99 -> 19xx, 00..49 -> 20xx
DAYS = (datetime.date(2049, 12, 31) - FIRST).days + 1


def _ordinal(d: int) -> str:
    suffix = "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")
    return f"{d}{suffix}"


DATE_FORMATS = {  # name -> date -> text; numeric forms are month first
    "d Month yyyy": lambda x: f"{x.day} {MONTHS[x.month - 1]} {x.year}",
    "mm/dd/yy": lambda x: f"{x.month:02d}/{x.day:02d}/{x.year % 100:02d}",
    "Weekday, Month dth yyyy": lambda x: (
        f"{WEEKDAYS[x.weekday()]}, {MONTHS[x.month - 1]} {_ordinal(x.day)} {x.year}"
    ),
    "Mon d, yyyy": lambda x: f"{MONTHS[x.month - 1][:3]} {x.day}, {x.year}",
    "month d yyyy": lambda x: f"{MONTHS[x.month - 1].lower()} {x.day} {x.year}",
    "dd-Mon-yyyy": lambda x: f"{x.day:02d}-{MONTHS[x.month - 1][:3]}-{x.year}",
    "m/d/yyyy": lambda x: f"{x.month}/{x.day}/{x.year}",
    "dth of Month, yyyy": lambda x: f"{_ordinal(x.day)} of {MONTHS[x.month - 1]}, {x.year}",
    "Wkd d Mon yy": lambda x: (
        f"{WEEKDAYS[x.weekday()][:3]} {x.day} {MONTHS[x.month - 1][:3]} {x.year % 100:02d}"
    ),
    "MONTH D, YYYY": lambda x: f"{MONTHS[x.month - 1].upper()} {x.day}, {x.year}",
}


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` pairs ``(human-written date, ISO date)``, dates uniform in 1950-2049, each
    written in one of :data:`DATE_FORMATS` chosen uniformly."""
    n = _validate.positive_int("n", n)
    rng = np.random.default_rng(seed)
    days = rng.integers(0, DAYS, n)
    styles = rng.integers(0, len(DATE_FORMATS), n)
    formats = list(DATE_FORMATS.values())
    pairs = []
    for day, style in zip(days, styles):
        date = FIRST + datetime.timedelta(days=int(day))
        pairs.append((formats[style](date), date.isoformat()))
    return pairs


def reversal_pairs(
    n: int, seed: int = 0, min_length: int = 30, max_length: int = 50, symbols: int = 20
) -> list[tuple[str, str]]:
    """``n`` pairs ``(s, reversed s)`` of strings of the first ``symbols`` lowercase
    letters, lengths uniform in ``min_length..max_length``."""
    n = _validate.positive_int("n", n)
    min_length = _validate.positive_int("min_length", min_length)
    max_length = _validate.positive_int("max_length", max_length)
    symbols = _validate.positive_int("symbols", symbols)
    if min_length > max_length or symbols > 26:
        raise ArgumentError("need min_length <= max_length and symbols <= 26")
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"[:symbols]))
    pairs = []
    for length in rng.integers(min_length, max_length + 1, n):
        s = "".join(letters[rng.integers(0, symbols, length)])
        pairs.append((s, s[::-1]))
    return pairs
