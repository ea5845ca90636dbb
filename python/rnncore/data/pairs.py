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
from rnncore.data.padding import bucket_order
from rnncore.data.vocab import _symbols
from rnncore.errors import ArgumentError

__all__ = [
    "PairVocab",
    "PairVocabs",
    "collate_pairs",
    "pad_pairs",
    "pair_batches",
    "read_pairs",
    "write_pairs",
]

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
        symbols = d.get("symbols", [])
        if symbols:
            symbols = _symbols("symbols", symbols)
        return cls(symbols, d.get("tokens", "char"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PairVocab) and other.to_dict() == self.to_dict()


class PairVocabs:
    """The vocabularies of the two sides of a pairs file (the same object twice
    when they are shared), as one value a checkpoint stores.

    Attributes:
        source: the :class:`PairVocab` of the sources (``Seq2SeqConfig.vocab_size``).
        target: the :class:`PairVocab` of the targets (``tgt_vocab_size``).
    """

    def __init__(self, source: PairVocab, target: PairVocab) -> None:
        for name, v in (("source", source), ("target", target)):
            if not isinstance(v, PairVocab):
                raise ArgumentError(f"{name} must be a PairVocab, got {type(v).__name__}")
        self.source, self.target = source, target

    @classmethod
    def from_pairs(
        cls, pairs: Sequence[tuple[str, str]], tokens: str = "char", shared: bool = False
    ) -> PairVocabs:
        """The vocabularies of ``pairs``: one per side, or one for both (``shared``)."""
        if shared:
            both = PairVocab.from_texts([t for p in pairs for t in p], tokens)
            return cls(both, both)
        source = PairVocab.from_texts([p[0] for p in pairs], tokens)
        return cls(source, PairVocab.from_texts([p[1] for p in pairs], tokens))

    @property
    def shared(self) -> bool:
        return self.source == self.target

    def encode(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[list[tuple[list[int], list[int]]], int]:
        """``(encoded pairs, unknown)``: the ids of every pair and how many symbols
        of the sources and targets were ``<unk>``."""
        encoded, unknown = [], 0
        for source, target in pairs:
            s, us = self.source.encode(source)
            t, ut = self.target.encode(target)
            encoded.append((s, t))
            unknown += us + ut
        return encoded, unknown

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "pair_sides",
            "source": self.source.to_dict(),
            "target": self.target.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> PairVocabs:
        if not isinstance(d, dict) or d.get("kind") != "pair_sides":
            raise ArgumentError("not the vocabularies of a pairs file")
        return cls(PairVocab.from_dict(d.get("source")), PairVocab.from_dict(d.get("target")))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PairVocabs) and other.to_dict() == self.to_dict()

    def __repr__(self) -> str:
        if self.shared:
            return f"shared vocabulary {len(self.source)} ({self.source.tokens})"
        return (
            f"vocabularies {len(self.source)} source, {len(self.target)} target "
            f"({self.source.tokens})"
        )


def pad_pairs(
    pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(src (N, S), src_lengths (N,), tgt (N, T), tgt_lengths (N,))`` of encoded
    ``(source ids, target ids)`` pairs, padded with ``<pad>``; ``tgt`` rows are
    ``<bos> ids <eos>`` and ``tgt_lengths`` count both."""
    s_lens = np.array([len(p[0]) for p in pairs], np.int64)
    t_lens = np.array([len(p[1]) + 2 for p in pairs], np.int64)
    if s_lens.min() < 1:
        raise ArgumentError("every source needs at least one symbol")
    s = np.full((len(pairs), s_lens.max()), PAD, np.int64)
    t = np.full((len(pairs), t_lens.max()), PAD, np.int64)
    for r, (source, target) in enumerate(pairs):
        s[r, : s_lens[r]] = source
        t[r, : t_lens[r]] = [BOS, *target, EOS]
    return s, s_lens, t, t_lens


def collate_pairs(
    pairs: list[tuple[Sequence[int], Sequence[int]]],
) -> tuple[tuple[np.ndarray, ...], int]:
    """The ``collate`` of an :class:`~rnncore.data.ExampleBatcher` of encoded pairs
    for :meth:`~rnncore.models.Seq2Seq.loss`: ``(pad_pairs(pairs), symbols)``,
    where ``symbols`` counts the scored target steps (each target and its EOS)."""
    padded = pad_pairs(pairs)
    return padded, int((padded[3] - 1).sum())


def pair_batches(
    src: Sequence[Sequence[int]],
    tgt: Sequence[Sequence[int]],
    batch_size: int,
    rng: np.random.Generator | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Batches :func:`pad_pairs` of one pass over the pairs, for
    :meth:`~rnncore.models.Seq2Seq.loss`.

    With ``rng``, the batches are bucketed by source length
    (:func:`~rnncore.data.padding.bucket_order`, pools of 50 batches); without
    it, batches follow the given order.
    """
    batch_size = _validate.positive_int("batch_size", batch_size)
    if len(src) != len(tgt):
        raise ArgumentError(f"src has {len(src)} sequences, tgt {len(tgt)}")
    if rng is None:
        order = np.arange(len(src))
        batches = [order[i : i + batch_size] for i in range(0, len(src), batch_size)]
    else:
        lengths = np.array([len(x) for x in src], np.int64)
        batches = bucket_order(lengths, batch_size, 50, rng)
    for rows in batches:
        yield pad_pairs([(src[i], tgt[i]) for i in rows])
