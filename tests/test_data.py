"""Vocabularies, stream and bucket batching, id files and the default corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rnncore.corpus import default_corpus
from rnncore.data import (
    BucketBatcher,
    CharVocab,
    StreamBatcher,
    WordVocab,
    build_vocab,
    encode_file,
    open_ids,
    pad_batch,
    vocab_from_dict,
)
from rnncore.errors import ArgumentError, DTypeError, ShapeError

TEXT = "The quick brown fox jumps over the lazy dog.\nThe dog sleeps; the fox runs!\n" * 4


# ------------------------------------------------------------------ vocabularies


def test_char_vocab_round_trip_sorted_ids_and_json():
    vocab = CharVocab.from_text(TEXT)
    assert vocab.symbols == sorted(set(TEXT))
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.int64 and ids.shape == (len(TEXT),)
    assert [vocab.symbols[i] for i in ids[:5]] == list(TEXT[:5])
    assert vocab.decode(ids) == TEXT
    again = vocab_from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and np.array_equal(again.encode(TEXT), ids)


def test_char_vocab_handles_characters_beyond_the_basic_plane_and_chunks():
    text = "naïve 😀 café ∑ 😀\n"
    vocab = CharVocab.from_text(iter([text[:5], text[5:]]))
    assert len(vocab) == len(set(text))
    assert vocab.decode(vocab.encode(text)) == text
    assert vocab.id_dtype == np.uint8


def test_char_vocab_names_an_unknown_character():
    vocab = CharVocab.from_text("abc")
    with pytest.raises(ArgumentError, match="'z'"):
        vocab.encode("abz")
    with pytest.raises(ArgumentError, match="empty"):
        CharVocab.from_text("")
    with pytest.raises(ArgumentError, match="repeat"):
        CharVocab(["a", "a"])


def test_word_vocab_counts_limits_and_unknown_words():
    vocab = WordVocab.from_text(TEXT, min_count=8)  # every word that appears 8+ times
    assert vocab.symbols[0] == "<unk>" and vocab.unk_id == 0
    assert "the" in vocab.symbols and "quick" not in vocab.symbols  # 'the' 8x, 'quick' 4x
    ids = vocab.encode("the quick fox")
    assert ids[1] == vocab.unk_id and vocab.decode(ids) == "the <unk> fox"
    small = WordVocab.from_text(TEXT, max_size=3)
    assert len(small) == 3 and small.symbols[1:] == ["\n", "The"]  # most frequent, then sorted
    lower = WordVocab.from_text(TEXT, lowercase=True)
    assert "The" not in lower.symbols and lower.encode("THE")[0] == lower.symbols.index("the")


def test_word_vocab_decodes_tokens_and_keeps_newlines():
    vocab = WordVocab.from_text(TEXT)
    assert vocab.decode(vocab.encode("The fox runs!\nThe dog")) == "The fox runs !\nThe dog"
    again = vocab_from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and again.encode(TEXT).tolist() == vocab.encode(TEXT).tolist()


def test_vocab_from_dict_rejects_bad_dicts():
    for bad in (None, {}, {"kind": "byte"}, {"kind": "char", "symbols": "abc"}):
        with pytest.raises(ArgumentError):
            vocab_from_dict(bad)
    with pytest.raises(ArgumentError, match="unknown token"):
        vocab_from_dict({"kind": "word", "symbols": ["a", "<unk>"]})


# ------------------------------------------------------------- stream batching


def _epoch(batcher):
    """One training epoch of a fresh batcher: its batches in order."""
    out = [batcher.next_batch()]
    while batcher.position != 0:
        out.append(batcher.next_batch())
    return out


@given(
    L=st.integers(30, 400),
    N=st.integers(1, 6),
    T=st.integers(1, 13),
    val=st.sampled_from([0.0, 0.1, 0.25]),
)
def test_each_row_reads_its_own_stream_in_order(L, N, T, val):
    ids = np.arange(L) * 7 % 1000  # distinct values mark positions
    batcher = StreamBatcher(ids, N, T, split=(1.0 - 2 * val, val, val))
    sizes = [batcher.part_size(s) for s in ("train", "val", "test")]
    assert sum(sizes) == L
    S = batcher.stream_length("train")
    assert S == (sizes[0] - 1) // N
    batches = _epoch(batcher)
    assert [b.index for b in batches] == list(range(batcher.num_chunks("train")))
    assert all(b.epoch == 0 for b in batches) and batcher.epoch == 1
    assert all(b.inputs.shape[1] == T for b in batches[:-1]) and 1 <= batches[-1].inputs.shape[1]
    inputs = np.concatenate([b.inputs for b in batches], axis=1)  # (N, S)
    targets = np.concatenate([b.targets for b in batches], axis=1)  # (N, S)
    for n in range(N):
        assert np.array_equal(inputs[n], ids[n * S : n * S + S])
        assert np.array_equal(targets[n], ids[n * S + 1 : n * S + S + 1])
    start = sizes[0]
    for split, base in (("val", start), ("test", start + sizes[1])):
        chunks = list(batcher.iterate(split))
        assert len(chunks) == batcher.num_chunks(split)
        if chunks:
            Sv = batcher.stream_length(split)
            row0 = np.concatenate([c[0][0] for c in chunks])
            assert np.array_equal(row0, ids[base : base + Sv])  # inside its own part


def test_batcher_position_restores_exactly_and_checks_the_data():
    ids = np.arange(500) % 37
    a = StreamBatcher(ids, 3, 7)
    for _ in range(30):  # more than one epoch (21 chunks)
        a.next_batch()
    saved = json.loads(json.dumps(a.state_dict()))
    b = StreamBatcher(ids, 3, 7)
    b.load_state_dict(saved)
    for _ in range(25):
        x, y = a.next_batch(), b.next_batch()
        assert (x.epoch, x.index) == (y.epoch, y.index)
        assert np.array_equal(x.inputs, y.inputs) and np.array_equal(x.targets, y.targets)
    for other in (StreamBatcher(ids, 4, 7), StreamBatcher(ids, 3, 8), StreamBatcher(ids[1:], 3, 7)):
        assert not other.compatible(saved)
        with pytest.raises(ArgumentError, match="other data"):
            other.load_state_dict(saved)
    with pytest.raises(ArgumentError, match="invalid saved position"):
        StreamBatcher(ids, 3, 7).load_state_dict({**saved, "position": 999})


def test_batcher_rejects_bad_input():
    with pytest.raises(DTypeError):
        StreamBatcher(np.zeros(10), 2, 3)
    with pytest.raises(ShapeError):
        StreamBatcher(np.zeros((2, 10), dtype=np.int64), 2, 3)
    with pytest.raises(ArgumentError, match="too few"):
        StreamBatcher(np.arange(10), 16, 3)
    with pytest.raises(ArgumentError, match="split"):
        StreamBatcher(np.arange(100), 2, 3, split=(0.9, 0.2, 0.1))
    with pytest.raises(ArgumentError, match="seq_length"):
        StreamBatcher(np.arange(100), 2, 0)


# ----------------------------------------------------------- id files, memmap


@pytest.mark.parametrize("word_level", [False, True])
@pytest.mark.parametrize("suffix", [".npy", ".u16"])
def test_encode_file_memmap_matches_in_memory(tmp_path, word_level, suffix):
    text_path = tmp_path / "corpus.txt"
    text_path.write_text(TEXT * 3, encoding="utf-8")
    vocab = build_vocab(text_path, word_level=word_level, chunk_chars=17)  # many pieces
    direct = WordVocab.from_text(TEXT * 3) if word_level else CharVocab.from_text(TEXT * 3)
    assert vocab == direct
    ids = encode_file(text_path, vocab, tmp_path / f"ids{suffix}", chunk_chars=17)
    assert isinstance(ids, np.memmap) and ids.dtype == np.uint8 and not ids.flags.writeable
    assert np.array_equal(ids, vocab.encode(TEXT * 3))
    reopened = open_ids(tmp_path / f"ids{suffix}", None if suffix == ".npy" else np.uint8)
    batcher = StreamBatcher(reopened, 4, 5)
    assert isinstance(batcher.ids, np.memmap)  # read in place, never loaded whole
    memory = StreamBatcher(vocab.encode(TEXT * 3), 4, 5)
    for _ in range(batcher.num_chunks("train") + 2):
        x, y = batcher.next_batch(), memory.next_batch()
        assert x.inputs.dtype == np.int64
        assert np.array_equal(x.inputs, y.inputs) and np.array_equal(x.targets, y.targets)


def test_open_ids_rejects_bad_files(tmp_path):
    raw = tmp_path / "ids.bin"
    raw.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ArgumentError, match="dtype"):
        open_ids(raw)
    with pytest.raises(ArgumentError, match="whole number"):
        open_ids(raw, np.uint16)
    np.save(tmp_path / "f.npy", np.zeros(4))
    with pytest.raises(ArgumentError, match="integer"):
        open_ids(tmp_path / "f.npy")


# ------------------------------------------------------------ padded batches


def test_pad_batch_pads_and_reports_lengths():
    ids, lengths = pad_batch([[1, 2, 3], [4], [5, 6]], pad_id=9)
    assert ids.tolist() == [[1, 2, 3], [4, 9, 9], [5, 6, 9]]
    assert lengths.tolist() == [3, 1, 2] and ids.dtype == lengths.dtype == np.int64
    for bad in ([], [[1], []], [[1.5]]):
        with pytest.raises(ArgumentError):
            pad_batch(bad)


def _sequences(count, rng):
    return [list(rng.integers(1, 50, size=int(n))) for n in rng.integers(1, 40, size=count)]


def test_bucket_batcher_covers_every_sequence_once_per_epoch(rng):
    seqs = _sequences(203, rng)
    batcher = BucketBatcher(seqs, batch_size=8, pad_id=0, pool_batches=4, seed=3)
    epochs = [list(batcher) for _ in range(2)]
    for batches in epochs:
        seen = np.concatenate([b.indices for b in batches])
        assert sorted(seen.tolist()) == list(range(len(seqs)))
        for b in batches:
            assert b.ids.shape == (len(b.indices), b.lengths.max())
            for row, i in zip(b.ids, b.indices):
                assert row[: len(seqs[i])].tolist() == seqs[i]
    orders = [np.concatenate([b.indices for b in e]).tolist() for e in epochs]
    assert orders[0] != orders[1]  # reshuffled
    again = BucketBatcher(seqs, batch_size=8, pad_id=0, pool_batches=4, seed=3)
    assert np.concatenate([b.indices for b in again]).tolist() == orders[0]  # seeded
    # Sorting within pools leaves less padding than batches of random order.
    padded = sum(b.ids.size for b in epochs[0])
    lengths = np.array([len(s) for s in seqs])
    perm = np.random.default_rng(0).permutation(len(seqs))
    random_padded = sum(8 * lengths[perm[i : i + 8]].max() for i in range(0, len(seqs), 8))
    assert padded < random_padded


def test_bucket_batcher_resumes_mid_epoch(rng):
    seqs = _sequences(100, rng)
    a = BucketBatcher(seqs, batch_size=6, seed=1)
    list(a)  # epoch 0
    it = iter(a)
    for _ in range(5):
        next(it)
    saved = json.loads(json.dumps(a.state_dict()))
    b = BucketBatcher(seqs, batch_size=6, seed=99)
    b.load_state_dict(saved)
    rest_a = list(it) + list(a)
    rest_b = list(b) + list(b)
    assert len(rest_a) == len(rest_b) == len(a) - 5 + len(a)
    for x, y in zip(rest_a, rest_b):
        assert np.array_equal(x.ids, y.ids) and np.array_equal(x.indices, y.indices)
    with pytest.raises(ArgumentError):
        BucketBatcher(seqs[:-1], batch_size=6, seed=1).load_state_dict(saved)


# ------------------------------------------------------------------- corpus


def test_default_corpus_is_the_sorted_pydoc_topics():
    from pydoc_data.topics import topics

    text = default_corpus()
    assert text == default_corpus()
    assert len(text) > 100_000 and text.startswith(topics[min(topics)])
    assert text.endswith(topics[max(topics)])
