"""One data-parallel worker: a full replica of the model and optimizer that
trains on its own rows of every chunk. Plain Python; the driver runs it as a
Ray actor (``ray.remote(Worker)``).

A step is three calls, which the driver chains through Ray's object store
without waiting in between (``W`` workers, ``P`` parameters)::

    compute(index)        -> loss sum, symbols, W pieces of the flat gradient (P/W each)
    reduce(*piece_k)      -> the sum of piece k over workers 0..W-1, in that order
    apply(lr, ...)        -> sum the losses, concatenate the W sums, guard, clip, step

Worker ``k`` reduces piece ``k`` (a reduce-scatter), and every worker then
reads all ``W`` sums (an all-gather): each moves ``2 (W-1)/W P`` values per
step, and every replica applies the bitwise same gradient, so the replicas stay
identical without ever sending weights.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from typing import Any, Callable, Union

import numpy as np

from rnncore import _rnncore
from rnncore.checkpoint import Checkpoint
from rnncore.data.stream import StreamBatcher
from rnncore.distributed.shard import (
    ShardGenerator,
    flat_grads,
    model_signature,
    pieces,
    set_flat_grads,
    slice_state,
)
from rnncore.train import TrainConfig, Trainer

__all__ = ["Setup", "ShardBatcher", "Worker"]

Setup = Union[tuple[Any, Any], Callable[[], tuple[Any, Any]]]  # (model, optimizer) or a maker


class ShardBatcher:
    """Rows ``lo:hi`` of every chunk of a :class:`StreamBatcher` (what
    :meth:`Trainer.evaluate` reads)."""

    def __init__(self, batcher: StreamBatcher, lo: int, hi: int) -> None:
        self.full, self.lo, self.hi = batcher, lo, hi

    def num_chunks(self, split: str) -> int:
        return self.full.num_chunks(split)

    def chunk(self, split: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(inputs (hi-lo, T'), targets (hi-lo, T'))``."""
        inputs, targets = self.full.chunk(split, k)  # (N, T')
        return inputs[self.lo : self.hi], targets[self.lo : self.hi]


class Worker:
    """A replica on rows ``lo:hi`` of ``N`` streams (set by :meth:`load`).

    Args:
        setup: ``(model, optimizer)``, or a function that builds them.
        batcher: the driver's batcher (only its chunks are read, by index).
        config: the run's :class:`TrainConfig` (its update settings are used).
        threads: rnncore threads of this worker.
    """

    def __init__(
        self, setup: Setup, batcher: StreamBatcher, config: TrainConfig, threads: int
    ) -> None:
        _rnncore.set_num_threads(threads)
        # Arrays arriving through the object store are read-only views: copy them
        # (one deepcopy keeps the optimizer on the model's own parameter arrays).
        model, optimizer = setup() if callable(setup) else copy.deepcopy(setup)
        local = dataclasses.replace(config, out_dir=None, progress=False, plot=False)
        self.batcher = batcher
        self.trainer = Trainer(model, optimizer, ShardBatcher(batcher, 0, batcher.N), local)
        self.W = 1
        self._pending: Any = None  # state after the chunk of the step being applied
        self._computed_at = 0.0  # perf_counter() at the end of compute
        self._compute_s = 0.0

    @property
    def model(self) -> Any:
        return self.trainer.model

    def pid(self) -> int:
        """The process id (to check that the worker is alive, or to kill it in tests)."""
        return os.getpid()

    def signature(self) -> dict[str, Any]:
        """What must agree with the driver (see :func:`model_signature`)."""
        return model_signature(self.model, self.trainer.optimizer)

    def load(self, ckpt: Checkpoint, lo: int, hi: int, W: int, state: Any) -> None:
        """Take the run's state from ``ckpt`` and the rows ``lo:hi`` of ``W`` workers;
        ``state`` is this worker's part of the carried state."""
        self.trainer.restore(ckpt, data_position=False)
        self.trainer.batcher = ShardBatcher(self.batcher, lo, hi)
        bits = self.model.rng.bit_generator
        self.model.rng = ShardGenerator(bits, lo, hi, self.batcher.N)
        self.trainer.state, self.W = state, W

    # ------------------------------------------------------------------ a step

    def compute(self, index: int) -> tuple[Any, ...]:
        """Forward and backward of this worker's rows of train chunk ``index``:
        ``(loss summed over its symbols, its symbols, piece 0, ..., piece W-1)``."""
        start = time.perf_counter()
        inputs, targets = self.trainer.batcher.chunk("train", index)  # (rows, T')
        if index == 0:
            self.trainer.state = None  # the streams start over
        model = self.model
        model.train()
        model.zero_grad()
        loss, self._pending = model.loss(inputs, targets, self.trainer.state, reduction="sum")
        model.backward()
        flat = flat_grads(model.grads)  # (P,)
        self._computed_at = time.perf_counter()
        self._compute_s = self._computed_at - start
        return (float(loss), int(inputs.size), *pieces(flat, self.W))

    @staticmethod
    def reduce(*parts: np.ndarray) -> np.ndarray:
        """The sum of one piece over the workers, added in worker order."""
        total = np.array(parts[0], copy=True)
        for p in parts[1:]:
            total += p
        return total

    def apply(self, lr: float, *args: Any) -> tuple[bool, float, dict[str, float]]:
        """``args``: the W loss sums, the W symbol counts, then the W summed
        pieces. Returns ``(applied, loss per symbol, timings in seconds)``."""
        arrived = time.perf_counter()
        W = self.W
        losses, sizes, summed = args[:W], args[W : 2 * W], args[2 * W :]
        loss_sum = 0.0
        for x in losses:  # in worker order
            loss_sum += x
        symbols = sum(sizes)
        flat = np.concatenate(summed)  # (P,)
        grads = self.model.grads
        if self.trainer.config.loss_reduction == "mean":
            flat *= flat.dtype.type(1.0 / symbols)
        set_flat_grads(grads, flat)
        self.trainer.optimizer.lr = lr
        loss = loss_sum / symbols
        applied = self.trainer.apply_gradients(loss, grads)
        self.trainer.state = self._pending if applied else None
        self._pending = None
        timings = {
            "compute": self._compute_s,
            "allreduce": arrived - self._computed_at,
            "update": time.perf_counter() - arrived,
        }
        return applied, loss, timings

    # ------------------------------------------------------------ the rest

    def evaluate(self, split: str) -> tuple[float | None, int]:
        """``(mean loss per symbol of this worker's rows, symbols)`` over ``split``
        as :meth:`Trainer.evaluate` reads it."""
        value = self.trainer.evaluate(split)
        count = self.batcher.num_chunks(split)
        limit = self.trainer.config.max_val_chunks
        if limit is not None:
            count = min(count, limit)
        S, T = self.batcher.stream_length(split), self.batcher.T
        width = sum(min(T, S - k * T) for k in range(count))
        rows = self.trainer.batcher.hi - self.trainer.batcher.lo
        return value, rows * width

    def snapshot(self) -> tuple[Any, ...]:
        """``(weights, optimizer tensors, optimizer meta, generator state, guard state)``."""
        tensors, meta = self.trainer.optimizer.state_dict()
        return (
            self.model.state_dict(),
            tensors,
            meta,
            self.model.rng.bit_generator.state,
            self.trainer.guard.state_dict(),
        )

    def carried(self) -> Any:
        """This worker's part of the carried state (None after a reset)."""
        return slice_state(self.trainer.state, 0, self.trainer.batcher.hi - self.trainer.batcher.lo)
