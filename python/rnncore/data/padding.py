"""Padded batches of variable-length sequences (classification, tagging).

:func:`pad_batch` stacks sequences into one ``(N, T)`` array with their
lengths, the form the recurrent layers take with ``lengths=``.
:class:`BucketBatcher` draws such batches in a seeded random order, grouping
sequences of similar length so that little of each batch is padding.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError

__all__ = ["BucketBatcher", "PaddedBatch", "bucket_order", "pad_batch"]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``N`` sequences of ids, padding the short ones with ``pad_id``.

    Returns:
        ``(ids (N, T) int64, lengths (N,) int64)`` with ``T`` the longest length;
        ``ids[n, lengths[n]:] == pad_id``.
    """
    if len(sequences) == 0:
        raise ArgumentError("pad_batch needs at least one sequence")
    arrays = [np.asarray(s) for s in sequences]
    for n, a in enumerate(arrays):
        if a.ndim != 1 or a.size == 0:
            raise ArgumentError(
                f"sequence {n} must be a non-empty 1-D list of ids, got shape {a.shape}"
            )
        if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
            raise ArgumentError(f"sequence {n} must hold integer ids, got dtype {a.dtype}")
    lengths = np.array([a.size for a in arrays], dtype=np.int64)  # (N,)
    ids = np.full((len(arrays), int(lengths.max())), pad_id, dtype=np.int64)  # (N, T)
    for n, a in enumerate(arrays):
        ids[n, : a.size] = a
    return ids, lengths


def bucket_order(
    lengths: np.ndarray, batch_size: int, pool_batches: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """One epoch of batches, each an array of indices into ``lengths (count,)``.

    The indices are shuffled, cut into pools of ``batch_size * pool_batches``,
    each pool is sorted by length (stably) and cut into batches of
    ``batch_size`` (the last of a pool may be smaller), and the batches are
    shuffled: little padding, and still a different mix every epoch.
    """
    perm = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(perm), pool):
        members = perm[start : start + pool]
        members = members[np.argsort(lengths[members], kind="stable")]
        batches.extend(members[i : i + batch_size] for i in range(0, len(members), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass(frozen=True)
class PaddedBatch:
    """One batch of :class:`BucketBatcher`.

    Attributes:
        ids: ``(N, T)`` int64, padded with the batcher's ``pad_id``.
        lengths: ``(N,)`` int64 in ``1..T``.
        indices: ``(N,)`` int64 positions of these sequences in the batcher's
            list (to gather their labels).
    """

    ids: np.ndarray
    lengths: np.ndarray
    indices: np.ndarray


class BucketBatcher:
    """Shuffled batches of sequences of similar length.

    Each epoch the sequences are shuffled, cut into pools of
    ``batch_size * pool_batches`` sequences, each pool is sorted by length and cut
    into batches, and the batches are shuffled. Iterating yields the rest of the
    current epoch, then moves to the next one; the position can be saved and
    restored exactly.

    Args:
        sequences: the sequences of ids (each non-empty).
        batch_size: ``N``, sequences per batch (the last batch of a pool may be
            smaller).
        pad_id: the id written after the end of a shorter sequence.
        pool_batches: batches per sorted pool; larger pools pad less and shuffle
            less.
        seed: seed of the batcher's own generator (or pass ``rng``).
        rng: a ``numpy.random.Generator`` to use instead of ``seed``.
    """

    def __init__(
        self,
        sequences: Sequence[Sequence[int]],
        batch_size: int,
        pad_id: int = 0,
        pool_batches: int = 50,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if len(sequences) == 0:
            raise ArgumentError("BucketBatcher needs at least one sequence")
        self.sequences = sequences
        self.N = _validate.positive_int("batch_size", batch_size)
        self.pool_batches = _validate.positive_int("pool_batches", pool_batches)
        self.pad_id = int(pad_id)
        self.rng = _validate.generator(seed, rng)
        self._lengths = np.array([len(s) for s in sequences], dtype=np.int64)  # (count,)
        if self._lengths.min() < 1:
            first = int(np.argmin(self._lengths))
            raise ArgumentError(f"sequence {first} is empty; every sequence needs an id")
        self.epoch = 0
        self.position = 0  # batches of this epoch already given out
        self._epoch_rng_state = self.rng.bit_generator.state  # to redraw this epoch's order
        self._order = self._draw_order()

    def _draw_order(self) -> list[np.ndarray]:
        """This epoch's batches as arrays of sequence indices (uses ``self.rng``)."""
        return bucket_order(self._lengths, self.N, self.pool_batches, self.rng)

    def __len__(self) -> int:
        """Batches per epoch."""
        return len(self._order)

    def __iter__(self) -> Iterator[PaddedBatch]:
        """The remaining batches of the current epoch; afterwards the next epoch
        is drawn and the position is back at 0."""
        while self.position < len(self._order):
            indices = self._order[self.position]
            ids, lengths = pad_batch([self.sequences[i] for i in indices], self.pad_id)
            self.position += 1
            yield PaddedBatch(ids, lengths, indices.astype(np.int64))
        self.epoch, self.position = self.epoch + 1, 0
        self._epoch_rng_state = self.rng.bit_generator.state
        self._order = self._draw_order()

    def state_dict(self) -> dict[str, Any]:
        """The position (JSON-ready): epoch, batch index and the generator state
        at the start of the epoch."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "count": len(self._lengths),
            "rng": self._epoch_rng_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position (same sequences and batch size)."""
        if not isinstance(state, dict) or state.get("count") != len(self._lengths):
            raise ArgumentError("the saved position belongs to a different list of sequences")
        try:
            self.rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as err:
            raise ArgumentError(f"invalid saved generator state: {err}") from None
        self._epoch_rng_state = self.rng.bit_generator.state
        self._order = self._draw_order()
        position = state.get("position")
        if not isinstance(position, int) or not 0 <= position <= len(self._order):
            raise ArgumentError(f"invalid saved position {position!r}")
        self.epoch, self.position = int(state.get("epoch", 0)), position
