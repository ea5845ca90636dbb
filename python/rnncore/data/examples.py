"""Batches of independent examples, for the models trained without a carried state.

A language model reads a stream (:class:`~rnncore.data.StreamBatcher`); a
classifier, a tagger, a sequence-to-sequence model or a captioner reads
examples that stand alone: a sentence and its label, a source and its target, a
feature vector and its caption. :class:`ExampleBatcher` splits a list of them
into train, validation and test parts (by a seeded permutation, so every run
with the same seed holds the same examples out) and cuts each part into
padded batches through a ``collate`` function that knows the model::

    collate([example, ...]) -> (args, symbols)
    loss = model.loss(*args)       # a mean over ``symbols`` scored symbols

Training batches are bucketed by length (:func:`~rnncore.data.padding.bucket_order`): each epoch the
examples are shuffled, cut into pools of ``pool_batches`` batches, each pool is
sorted by length and cut into batches, and the batches are shuffled. An
epoch's order depends only on the seed and the epoch, so a saved position
(:meth:`~ExampleBatcher.state_dict`) resumes exactly. Validation and test
batches are in length order, the same on every pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.data.padding import bucket_order, pad_batch
from rnncore.data.stream import SPLITS, _split_sizes, same_geometry
from rnncore.errors import ArgumentError

__all__ = [
    "ExampleBatch",
    "ExampleBatcher",
    "collate_captions",
    "collate_labelled",
    "collate_tagged",
]


def collate_labelled(examples: list[tuple[Sequence[int], int]]) -> tuple[tuple[Any, ...], int]:
    """``(ids, label)`` examples -> ``((ids (N, T), lengths (N,), labels (N,)), N)``
    for :meth:`~rnncore.models.SequenceClassifier.loss` (a mean over sequences)."""
    ids, lengths = pad_batch([e[0] for e in examples])
    return (ids, lengths, np.array([e[1] for e in examples], np.int64)), len(examples)


def collate_tagged(
    examples: list[tuple[Sequence[int], Sequence[int]]],
) -> tuple[tuple[Any, ...], int]:
    """``(ids, tags)`` examples (one tag per id) -> ``((ids (N, T), lengths (N,),
    tags (N, T)), sum(lengths))`` for :meth:`~rnncore.models.SequenceTagger.loss`."""
    for i, (ids, tags) in enumerate(examples):
        if len(ids) != len(tags):
            raise ArgumentError(f"example {i} has {len(ids)} ids but {len(tags)} tags")
    ids, lengths = pad_batch([e[0] for e in examples])
    tags, _ = pad_batch([e[1] for e in examples])
    return (ids, lengths, tags), int(lengths.sum())


def collate_captions(
    examples: list[tuple[Any, Sequence[int]]], bos_id: int = 1, eos_id: int = 2, pad_id: int = 0
) -> tuple[tuple[Any, ...], int]:
    """``(features (F,), caption ids)`` examples -> ``((features (N, F), tgt (N, T),
    tgt_lengths (N,)), symbols)`` for :meth:`~rnncore.models.Captioner.loss`: ``tgt``
    rows are ``bos ids eos`` then ``pad_id``; ``symbols`` counts the scored steps."""
    features = np.stack([np.asarray(e[0]) for e in examples])  # (N, F)
    tgt, lengths = pad_batch([[bos_id, *e[1], eos_id] for e in examples], pad_id)
    return (features, tgt, lengths), int((lengths - 1).sum())


@dataclass(frozen=True)
class ExampleBatch:
    """One batch of :class:`ExampleBatcher`.

    Attributes:
        args: what ``collate`` made of the examples: the arguments of ``model.loss``.
        symbols: how many symbols the loss is a mean over (the weight of this
            batch in a mean over a whole part).
        epoch: the epoch of a training batch (-1 for validation and test).
        index: the batch's index within its epoch or part.
    """

    args: tuple[Any, ...]
    symbols: int
    epoch: int
    index: int


class ExampleBatcher:
    """Train/val/test batches of independent examples and the position in the
    training part (see the module docstring).

    Args:
        examples: the examples, anything ``collate`` takes a list of.
        collate: ``list of examples -> (args, symbols)``.
        batch_size: ``N``, examples per batch.
        lengths: ``(count,)`` the length of each example, for bucketing (e.g. the
            source length); None: no bucketing by length.
        split: ``(train, val, test)`` fractions, or ``(train, val)`` with the rest
            as test; rescaled to sum to 1.
        seed: seed of the split and of every epoch's order.
        pool_batches: batches per sorted pool (larger: less padding, less mixing).
        fingerprint: what identifies the data for :meth:`compatible` (e.g. a hash
            of the encoded examples); default: the count and the lengths.
    """

    carries_state = False  # each batch starts from the model's own initial state

    def __init__(
        self,
        examples: Sequence[Any],
        collate: Callable[[list[Any]], tuple[tuple[Any, ...], int]],
        batch_size: int,
        lengths: Sequence[int] | np.ndarray | None = None,
        split: Sequence[float] = (0.9, 0.05, 0.05),
        seed: int = 0,
        pool_batches: int = 50,
        fingerprint: str | None = None,
    ) -> None:
        if len(examples) == 0:
            raise ArgumentError("ExampleBatcher needs at least one example")
        if not callable(collate):
            raise ArgumentError(f"collate must be callable, got {type(collate).__name__}")
        self.examples, self.collate = examples, collate
        self.N = _validate.positive_int("batch_size", batch_size)
        self.pool_batches = _validate.positive_int("pool_batches", pool_batches)
        self.seed = _validate.non_negative_int("seed", seed)
        count = len(examples)
        lens = np.zeros(count, np.int64) if lengths is None else np.asarray(lengths, np.int64)
        if lens.shape != (count,):
            raise ArgumentError(
                f"lengths must have one entry per example ({count}), got {lens.shape}"
            )
        self._lengths = lens
        sizes = _split_sizes(count, split)
        if sizes[0] < 1:
            raise ArgumentError(f"the train part of {count} examples is empty; lower the split")
        perm = np.random.default_rng([self.seed, 0]).permutation(count)
        starts = np.cumsum((0, *sizes))
        self._parts = {s: perm[starts[i] : starts[i + 1]] for i, s in enumerate(SPLITS)}
        for s in ("val", "test"):  # fixed order: by length, then by position
            part = self._parts[s]
            self._parts[s] = part[np.lexsort((part, lens[part]))]
        if fingerprint is None:
            digest = hashlib.sha256(f"{count}".encode())
            digest.update(lens.astype("<i8").tobytes())
            fingerprint = digest.hexdigest()
        self.fingerprint = fingerprint
        self.epoch = 0  # epoch of the next training batch
        self.position = 0  # index of the next training batch within its epoch
        self._order: tuple[int, list[np.ndarray]] | None = None  # (epoch, its batches)

    # ------------------------------------------------------------------ geometry

    def part_size(self, split: str) -> int:
        """Number of examples in ``split`` ('train', 'val' or 'test')."""
        _validate.choice("split", split, SPLITS)
        return len(self._parts[split])

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The training batches of ``epoch`` (indices into ``examples``)."""
        if self._order is None or self._order[0] != epoch:
            train = self._parts["train"]
            rng = np.random.default_rng([self.seed, 1, epoch])
            local = bucket_order(self._lengths[train], self.N, self.pool_batches, rng)
            self._order = (epoch, [train[b] for b in local])
        return self._order[1]

    def num_chunks(self, split: str) -> int:
        """Batches per pass over ``split``."""
        if split == "train":
            return len(self._epoch_batches(self.epoch))
        return -(-self.part_size(split) // self.N)

    def _batch(self, indices: np.ndarray, epoch: int, index: int) -> ExampleBatch:
        args, symbols = self.collate([self.examples[int(i)] for i in indices])
        return ExampleBatch(tuple(args), int(symbols), epoch, index)

    def chunk(self, split: str, k: int) -> ExampleBatch:
        """Batch ``k`` of ``split`` ('val' or 'test', in their fixed order; 'train'
        in the current epoch's order)."""
        count = self.num_chunks(split)
        if not 0 <= k < count:
            raise ArgumentError(f"batch index must be in 0..{count - 1} for {split!r}, got {k}")
        if split == "train":
            return self._batch(self._epoch_batches(self.epoch)[k], self.epoch, k)
        return self._batch(self._parts[split][k * self.N : (k + 1) * self.N], -1, k)

    # ------------------------------------------------------------- training pass

    def next_batch(self) -> ExampleBatch:
        """The next training batch; moves the position on (and to the next epoch
        after the last batch)."""
        batches = self._epoch_batches(self.epoch)
        batch = self._batch(batches[self.position], self.epoch, self.position)
        self.position += 1
        if self.position == len(batches):
            self.epoch, self.position = self.epoch + 1, 0
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The position (JSON-ready), with what it is only valid for."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "batch_size": self.N,
            "pool_batches": self.pool_batches,
            "seed": self.seed,
            "parts": [self.part_size(s) for s in SPLITS],
            "fingerprint": self.fingerprint,
        }

    def compatible(self, state: dict[str, Any]) -> bool:
        """Whether ``state`` came from a batcher over the same data, split and sizes."""
        return same_geometry(self.state_dict(), state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; the data, split and sizes must be the same."""
        if not self.compatible(state):
            raise ArgumentError(
                "the saved batcher position belongs to other data, batch size, seed or split"
            )
        epoch, position = state.get("epoch"), state.get("position")
        if not isinstance(epoch, int) or not isinstance(position, int) or epoch < 0:
            raise ArgumentError(f"invalid saved position: epoch={epoch!r}, position={position!r}")
        if not 0 <= position < len(self._epoch_batches(epoch)):
            raise ArgumentError(f"invalid saved position: epoch={epoch!r}, position={position!r}")
        self.epoch, self.position = epoch, position

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.part_size(s)}" for s in SPLITS)
        return f"ExampleBatcher(N={self.N}, {sizes} examples, epoch={self.epoch})"
