"""Files of sentence pairs for sequence to sequence, their vocabularies and batches.

A pairs file holds one ``source<TAB>target`` pair per line, UTF-8. Every line must
be a pair: a line without a tab, with an empty side or with bytes that are not
UTF-8 is an error that names the file and the line number; nothing is dropped.

:class:`PairVocab` maps the symbols of one side (characters, or words split on
whitespace) to ids after four reserved ones: ``<pad>`` 0, ``<bos>`` 1, ``<eos>`` 2,
``<unk>`` 3 (the ids :class:`~rnncore.models.Seq2SeqConfig` expects by default).
:func:`pair_batches` pads pairs into ``Seq2Seq.loss`` arguments, bucketed by length.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError

__all__ = ["PairVocab", "pair_batches", "read_pairs", "write_pairs"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)
MAX_LINE_BYTES = 1 << 20  # a longer line is not a sentence pair


def read_pairs(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The ``(source, target)`` pairs of a pairs file, in file order.

    A final newline is optional; ``\\r\\n`` line ends are accepted. Raises
    :class:`~rnncore.errors.ArgumentError` naming ``path`` and the 1-based line
    number for a line without a tab, with an empty side, longer than 1 MiB, or
    with invalid UTF-8, and for a file without any pair.
    """
    pairs = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{os.fspath(path)}, line {number}"
            if len(raw) > MAX_LINE_BYTES:
                raise ArgumentError(f"{where}: longer than {MAX_LINE_BYTES} bytes")
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ArgumentError(f"{where}: not valid UTF-8 ({err.reason})") from None
            line = line.rstrip("\n").removesuffix("\r")
            if "\t" not in line:
                raise ArgumentError(f"{where}: no tab between source and target")
            source, target = line.split("\t", 1)
            if not source.strip() or not target.strip():
                side = "source" if not source.strip() else "target"
                raise ArgumentError(f"{where}: the {side} is empty")
            pairs.append((source, target))
    if not pairs:
        raise ArgumentError(f"{os.fspath(path)}: no pairs")
    return pairs


def write_pairs(path: str | os.PathLike, pairs: Iterable[tuple[str, str]]) -> None:
    """Write ``pairs`` as a pairs file (``source<TAB>target`` per line, UTF-8)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for source, target in pairs:
            if "\t" in source or "\n" in source or "\n" in target:
                raise ArgumentError(
                    f"a pair cannot hold a tab or newline in its source: {source!r}"
                )
            f.write(f"{source}\t{target}\n")


class PairVocab:
    """Symbols of one side of the pairs, after ``<pad> <bos> <eos> <unk>``.

    Args:
        symbols: the non-reserved symbols in id order (ids 4, 5, ...).
        tokens: ``"char"`` (each character a symbol) or ``"word"`` (split on
            whitespace, joined with one space).
    """

    def __init__(self, symbols: Sequence[str], tokens: str = "char") -> None:
        self.tokens = _validate.choice("tokens", tokens, ("char", "word"))
        if len(set(symbols)) != len(symbols) or any(s in SPECIALS or not s for s in symbols):
            raise ArgumentError("symbols must be distinct, non-empty and not reserved")
        self.symbols = list(SPECIALS) + list(symbols)
        self._ids = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def from_texts(cls, texts: Iterable[str], tokens: str = "char") -> PairVocab:
        """The vocabulary of every symbol in ``texts``, sorted."""
        found: set[str] = set()
        for text in texts:
            found.update(cls.split(text, tokens))
        return cls(sorted(found - set(SPECIALS)), tokens)

    @staticmethod
    def split(text: str, tokens: str) -> list[str]:
        return list(text) if tokens == "char" else text.split()

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> tuple[list[int], int]:
        """``(ids, unknown)``: the ids of ``text`` (``<unk>`` for symbols not in the
        vocabulary) and how many were unknown."""
        ids = [self._ids.get(s, UNK) for s in self.split(text, self.tokens)]
        return ids, ids.count(UNK)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; reserved ids are left out."""
        out = [self.symbols[i] for i in ids if i >= len(SPECIALS)]
        return ("" if self.tokens == "char" else " ").join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "pairs", "tokens": self.tokens, "symbols": self.symbols[len(SPECIALS) :]}

    @classmethod
    def from_dict(cls, d: Any) -> PairVocab:
        if not isinstance(d, dict) or d.get("kind") != "pairs":
            raise ArgumentError("not a pairs vocabulary")
        return cls(d.get("symbols", []), d.get("tokens", "char"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PairVocab) and other.to_dict() == self.to_dict()


def pair_batches(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]],
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Batches ``(src (N, S), src_lengths, tgt (N, T), tgt_lengths)`` for
    :meth:`~rnncore.models.Seq2Seq.loss`, padded with ``<pad>``; ``tgt`` rows are
    ``<bos> ids <eos>``.

    With ``rng``, the pairs are shuffled, cut into groups of 50 batches, sorted by
    source length inside each group (buckets: little padding) and the batches
    shuffled; without it, batches follow the given order.
    """
    batch_size = _validate.positive_int("batch_size", batch_size)
    if len(src) != len(tgt):
        raise ArgumentError(f"src has {len(src)} sequences, tgt {len(tgt)}")
    order = np.arange(len(src))
    if rng is not None:
        order = rng.permutation(len(src))
        group = 50 * batch_size
        for start in range(0, len(order), group):
            part = order[start : start + group]
            order[start : start + group] = part[
                np.argsort([len(src[i]) for i in part], kind="stable")
            ]
    starts = list(range(0, len(order), batch_size))
    if rng is not None:
        starts = [starts[i] for i in rng.permutation(len(starts))]
    for start in starts:
        rows = order[start : start + batch_size]
        s_lens = np.array([len(src[i]) for i in rows], np.int64)
        t_lens = np.array([len(tgt[i]) + 2 for i in rows], np.int64)
        s = np.full((len(rows), s_lens.max()), PAD, np.int64)
        t = np.full((len(rows), t_lens.max()), PAD, np.int64)
        for r, i in enumerate(rows):
            s[r, : s_lens[r]] = src[i]
            t[r, : t_lens[r]] = [BOS, *tgt[i], EOS]
        yield s, s_lens, t, t_lens
