"""Text data for recurrent models: vocabularies, batching and id files.

- :class:`CharVocab`, :class:`WordVocab`: symbols <-> ids, saved as JSON.
- :class:`StreamBatcher`: char-rnn batching, ``N`` parallel streams read ``T``
  symbols at a time, with train/val/test parts and a resumable position.
- :func:`pad_batch`, :class:`BucketBatcher`: padded batches of variable-length
  sequences for classification and tagging.
- :func:`encode_file`, :func:`open_ids`: corpora larger than memory, encoded
  once and read through ``np.memmap``.
- :func:`read_pairs`, :class:`PairVocab`, :func:`pair_batches`: files of
  ``source<TAB>target`` pairs for sequence to sequence; :func:`date_pairs` and
  :func:`reversal_pairs` generate built-in tasks from a seed.
"""

from __future__ import annotations

from rnncore.data.idfile import build_vocab, encode_file, open_ids
from rnncore.data.padding import BucketBatcher, PaddedBatch, pad_batch
from rnncore.data.pairs import PairVocab, pair_batches, read_pairs, write_pairs
from rnncore.data.stream import Batch, StreamBatcher
from rnncore.data.tasks import date_pairs, reversal_pairs
from rnncore.data.vocab import CharVocab, Vocab, WordVocab, vocab_from_dict

__all__ = [
    "Batch",
    "BucketBatcher",
    "CharVocab",
    "PaddedBatch",
    "PairVocab",
    "StreamBatcher",
    "Vocab",
    "WordVocab",
    "build_vocab",
    "date_pairs",
    "encode_file",
    "open_ids",
    "pad_batch",
    "pair_batches",
    "read_pairs",
    "reversal_pairs",
    "vocab_from_dict",
    "write_pairs",
]
