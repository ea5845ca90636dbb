"""Corpora larger than memory: encode a text file once, then memory-map the ids.

:func:`encode_file` reads a UTF-8 text file piece by piece and writes its
symbol ids to a ``.npy`` file (or a raw file of little-endian unsigned ints) in
the smallest unsigned dtype that holds the vocabulary. :func:`open_ids` maps that
file with ``np.memmap``: :class:`~rnncore.data.StreamBatcher` then reads one
chunk at a time and the corpus never has to fit in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnncore.data.vocab import CharVocab, Vocab, WordVocab
from rnncore.errors import ArgumentError

__all__ = ["build_vocab", "encode_file", "open_ids", "read_text_chunks"]

CHUNK_CHARS = 1 << 22  # characters read at a time (4 Mi characters)


def read_text_chunks(
    path: str | os.PathLike, vocab: Vocab | None = None, chunk_chars: int = CHUNK_CHARS
) -> Iterator[str]:
    """The text of a UTF-8 file in pieces of about ``chunk_chars`` characters.

    With a word vocabulary each piece ends at a whitespace (``vocab.safe_end``),
    so no token is cut in two; the rest is carried to the next piece.
    """
    carry = ""
    with open(path, encoding="utf-8", newline="") as f:
        while True:
            piece = f.read(chunk_chars)
            if not piece:
                break
            text = carry + piece
            end = len(text) if vocab is None else vocab.safe_end(text)
            carry = text[end:]
            if end:
                yield text[:end]
    if carry:
        yield carry


def build_vocab(
    path: str | os.PathLike, word_level: bool = False, chunk_chars: int = CHUNK_CHARS, **kw: Any
) -> Vocab:
    """The vocabulary of a text file, read piece by piece. ``kw`` goes to
    :meth:`WordVocab.from_text` (``min_count``, ``max_size``, ``lowercase``)."""
    if not word_level:
        if kw:
            raise ArgumentError(f"options {sorted(kw)} apply to word vocabularies only")
        return CharVocab.from_text(read_text_chunks(path, None, chunk_chars))
    splitter = WordVocab(["<unk>"])
    return WordVocab.from_text(read_text_chunks(path, splitter, chunk_chars), **kw)


def encode_file(
    text_path: str | os.PathLike,
    vocab: Vocab,
    out_path: str | os.PathLike,
    chunk_chars: int = CHUNK_CHARS,
) -> np.memmap:
    """Encode a text file to an id file and return it memory-mapped read-only.

    A ``.npy`` ``out_path`` gets a NumPy header (two passes over the text: count,
    then write); any other name gets the raw ids, ``vocab.id_dtype``
    little-endian, in one pass (open it with ``open_ids(path, dtype)``).

    Returns:
        the ids ``(L,)`` as a read-only memmap.
    """
    dtype = np.dtype(vocab.id_dtype).newbyteorder("<")
    out_path = Path(out_path)
    if out_path.suffix == ".npy":
        total = sum(len(vocab.encode(t)) for t in read_text_chunks(text_path, vocab, chunk_chars))
        if total == 0:
            raise ArgumentError(f"{text_path} holds no symbols to encode")
        out = np.lib.format.open_memmap(out_path, mode="w+", dtype=dtype, shape=(total,))
        at = 0
        for text in read_text_chunks(text_path, vocab, chunk_chars):
            ids = vocab.encode(text)
            out[at : at + len(ids)] = ids
            at += len(ids)
        out.flush()
        del out
    else:
        with open(out_path, "wb") as f:
            for text in read_text_chunks(text_path, vocab, chunk_chars):
                f.write(vocab.encode(text).astype(dtype).tobytes())
    return open_ids(out_path, dtype)


def open_ids(path: str | os.PathLike, dtype: Any = None) -> np.memmap:
    """Memory-map an id file read-only: a ``.npy`` file (its header gives the
    dtype) or a raw file of ``dtype`` (required then).

    Returns:
        the ids ``(L,)``.
    """
    path = Path(path)
    if path.suffix == ".npy":
        ids = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        if dtype is None:
            raise ArgumentError(f"{path} is a raw id file: pass its dtype (e.g. 'uint16')")
        dt = np.dtype(dtype)
        if dt.kind not in "ui":
            raise ArgumentError(f"id files hold integers, got dtype {dt}")
        if path.stat().st_size % dt.itemsize:
            raise ArgumentError(f"{path} is not a whole number of {dt} ids")
        if path.stat().st_size == 0:
            raise ArgumentError(f"{path} is empty")
        ids = np.memmap(path, dtype=dt, mode="r")
    if ids.ndim != 1 or ids.dtype.kind not in "ui":
        raise ArgumentError(f"{path} must hold a 1-D integer array, got {ids.dtype} {ids.shape}")
    return ids
