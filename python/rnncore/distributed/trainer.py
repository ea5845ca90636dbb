"""Synchronous data-parallel training on Ray: :class:`DataParallelTrainer`.

The driver is a :class:`~rnncore.train.Trainer` whose steps run on ``W``
worker actors (:class:`~rnncore.distributed.worker.Worker`), each a full
replica training on its own contiguous rows of the ``N`` parallel streams.
Everything else is the Trainer's own loop: schedules, validation (sharded over
the workers), keep-best, early stopping, ``metrics.csv`` and checkpoints,
which only the driver writes, atomically as always, in the single-process
format (the carried state of all ``N`` streams, gathered from the workers).

Gradients are summed over the workers in worker order, so the result does not
depend on timing; dropout masks are drawn per stream
(:class:`~rnncore.distributed.shard.ShardGenerator`). ``W`` workers on
``N / W`` streams each therefore compute what one process computes on ``N``
streams, up to the rounding of a different summation order.

When a worker dies, the driver replaces it (or goes on with those left),
restores the last checkpoint on all of them and continues; ``metrics.csv`` is
cut back to that step, so the file reads as one run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import (
    GetTimeoutError,
    NodeDiedError,
    ObjectLostError,
    OutOfMemoryError,
    RayActorError,
    RayTaskError,
    WorkerCrashedError,
)

from rnncore.checkpoint import Checkpoint, save_checkpoint
from rnncore.data.stream import StreamBatcher
from rnncore.distributed.cluster import CONNECT_TIMEOUT, connect, disconnect
from rnncore.distributed.shard import concat_states, model_signature, shard_rows, slice_state
from rnncore.distributed.stats import WorkerStats
from rnncore.distributed.worker import Setup, Worker
from rnncore.errors import ArgumentError, RnnCoreError
from rnncore.train import TrainConfig, Trainer, TrainResult
from rnncore.train.rundir import claim_run_dir

__all__ = ["DataParallelTrainer", "WorkerLostError"]

# How Ray reports a worker process that is gone: killed, crashed, killed by Ray's
# out-of-memory monitor, on a node that died, or holding a piece that was lost.
LOST = (RayActorError, WorkerCrashedError, OutOfMemoryError, NodeDiedError, ObjectLostError)


class WorkerLostError(RnnCoreError, RuntimeError):
    """Workers died more often than ``max_recoveries`` allows, or none is left."""


class _Lost(WorkerLostError):
    """A worker died during a call (:meth:`DataParallelTrainer.fit` recovers from it)."""


class DataParallelTrainer(Trainer):
    """:class:`~rnncore.train.Trainer` with each step spread over ``workers`` Ray actors.

    Args:
        model, optimizer, batcher, config, vocab, extra: as for ``Trainer``; the
            driver keeps them as the run's copy, written to checkpoints.
        workers: ``W``, at most the batch size ``N``; worker ``w`` trains on
            rows ``shard_rows(N, W)[w]`` of every chunk.
        setup: how workers get their replica: None ships ``(model, optimizer)``;
            a function returning ``(model, optimizer)`` builds it on the worker.
            Either way the workers then load the driver's state, and a replica
            whose model or optimizer differs from the driver's is an
            :class:`ArgumentError` before any step.
        address: the Ray cluster to join when Ray is not running yet; None
            starts a local instance with ``workers * threads_per_worker`` CPUs.
        threads_per_worker: CPUs (and rnncore threads) of each worker.
        start_timeout: seconds for the workers to start (or to come back).
        max_recoveries: worker losses survived in one :meth:`fit`.

    Use as a context manager, or call :meth:`close` to stop the workers.
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        batcher: StreamBatcher,
        config: TrainConfig | None = None,
        vocab: Any = None,
        extra: dict[str, Any] | None = None,
        *,
        workers: int = 2,
        setup: Setup | None = None,
        address: str | None = None,
        threads_per_worker: int = 1,
        start_timeout: float = 120.0,
        max_recoveries: int = 3,
    ) -> None:
        super().__init__(model, optimizer, batcher, config, vocab, extra)
        shard_rows(batcher.N, workers)  # checks 1 <= W <= N
        if not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ArgumentError(
                f"threads_per_worker must be an integer >= 1, got {threads_per_worker!r}"
            )
        self.num_workers = workers
        self.address, self.threads = address, threads_per_worker
        self.start_timeout, self.max_recoveries = float(start_timeout), max_recoveries
        self._setup: Setup = setup if setup is not None else (model, optimizer)
        self._actors: list[Any] = []
        self._owns_ray = False
        self._last: Checkpoint | None = None  # what a lost worker rolls back to
        self.stats = WorkerStats()

    # ------------------------------------------------------------ the workers

    def __enter__(self) -> DataParallelTrainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workers(self) -> list[Any]:
        """The worker actors (empty before :meth:`start`)."""
        return list(self._actors)

    def start(self) -> None:
        """Connect to Ray, start the workers, check their replicas against the
        driver's and give them the driver's state. Called by :meth:`fit`."""
        if self._actors:
            return
        if self.address is not None or not ray.is_initialized():
            self._owns_ray = connect(
                self.address, self.num_workers * self.threads, timeout=CONNECT_TIMEOUT
            )
        self._actors = self._spawn(self.num_workers)
        if len(self._actors) < self.num_workers:
            self.close()
            raise WorkerLostError(
                f"only {len(self._actors)} of {self.num_workers} workers started within "
                f"{self.start_timeout:g} s (does the cluster have {self.num_workers} x "
                f"{self.threads} CPUs free?)"
            )
        self._last = Trainer.checkpoint(self)
        self._push(self._last)

    def close(self) -> None:
        """Stop the workers (and the Ray instance this trainer started)."""
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        disconnect(self._owns_ray)
        self._owns_ray = False

    def _spawn(self, count: int) -> list[Any]:
        """Start ``count`` workers; returns those that answered in time, after
        checking each replica against the driver's model."""
        remote = ray.remote(Worker).options(num_cpus=self.threads, max_restarts=0)
        setup = ray.put(self._setup)
        started = [
            remote.remote(setup, self.batcher, self.config, self.threads) for _ in range(count)
        ]
        mine = model_signature(self.model, self.optimizer)
        alive = []
        for actor in started:
            try:
                theirs = ray.get(actor.signature.remote(), timeout=self.start_timeout)
            except (GetTimeoutError, *LOST):
                ray.kill(actor, no_restart=True)
                continue
            if theirs != mine:
                for a in started:
                    ray.kill(a, no_restart=True)
                diff = sorted(k for k in mine if theirs.get(k) != mine[k])
                raise ArgumentError(
                    f"a worker's replica differs from the driver's model in {', '.join(diff)}: "
                    f"{ {k: theirs.get(k) for k in diff} } != { {k: mine[k] for k in diff} }"
                )
            alive.append(actor)
        return alive

    def _get(self, refs: Any) -> Any:
        """``ray.get(refs)``; a dead worker becomes :class:`_Lost`, an rnncore error
        raised on a worker is raised here as it is."""
        try:
            return ray.get(refs)
        except LOST as err:
            raise _Lost(str(err).splitlines()[0]) from None
        except RayTaskError as err:
            if isinstance(err.cause, RnnCoreError):  # e.g. NonFiniteError: as in one process
                raise err.cause from None
            raise

    def _push(self, ckpt: Checkpoint) -> None:
        """Load ``ckpt`` and the driver's carried state (cut by rows) on every worker."""
        W = len(self._actors)
        ref = ray.put(ckpt)
        calls = [
            a.load.remote(ref, lo, hi, W, slice_state(self.state, lo, hi))
            for a, (lo, hi) in zip(self._actors, shard_rows(self.batcher.N, W))
        ]
        self._get(calls)

    def _recover(self) -> None:
        """Replace dead workers (or go on without them) and roll all of them back
        to the last checkpoint."""
        alive = []
        for actor in self._actors:
            try:
                ray.get(actor.pid.remote(), timeout=CONNECT_TIMEOUT)
                alive.append(actor)
            except (GetTimeoutError, *LOST):
                ray.kill(actor, no_restart=True)
        self._actors = alive + self._spawn(self.num_workers - len(alive))
        if not self._actors:
            raise WorkerLostError("every worker died and none could be started again")
        assert self._last is not None
        self.restore(self._last)
        self.stats.cut(self.step)

    # ------------------------------------------------------------ training

    def fit(self) -> TrainResult:
        """:meth:`Trainer.fit` on the workers, surviving up to ``max_recoveries``
        worker losses (each rolls back to the last checkpoint)."""
        self.start()
        if self.config.out_dir:  # claimed first: only a run's own workers.csv is removed
            out = claim_run_dir(self.config.out_dir, continuing=True, force=True, what="out_dir")
            self.stats.out = out / "workers.csv"
            if self._resumed_at is None:
                self.stats.out.unlink(missing_ok=True)  # a new run
        self.stats.every = self.config.log_every
        losses = 0
        while True:
            try:
                result = super().fit()
                self.stats.flush(self.step)
                return result
            except _Lost as err:
                losses += 1
                if losses > self.max_recoveries:
                    raise WorkerLostError(
                        f"workers were lost {losses} times (the last: {err}); giving up"
                    ) from None
                self._recover()

    def train_step(self) -> tuple[float | None, int, int]:
        """One chunk on all workers: ``(loss or None if skipped, symbols, epoch)``."""
        started = time.perf_counter()
        batch = self.batcher.next_batch()
        if batch.index == 0:
            self.state = None
        lr = self.optimizer.lr = self.lr_at(batch.epoch, self.step)
        actors, W = self._actors, len(self._actors)
        outs = [a.compute.options(num_returns=W + 2).remote(batch.index) for a in actors]
        summed = [actors[k].reduce.remote(*[o[2 + k] for o in outs]) for k in range(W)]
        args = [o[0] for o in outs] + [o[1] for o in outs] + summed
        results = self._get([a.apply.remote(lr, *args) for a in actors])
        self.step += 1
        applied, loss = results[0][0], results[0][1]
        if any(r[0] != applied or repr(r[1]) != repr(loss) for r in results):  # NaN too
            raise RnnCoreError(f"the workers disagree at step {self.step}: {results}")
        rows = [hi - lo for lo, hi in shard_rows(self.batcher.N, W)]
        self.stats.add(self.step, rows, batch.inputs.shape[1], [r[2] for r in results], started)
        if self.config.out_dir is None and self.config.save_every:
            if self.step % self.config.save_every == 0:
                self._last = self.checkpoint()  # in memory: what a lost worker rolls back to
        return (loss if applied else None), batch.inputs.size, batch.epoch

    def evaluate(self, split: str = "val") -> float | None:
        """Mean loss per symbol over ``split``, each worker reading its rows."""
        if not self._actors:
            return super().evaluate(split)
        parts = self._get([a.evaluate.remote(split) for a in self._actors])
        if any(value is None for value, _ in parts):
            return None
        total, symbols = 0.0, 0
        for value, count in parts:  # in worker order
            total += value * count
            symbols += count
        return total / symbols

    # ------------------------------------------------------------ checkpoints

    def checkpoint(self) -> Checkpoint:
        """The run's state, gathered from the workers into the driver's copy."""
        if self._actors:
            snap = self._get(self._actors[0].snapshot.remote())
            parts = self._get([a.carried.remote() for a in self._actors])
            weights, opt_tensors, opt_meta, rng_state, guard = snap
            self.model.load_state_dict(weights)
            self.optimizer.load_state_dict(opt_tensors, opt_meta)
            self.model.rng.bit_generator.state = rng_state
            self.guard.load_state_dict(guard)
            self.state = concat_states(parts)
        return super().checkpoint()

    def save(self, path: str | Path) -> Path:
        """Write the gathered checkpoint atomically (the driver alone writes)."""
        ckpt = self.checkpoint()
        self._last = ckpt
        return save_checkpoint(path, ckpt)

    def restore(self, ckpt: Checkpoint, data_position: bool = True) -> bool:
        """:meth:`Trainer.restore` on the driver, then on the workers if started."""
        exact = super().restore(ckpt, data_position)
        if self._actors:
            self._last = Trainer.checkpoint(self)
            self._push(self._last)
        return exact
