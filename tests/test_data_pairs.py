"""Pairs files, their vocabularies and batches, and the built-in seq2seq tasks."""

from __future__ import annotations

import datetime

import numpy as np
import pytest

from rnncore.data import (
    PairVocab,
    date_pairs,
    pair_batches,
    read_pairs,
    reversal_pairs,
    write_pairs,
)
from rnncore.data.pairs import BOS, EOS, PAD, UNK
from rnncore.errors import ArgumentError


def test_pairs_round_trip(tmp_path):
    pairs = [("3 May 1998", "1998-05-03"), ("héllo wörld", "hello world")]
    path = tmp_path / "pairs.tsv"
    write_pairs(path, pairs)
    assert read_pairs(path) == pairs
    path.write_bytes(b"a\tb\r\nc\td")  # CRLF and no final newline
    assert read_pairs(path) == [("a", "b"), ("c", "d")]


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (b"a\tb\nno tab here\n", 2, "no tab"),
        (b"a\tb\n\tb\n", 2, "source is empty"),
        (b"a\t \n", 1, "target is empty"),
        (b"a\tb\nc\td\n\xff\tx\n", 3, "UTF-8"),
        (b"a\tb\n\n", 2, "no tab"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path, content, line, what):
    path = tmp_path / "bad.tsv"
    path.write_bytes(content)
    with pytest.raises(ArgumentError, match=rf"bad.tsv, line {line}: .*{what}"):
        read_pairs(path)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_bytes(b"")
    with pytest.raises(ArgumentError, match="no pairs"):
        read_pairs(path)


def test_vocab_char_and_word():
    chars = PairVocab.from_texts(["abc", "cab"])
    assert len(chars) == 4 + 3
    ids, unknown = chars.encode("abz")
    assert ids[-1] == UNK and unknown == 1
    assert chars.decode(ids) == "ab"
    words = PairVocab.from_texts(["the cat", "a cat"], tokens="word")
    ids, unknown = words.encode("the  dog cat")
    assert unknown == 1 and words.decode(ids) == "the cat"
    assert PairVocab.from_dict(words.to_dict()) == words


def test_batches_pad_and_cover_every_pair():
    src = [[4, 5, 6], [4], [5, 5], [6, 6, 6, 6], [4, 4]]
    tgt = [[7], [8, 9], [7, 7, 7], [8], [9]]
    seen = []
    for s, s_lens, t, t_lens in pair_batches(src, tgt, 2, np.random.default_rng(0)):
        for r in range(len(s)):
            row = s[r, : s_lens[r]].tolist()
            assert np.all(s[r, s_lens[r] :] == PAD)
            assert t[r, 0] == BOS and t[r, t_lens[r] - 1] == EOS
            seen.append((row, t[r, 1 : t_lens[r] - 1].tolist()))
    assert sorted(seen) == sorted(zip(src, tgt))


def test_date_pairs_are_deterministic_and_correct():
    pairs = date_pairs(500, seed=3)
    assert pairs == date_pairs(500, seed=3)
    assert pairs != date_pairs(500, seed=4)
    for _, iso in pairs:
        day = datetime.date.fromisoformat(iso)
        assert datetime.date(1950, 1, 1) <= day <= datetime.date(2049, 12, 31)
    weekday = [p for p in pairs if p[0].split(",")[0] in ("Monday", "Sunday", "Friday")]
    for text, iso in weekday:
        assert text.startswith(datetime.date.fromisoformat(iso).strftime("%A"))
    assert len({text.count("/") for text, _ in pairs}) == 2  # numeric and written forms


def test_reversal_pairs():
    pairs = reversal_pairs(20, seed=1, min_length=30, max_length=50)
    assert pairs == reversal_pairs(20, seed=1)
    for s, r in pairs:
        assert 30 <= len(s) <= 50 and r == s[::-1]
