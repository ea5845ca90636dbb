"""Text data for recurrent models: vocabularies, batching and id files.

- :class:`CharVocab`, :class:`WordVocab`: symbols <-> ids, saved as JSON.
- :class:`StreamBatcher`: char-rnn batching, ``N`` parallel streams read ``T``
  symbols at a time, with train/val/test parts and a resumable position.
- :func:`pad_batch`, :class:`BucketBatcher`: padded batches of variable-length
  sequences for classification and tagging.
- :func:`encode_file`, :func:`open_ids`: corpora larger than memory, encoded
  once and read through ``np.memmap``.
- :class:`ExampleBatcher`: train/val/test batches of independent examples
  (pairs, labelled sequences, captions) through a ``collate`` function,
  bucketed by length, with a resumable position.
- :func:`read_pairs`, :class:`PairVocab`, :class:`PairVocabs`,
  :func:`collate_pairs`, :func:`pair_batches`: files of
  ``source<TAB>target`` pairs for sequence to sequence; :func:`date_pairs` and
  :func:`reversal_pairs` generate built-in tasks from a seed.
"""

from __future__ import annotations

from rnncore.data.examples import (
    ExampleBatch,
    ExampleBatcher,
    collate_captions,
    collate_labelled,
    collate_tagged,
)
from rnncore.data.idfile import build_vocab, encode_file, open_ids
from rnncore.data.padding import BucketBatcher, PaddedBatch, pad_batch
from rnncore.data.pairs import (
    PairVocab,
    PairVocabs,
    collate_pairs,
    pad_pairs,
    pair_batches,
    read_pairs,
    write_pairs,
)
from rnncore.data.stream import Batch, StreamBatcher
from rnncore.data.tasks import date_pairs, reversal_pairs
from rnncore.data.vocab import CharVocab, Vocab, WordVocab, vocab_from_dict

__all__ = [
    "Batch",
    "BucketBatcher",
    "CharVocab",
    "ExampleBatch",
    "ExampleBatcher",
    "PaddedBatch",
    "PairVocab",
    "PairVocabs",
    "StreamBatcher",
    "Vocab",
    "WordVocab",
    "build_vocab",
    "collate_captions",
    "collate_labelled",
    "collate_pairs",
    "collate_tagged",
    "date_pairs",
    "encode_file",
    "open_ids",
    "pad_batch",
    "pad_pairs",
    "pair_batches",
    "read_pairs",
    "reversal_pairs",
    "vocab_from_dict",
    "write_pairs",
]
