"""Vocabularies: symbols <-> integer ids, saved as JSON next to a model.

:class:`CharVocab` has one id per distinct character of the training text
(sorted, so the same text always gives the same ids). :class:`WordVocab` splits
text into words, punctuation marks and newlines; words below a count or beyond
a size limit map to an unknown-word id. Both turn into a plain dict with
``to_dict()`` and come back with :func:`vocab_from_dict`, so a checkpoint can
hold its vocabulary in ``state.json``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Union

import numpy as np

from rnncore.errors import ArgumentError

__all__ = ["CharVocab", "Vocab", "WordVocab", "vocab_from_dict"]

# Words (runs of letters, digits, underscores), single punctuation marks and
# newlines; other whitespace only separates tokens.
WORD_PATTERN = r"\w+|[^\w\s]|\n"

# The tokenizers a word vocabulary can name. A saved vocabulary stores the name,
# never a regular expression: a checkpoint is input, and a crafted pattern run
# on user text could take exponential time.
TOKENIZERS = {
    "words": WORD_PATTERN,  # words, single punctuation marks, newlines
    "whitespace": r"[^\s]+|\n",  # runs of non-space characters, newlines
}


def _symbols(name: str, value: Any) -> list[str]:
    """``value`` as a list of distinct non-empty strings."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(s, str) and s for s in value):
        raise ArgumentError(f"{name} must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ArgumentError(f"{name} must not repeat a symbol")
    if not value:
        raise ArgumentError(f"{name} must hold at least one symbol")
    return list(value)


def _id_dtype(size: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids ``0..size-1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


class CharVocab:
    """One id per character.

    Args:
        chars: the symbols in id order (distinct single characters).
    """

    kind = "char"

    def __init__(self, chars: Sequence[str]) -> None:
        self.symbols = _symbols("chars", chars)
        if any(len(c) != 1 for c in self.symbols):
            raise ArgumentError("chars must be single characters")
        codes = np.array([ord(c) for c in self.symbols], dtype=np.uint32)  # (V,)
        self._order = np.argsort(codes, kind="stable").astype(np.int64)  # (V,) ids by code
        self._codes = codes[self._order]  # (V,) sorted code points

    @classmethod
    def from_text(cls, text: str | Iterable[str]) -> CharVocab:
        """The sorted distinct characters of ``text`` (a string or an iterable
        of string chunks, e.g. a file read piece by piece)."""
        chunks = [text] if isinstance(text, str) else text
        seen: set[str] = set()
        for chunk in chunks:
            seen.update(chunk)
        if not seen:
            raise ArgumentError("cannot build a vocabulary from empty text")
        return cls(sorted(seen))

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def id_dtype(self) -> np.dtype:
        """The smallest unsigned dtype for this vocabulary's ids (files on disk)."""
        return _id_dtype(len(self))

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ids ``(len(text),)`` int64; an unknown character is an error."""
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # (L,)
        at = np.searchsorted(self._codes, codes)  # (L,) positions in the sorted code points
        at[at == len(self._codes)] = 0
        unknown = self._codes[at] != codes
        if unknown.any():
            first = text[int(np.argmax(unknown))]
            raise ArgumentError(
                f"character {first!r} is not in the vocabulary ({len(self)} symbols)"
            )
        return self._order[at]

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text."""
        return "".join(self.symbols[int(i)] for i in ids)

    def safe_end(self, text: str) -> int:
        """Length of the prefix of ``text`` that encodes the same on its own as
        inside a longer text (every prefix, for characters)."""
        return len(text)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description: ``{"kind": "char", "symbols": [...]}``."""
        return {"kind": self.kind, "symbols": list(self.symbols)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and self.symbols == other.symbols

    def __repr__(self) -> str:
        return f"CharVocab({len(self)} characters)"


class WordVocab:
    """Words, punctuation marks and newlines, with an unknown-word id.

    Text is split by a tokenizer named from :data:`TOKENIZERS`: ``"words"``
    (the default: words, single punctuation marks and newlines) or
    ``"whitespace"`` (runs of non-space characters and newlines). Decoding joins
    tokens with single spaces (none around newlines), so it restores the
    tokens, not the exact spacing.

    Args:
        words: the known tokens in id order, ``unk`` first.
        unk: the token that stands for every unknown word.
        lowercase: fold text to lower case before splitting.
        tokenizer: a name from :data:`TOKENIZERS`.
    """

    kind = "word"

    def __init__(
        self,
        words: Sequence[str],
        unk: str = "<unk>",
        lowercase: bool = False,
        tokenizer: str = "words",
    ) -> None:
        self.symbols = _symbols("words", words)
        if self.symbols[0] != unk:
            raise ArgumentError(f"the first word must be the unknown token {unk!r}")
        if not isinstance(tokenizer, str) or tokenizer not in TOKENIZERS:
            raise ArgumentError(f"tokenizer must be one of {sorted(TOKENIZERS)}, got {tokenizer!r}")
        self.unk = unk
        self.unk_id = 0
        self.lowercase = bool(lowercase)
        self.tokenizer = tokenizer
        self._regex = re.compile(TOKENIZERS[tokenizer])
        self._index = {w: i for i, w in enumerate(self.symbols)}

    def tokenize(self, text: str) -> list[str]:
        """``text`` -> tokens (no ids yet)."""
        return self._regex.findall(text.lower() if self.lowercase else text)

    @classmethod
    def from_text(
        cls,
        text: str | Iterable[str],
        min_count: int = 1,
        max_size: int | None = None,
        unk: str = "<unk>",
        lowercase: bool = False,
        tokenizer: str = "words",
    ) -> WordVocab:
        """Count the tokens of ``text`` (a string, or chunks that each end at a
        whitespace) and keep those seen ``min_count`` times or more, most frequent
        first (ties in sorted order), at most ``max_size`` entries with ``unk``."""
        if min_count < 1 or (max_size is not None and max_size < 2):
            raise ArgumentError("min_count must be >= 1 and max_size None or >= 2")
        splitter = cls([unk], unk=unk, lowercase=lowercase, tokenizer=tokenizer)
        counts: Counter[str] = Counter()
        for chunk in [text] if isinstance(text, str) else text:
            counts.update(splitter.tokenize(chunk))
        counts.pop(unk, None)
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            ranked = ranked[: max_size - 1]
        return cls([unk, *ranked], unk=unk, lowercase=lowercase, tokenizer=tokenizer)

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def id_dtype(self) -> np.dtype:
        """The smallest unsigned dtype for this vocabulary's ids (files on disk)."""
        return _id_dtype(len(self))

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ids ``(number of tokens,)`` int64; unknown words -> ``unk_id``."""
        tokens = self.tokenize(text)
        get = self._index.get
        return np.fromiter((get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens))

    def decode(self, ids: Iterable[int]) -> str:
        """ids -> text, tokens joined by single spaces (none around newlines)."""
        out: list[str] = []
        for i in ids:
            token = self.symbols[int(i)]
            if out and token != "\n" and out[-1] != "\n":
                out.append(" ")
            out.append(token)
        return "".join(out)

    def safe_end(self, text: str) -> int:
        """Length of the longest prefix of ``text`` that ends at a whitespace
        character (a token can not continue across it); 0 if there is none."""
        for i in range(len(text) - 1, -1, -1):
            if text[i].isspace():
                return i + 1
        return 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the vocabulary."""
        return {
            "kind": self.kind,
            "symbols": list(self.symbols),
            "unk": self.unk,
            "lowercase": self.lowercase,
            "tokenizer": self.tokenizer,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"WordVocab({len(self)} words, unk={self.unk!r})"


Vocab = Union[CharVocab, WordVocab]


def vocab_from_dict(d: Any) -> Vocab:
    """The vocabulary that ``to_dict()`` described."""
    if not isinstance(d, dict) or d.get("kind") not in ("char", "word"):
        raise ArgumentError("a vocabulary dict needs 'kind' set to 'char' or 'word'")
    if d["kind"] == "char":
        return CharVocab(d.get("symbols"))
    words = _symbols("symbols", d.get("symbols"))
    unk = d.get("unk", "<unk>")
    if not isinstance(unk, str):
        raise ArgumentError("a word vocabulary dict needs a string 'unk'")
    tokenizer = d.get("tokenizer", "words")
    if "pattern" in d:  # written before tokenizers had names: only the default is taken
        if d["pattern"] != WORD_PATTERN:
            raise ArgumentError(
                "a word vocabulary with its own regular expression 'pattern' is not read "
                f"(a pattern from a file is not run); tokenizers: {sorted(TOKENIZERS)}"
            )
        tokenizer = "words"
    return WordVocab(words, unk=unk, lowercase=bool(d.get("lowercase", False)), tokenizer=tokenizer)
