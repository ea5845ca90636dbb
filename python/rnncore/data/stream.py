"""Char-rnn batching: N parallel streams read in order, T symbols at a time.

The corpus ``ids (L,)`` is cut into train, validation and test parts. Each part
of length ``P`` is cut into ``N`` streams of ``S = (P - 1) // N`` inputs: stream
``n`` covers ``part[n*S : n*S + S + 1]``, so its targets are its inputs shifted
by one. A chunk ``k`` holds the symbols ``k*T .. k*T + T`` of every stream::

    inputs  (N, T) = stream[:, k*T     : k*T + T]
    targets (N, T) = stream[:, k*T + 1 : k*T + T + 1]

so row ``n`` of chunk ``k + 1`` continues row ``n`` of chunk ``k``: a hidden
state carried from one chunk to the next keeps reading its own stream
(truncated backprop through time). The last chunk of a part is shorter when
``T`` does not divide ``S``. Chunks are read by index, so ``ids`` may be an
``np.memmap`` larger than memory: only the ``N*(T+1)`` symbols of one chunk are
read at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, DTypeError, ShapeError

__all__ = ["SPLITS", "Batch", "StreamBatcher", "fingerprint"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Batch:
    """One chunk of the training stream.

    Attributes:
        inputs: ``(N, T')`` int64 symbol ids, ``T' <= T``.
        targets: ``(N, T')`` int64, ``inputs`` shifted by one symbol.
        epoch: the epoch this chunk belongs to (0-based).
        index: the chunk's index within the epoch; 0 starts the streams over,
            so a carried state must be reset there.
    """

    inputs: np.ndarray
    targets: np.ndarray
    epoch: int
    index: int


def fingerprint(ids: np.ndarray, window: int = 1 << 20) -> str:
    """A SHA-256 over the length, dtype and the first and last ``window`` ids:
    cheap on a memmap, and different for any two corpora one would confuse."""
    digest = hashlib.sha256(f"{len(ids)}".encode())
    head = np.ascontiguousarray(ids[:window], dtype=np.int64)
    tail = np.ascontiguousarray(ids[-window:], dtype=np.int64)
    digest.update(head.astype("<i8").tobytes())
    digest.update(tail.astype("<i8").tobytes())
    return digest.hexdigest()


def same_geometry(mine: dict[str, Any], state: Any) -> bool:
    """Whether a saved batcher position ``state`` belongs to the data and geometry
    ``mine`` describes: every key of ``mine`` but the position itself agrees."""
    return isinstance(state, dict) and all(
        state.get(k) == v for k, v in mine.items() if k not in ("epoch", "position")
    )


def _split_sizes(length: int, split: Sequence[float]) -> tuple[int, int, int]:
    """Lengths of the train, val and test parts for fractions ``split``."""
    fractions = [float(f) for f in split]
    if len(fractions) == 2:
        fractions.append(1.0 - fractions[0] - fractions[1])
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) > 1.0 + 1e-9:
        raise ArgumentError(
            "split must be (train, val) or (train, val, test) fractions >= 0 summing to "
            f"at most 1, got {tuple(split)}"
        )
    scale = 1.0 / sum(fractions)
    n_val = round(length * fractions[1] * scale)
    n_test = round(length * fractions[2] * scale)
    return length - n_val - n_test, n_val, n_test


class StreamBatcher:
    """Train/val/test streams of a corpus and the position in the train stream.

    Args:
        ids: ``(L,)`` integer symbol ids (an array or a read-only memmap).
        batch_size: ``N`` parallel streams.
        seq_length: ``T`` symbols per chunk.
        split: ``(train, val, test)`` fractions of the corpus, in that order, or
            ``(train, val)`` with the rest as test. Fractions are rescaled to
            sum to 1.
    """

    def __init__(
        self,
        ids: np.ndarray,
        batch_size: int,
        seq_length: int,
        split: Sequence[float] = (0.9, 0.05, 0.05),
    ) -> None:
        if not isinstance(ids, np.ndarray):
            ids = np.asarray(ids)
        if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer):
            raise DTypeError(f"ids must hold integers, got dtype {ids.dtype}")
        if ids.ndim != 1:
            raise ShapeError(f"ids must be 1-D (L,), got shape {ids.shape}")
        self.ids = ids
        self.N = _validate.positive_int("batch_size", batch_size)
        self.T = _validate.positive_int("seq_length", seq_length)
        sizes = _split_sizes(len(ids), split)
        starts = np.cumsum((0, *sizes))
        self._parts = {name: (int(starts[i]), sizes[i]) for i, name in enumerate(SPLITS)}
        if self.stream_length("train") < 1:
            raise ArgumentError(
                f"the train part has {sizes[0]} symbols: too few for {self.N} streams "
                f"(it needs at least N + 1 = {self.N + 1})"
            )
        self.fingerprint = fingerprint(ids)
        self.epoch = 0  # epoch of the next training chunk
        self.position = 0  # index of the next training chunk within its epoch

    # ------------------------------------------------------------------ geometry

    def part_size(self, split: str) -> int:
        """Number of symbols in ``split`` ('train', 'val' or 'test')."""
        _validate.choice("split", split, SPLITS)
        return self._parts[split][1]

    def stream_length(self, split: str) -> int:
        """``S``: inputs per stream of ``split`` (0 if the part is too short)."""
        return max(0, (self.part_size(split) - 1) // self.N)

    def num_chunks(self, split: str) -> int:
        """Chunks per pass over ``split`` (the last one may be shorter than T)."""
        return -(-self.stream_length(split) // self.T)

    def chunk(self, split: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ``k`` of ``split``: ``(inputs (N, T'), targets (N, T'))`` int64."""
        count = self.num_chunks(split)
        if not 0 <= k < count:
            raise ArgumentError(f"chunk index must be in 0..{count - 1} for {split!r}, got {k}")
        start, _ = self._parts[split]
        S = self.stream_length(split)
        width = min(self.T, S - k * self.T)  # T' (shorter at the end of the part)
        rows = start + np.arange(self.N, dtype=np.int64) * S + k * self.T  # (N,)
        index = rows[:, None] + np.arange(width + 1, dtype=np.int64)  # (N, T'+1)
        window = np.asarray(self.ids[index], dtype=np.int64)  # reads N*(T'+1) ids
        return window[:, :-1], window[:, 1:]

    def iterate(self, split: str) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every chunk of ``split`` in order; does not touch the train position."""
        for k in range(self.num_chunks(split)):
            yield self.chunk(split, k)

    # ------------------------------------------------------------- training pass

    def next_batch(self) -> Batch:
        """The next training chunk; moves the position on (and to the next epoch
        after the last chunk)."""
        inputs, targets = self.chunk("train", self.position)
        batch = Batch(inputs, targets, self.epoch, self.position)
        self.position += 1
        if self.position == self.num_chunks("train"):
            self.epoch, self.position = self.epoch + 1, 0
        return batch

    def state_dict(self) -> dict[str, Any]:
        """The position (JSON-ready), with what it is only valid for."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "batch_size": self.N,
            "seq_length": self.T,
            "parts": [self._parts[s][1] for s in SPLITS],
            "fingerprint": self.fingerprint,
        }

    def compatible(self, state: dict[str, Any]) -> bool:
        """Whether ``state`` came from a batcher over the same data and geometry."""
        return same_geometry(self.state_dict(), state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position; the data and geometry must be the same."""
        if not self.compatible(state):
            raise ArgumentError(
                "the saved batcher position belongs to other data, batch size, sequence "
                "length or split"
            )
        epoch, position = state.get("epoch"), state.get("position")
        valid = isinstance(epoch, int) and isinstance(position, int)
        if not valid or epoch < 0 or not 0 <= position < self.num_chunks("train"):
            raise ArgumentError(f"invalid saved position: epoch={epoch!r}, position={position!r}")
        self.epoch, self.position = epoch, position

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.part_size(s)}" for s in SPLITS)
        return f"StreamBatcher(N={self.N}, T={self.T}, {sizes}, epoch={self.epoch})"
