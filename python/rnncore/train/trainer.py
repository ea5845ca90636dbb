"""The training loop: truncated BPTT over a stream batcher, or batches of
independent examples, with checkpoints.

One step reads the next chunk ``(N, T)`` of the training stream, computes the
loss from the recurrent state carried over from the previous chunk (reset at
the start of each epoch), backpropagates within the chunk, guards against
non-finite values, clips, sets the scheduled learning rate and updates::

    batch = batcher.next_batch()                       # (N, T) inputs, targets
    loss, state = model.loss(batch.inputs, batch.targets, state)
    model.backward(); clip(model.grads); opt.step(model.grads)

Every ``eval_every`` steps the validation part is read once (state carried
within the pass) and a new best is saved to ``best/``; every
``checkpoint_every`` steps (and at the end) everything needed to continue is
saved to ``latest/``. When the run stops, the final weights are validated too
(unless that step just was): with ``eval_every`` on, that loss is logged,
plotted and considered for ``best/`` like any other. A run restored from
``latest/`` continues bit for bit as if it had never stopped: the weights,
optimizer state, carried state, batcher position, dropout generator, guard
counters and pending log sums are all saved.
On an :class:`~rnncore.data.ExampleBatcher` (classifiers, taggers, sequence to
sequence, captioning) a step is ``loss = model.loss(*batch.args)`` and
``backward()``, with nothing carried from one batch to the next, and a pass over
a part is the mean over its batches weighted by ``batch.symbols``; the same
validation, keep-best, early stopping, checkpoints and exact resume apply.
The trainer knows the model only through ``loss``, ``backward``, ``grads``,
``zero_grad``, ``state_dict``/``load_state_dict``, ``train``/``eval``, ``rng``
and ``config``. Where the model, the optimizer and the config allow it, a step
is one compiled call instead (:func:`rnncore.models.min_char_rnn.fused_train_step`:
min-char-rnn today), with the same result to rounding.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnncore._grad import no_grad
from rnncore.checkpoint.format import (
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    TRAIN_FILE,
    Checkpoint,
    save_checkpoint,
)
from rnncore.checkpoint.kinds import kind_of
from rnncore.checkpoint.model import MODEL_CONFIG_KEY, MODEL_KIND_KEY, VOCAB_KEY, check_tensors
from rnncore.checkpoint.tree import flatten, unflatten
from rnncore.data.stream import StreamBatcher
from rnncore.errors import ArgumentError, CheckpointError, DivergedError, RnnCoreError
from rnncore.models.min_char_rnn import fused_train_step
from rnncore.optim import (
    Cosine,
    NonFiniteGuard,
    StepDecay,
    clip_grad_norm_,
    clip_grad_value_,
    global_norm,
)
from rnncore.train.config import TrainConfig
from rnncore.train.interrupt import StopRequest
from rnncore.train.metrics import MetricsLog
from rnncore.train.plotting import plot_losses
from rnncore.train.progress import Progress
from rnncore.train.rundir import claim_run_dir

__all__ = ["TrainResult", "Trainer"]

TRAINER_KEY = "trainer"
NEARLY_ALWAYS_CLIPPED = 0.95  # warn when at least this fraction of steps is clipped ...
CLIP_WARN_AFTER = 100  # ... over at least this many steps


def _fresh_log() -> dict[str, Any]:
    """Sums since the last metrics row: losses, gradient norms, clipped steps."""
    return {
        "loss_sum": 0.0,
        "steps": 0,
        "norm_sum": 0.0,
        "norm_steps": 0,
        "clipped": 0,
        "all_steps": 0,
    }


class _Interrupted(Exception):
    """A stop was requested (Ctrl-C, SIGTERM) during a validation or test pass."""


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did."""

    steps: int  # steps done in total, counting those before a resume
    epoch: int  # epoch of the next training chunk
    stop_reason: str  # "max_steps", "max_epochs", "minutes", "patience" or "interrupted"
    last_train_loss: float | None  # loss of the last step (None if it was skipped or none ran)
    best_val_loss: float | None  # best scheduled validation loss so far
    final_val_loss: float | None  # validation loss of the final weights (None: no val part)
    seconds: float  # wall-clock time of this call
    test_loss: float | None = None  # test loss of the final weights (None: no test part,
    # or interrupted); the test part is read only here, once, at the end of a run


class Trainer:
    """Train ``model`` with ``optimizer`` on ``batcher`` as ``config`` says.

    Args:
        model: any model with ``loss``/``backward`` (see the module docstring).
        optimizer: an :class:`rnncore.optim.Optimizer` over the model's parameters;
            its current ``lr`` is the base rate of the schedule.
        batcher: the :class:`~rnncore.data.StreamBatcher` of a corpus (the state
            is carried across chunks), or an :class:`~rnncore.data.ExampleBatcher`.
        config: the :class:`TrainConfig`.
        vocab: the vocabulary, stored in checkpoints for sampling (optional).
        extra: more JSON-ready data to store in checkpoints (e.g. how the CLI
            built the run).
    """

    def __init__(
        self,
        model: Any,
        optimizer: Any,
        batcher: StreamBatcher,
        config: TrainConfig | None = None,
        vocab: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if getattr(model, "decodes_only", False) is True:
            raise ArgumentError(
                f"model: a {type(model).__name__} decodes only; train the model it was "
                "compiled from"
            )
        self.model, self.optimizer, self.batcher = model, optimizer, batcher
        self.config = config or TrainConfig()
        # a stream batcher carries the state from chunk to chunk (truncated BPTT);
        # an ExampleBatcher's batches stand alone
        self._streams = bool(getattr(batcher, "carries_state", True))
        if not self._streams and self.config.loss_reduction != "mean":
            raise ArgumentError("loss_reduction='sum' is for language models on a stream")
        self._sampling = self.config.sampling_schedule()  # None: teacher forcing
        if self._sampling is not None:
            if not getattr(model, "samples_inputs", False) or self._streams:
                raise ArgumentError(
                    "scheduled sampling is for attention decoders trained on examples "
                    f"(Seq2Seq); a {type(model).__name__} on a {type(batcher).__name__} "
                    "has none"
                )
        self.vocab, self.extra = vocab, dict(extra or {})
        self.base_lr = float(optimizer.lr)
        self.guard = NonFiniteGuard(self.config.max_nonfinite)
        self.step = 0  # steps done
        self.state: Any = None  # recurrent state carried into the next chunk
        self.best_val_loss: float | None = None
        self.evals_since_best = 0  # validations without a new best
        self._log = _fresh_log()  # train losses and gradient norms since the last metrics row
        self._clip_count = [0, 0]  # [steps, clipped steps] of this process, for the warning
        self._warned: set[str] = set()
        self._resumed_at: int | None = None  # step restored from a checkpoint

    # ------------------------------------------------------------------ one step

    def lr_at(self, epoch: int, step: int) -> float:
        """The scheduled learning rate of ``step`` in ``epoch``."""
        cfg = self.config
        if cfg.cosine:
            return Cosine(cfg.max_steps, cfg.warmup_steps, cfg.min_lr).lr_at(self.base_lr, step)
        decay = StepDecay(cfg.lr_decay_every, cfg.lr_decay, cfg.lr_decay_after)
        return decay.lr_at(self.base_lr, epoch)

    def train_step(self) -> tuple[float | None, int, int]:
        """One chunk: ``(loss or None if skipped, symbols read, epoch of the chunk)``."""
        batch = self.batcher.next_batch()
        if not self._streams:
            return self._example_step(batch)
        if batch.index == 0:
            self.state = None  # the streams start over
        self.optimizer.lr = self.lr_at(batch.epoch, self.step)
        self.model.train()
        self.model.zero_grad()
        fused = self._fused_step(batch.inputs, batch.targets)
        if fused is not None:  # loss, gradients, clip and update in one call
            loss, state, updated = fused
            loss = loss / batch.inputs.size
        elif self.config.loss_reduction == "sum":  # min-char-rnn's loss; reported per symbol
            loss, state = self.model.loss(batch.inputs, batch.targets, self.state, reduction="sum")
            loss = loss / batch.inputs.size
        else:
            loss, state = self.model.loss(batch.inputs, batch.targets, self.state)
        if fused is None:
            self.model.backward()
        self.step += 1
        if fused is not None:  # clipped and updated inside the kernel
            # (its norm before clipping is not seen, so grad_norm and
            # clipped_frac count the other steps only)
            applied = self.guard.screen(loss, self.model.grads, self.optimizer.lr)
            if applied and not updated:  # finite gradients, an update that could overflow
                reason = "the update could leave a weight non-finite; it was not made"
                applied = self.guard.skip(reason, self.optimizer.lr)
            elif applied:
                self.guard.passed()
            if not applied:
                self._record_norm(global_norm(self.model.grads), False)
        else:
            applied = self.apply_gradients(loss, self.model.grads)
        if not applied:
            self.state = None  # do not carry a state that produced NaN
            return None, batch.inputs.size, batch.epoch
        self.state = state
        return float(loss), batch.inputs.size, batch.epoch

    def _example_step(self, batch: Any) -> tuple[float | None, int, int]:
        """One step on a batch of independent examples: ``model.loss(*batch.args)``
        (a mean over ``batch.symbols``), backward and the update; no state carried."""
        self.optimizer.lr = self.lr_at(batch.epoch, self.step)
        self.model.train()
        self.model.zero_grad()
        loss = self.model.loss(*batch.args, **self._loss_options())
        self.model.backward()
        self.step += 1
        if not self.apply_gradients(loss, self.model.grads):
            return None, batch.symbols, batch.epoch
        return float(loss), batch.symbols, batch.epoch

    def _loss_options(self) -> dict[str, Any]:
        """Keywords of a training ``loss`` call: the scheduled-sampling
        probability of this step, when a schedule is set."""
        if self._sampling is None:
            return {}
        return {"sampling_prob": self._sampling.sampling_prob(self.step)}

    def apply_gradients(self, loss: float, grads: dict[str, np.ndarray]) -> bool:
        """The update of one step from its loss and gradients (name -> array):
        the non-finite guard, clipping (in place), the gradient-norm metrics and
        the optimizer step. Returns False if the guard skipped the step.
        Data-parallel workers call it with the gradients summed over all of them."""
        if not self.guard.screen(loss, grads, self.optimizer.lr):
            self._record_norm(global_norm(grads), False)
            return False
        clipped = False
        if self.config.grad_clip_norm is not None:
            norm = clip_grad_norm_(grads, self.config.grad_clip_norm)
            clipped = self.config.grad_clip_norm / (norm + 1e-6) < 1  # as clip_grad_norm_
        else:
            norm = global_norm(grads)
        if self.config.grad_clip_value is not None:
            limit = self.config.grad_clip_value
            clipped = clipped or any(bool((np.abs(g) > limit).any()) for g in grads.values())
            clip_grad_value_(grads, limit)
        self._record_norm(norm, clipped)
        return self.guard.step(self.optimizer, grads)  # undone if it overflows

    def _fused_step(self, inputs: Any, targets: Any) -> tuple[float, Any, bool] | None:
        """The step as one compiled call when the model, the optimizer and the
        config allow it (min-char-rnn: summed loss, entries clipped, Adagrad),
        else None. Same result as the step through the layers, to rounding."""
        cfg = self.config
        if cfg.loss_reduction != "sum" or cfg.grad_clip_value is None or cfg.grad_clip_norm:
            return None
        return fused_train_step(
            self.model, self.optimizer, inputs, targets, self.state, cfg.grad_clip_value
        )

    def _record_norm(self, norm: float, clipped: bool) -> None:
        """Add a step's gradient norm (before clipping) to the metrics sums; warn
        once if it is not finite, and once if nearly every step is clipped."""
        if not math.isfinite(norm):
            self._warn_once(
                "nonfinite",
                f"the gradient norm is not finite at step {self.step}; the step was "
                "skipped (lower the learning rate, or clip the gradients)",
            )
        else:
            self._log["norm_sum"] += norm
            self._log["norm_steps"] += 1
        self._log["clipped"] += int(clipped)
        self._log["all_steps"] += 1
        self._clip_count[0] += 1
        self._clip_count[1] += int(clipped)
        steps, hits = self._clip_count
        if steps >= CLIP_WARN_AFTER and hits >= NEARLY_ALWAYS_CLIPPED * steps:
            self._warn_once(
                "clipped",
                f"clipping was active in {hits} of the last {steps} steps: the gradient "
                "norm is nearly always above the limit (raise the limit or lower the "
                "learning rate; metrics.csv has grad_norm)",
            )

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def evaluate(self, split: str = "val") -> float | None:
        """Mean loss per symbol over ``split`` (state carried through the pass),
        or None if the part is too short for one chunk. Leaves the model's
        generator and training state as they were."""
        count = self.batcher.num_chunks(split)
        if self.config.max_val_chunks is not None:
            count = min(count, self.config.max_val_chunks)
        if count == 0:
            return None
        rng_state = self.model.rng.bit_generator.state
        self.model.eval()
        total, symbols, state = 0.0, 0, None
        stop = getattr(self, "_stop_request", None)  # set while fit() runs
        with no_grad():  # no backward follows: the layers' inference path
            try:
                for k in range(count):
                    if stop is not None and stop.signal is not None:
                        raise _Interrupted  # Ctrl-C during a pass: fit() ends the run
                    if self._streams:
                        inputs, targets = self.batcher.chunk(split, k)  # (N, T')
                        loss, state = self.model.loss(inputs, targets, state)
                        weight = inputs.size
                    else:  # independent examples: a mean over batch.symbols each
                        batch = self.batcher.chunk(split, k)
                        loss, weight = self.model.loss(*batch.args), batch.symbols
                    total += float(loss) * weight
                    symbols += weight
            finally:
                self.model.train()
                self.model.rng.bit_generator.state = rng_state
        return total / symbols

    # ------------------------------------------------------------------ the loop

    def _stop_reason(self, started: float) -> str | None:
        cfg = self.config
        if cfg.max_steps is not None and self.step >= cfg.max_steps:
            return "max_steps"
        if cfg.max_epochs is not None and self.batcher.epoch >= cfg.max_epochs:
            return "max_epochs"
        if cfg.minutes is not None and time.perf_counter() - started >= 60.0 * cfg.minutes:
            return "minutes"
        if cfg.patience is not None and self.evals_since_best >= cfg.patience:
            return "patience"
        return None

    def _validate(self) -> tuple[float | None, bool]:
        """A scheduled validation: ``(val loss or None, whether it is a new best)``."""
        val = self.evaluate("val")
        if val is None:
            return None, False
        if self.best_val_loss is None or val < self.best_val_loss:
            self.best_val_loss, self.evals_since_best = val, 0
            return val, True
        self.evals_since_best += 1
        return val, False

    def _total_steps(self) -> int | None:
        cfg = self.config
        by_epochs = None
        if cfg.max_epochs is not None:
            by_epochs = cfg.max_epochs * self.batcher.num_chunks("train")
        limits = [n for n in (cfg.max_steps, by_epochs) if n is not None]
        return min(limits) if limits and cfg.minutes is None else None

    def _write_row(
        self, log: MetricsLog | None, epoch: int, val: float | None, speed: float
    ) -> None:
        """Append a metrics row with the mean train loss since the last one."""
        lg = self._log
        steps = lg["steps"]
        mean = lg["loss_sum"] / steps if steps else None
        norm = lg["norm_sum"] / lg["norm_steps"] if lg["norm_steps"] else None
        tried = lg["all_steps"]  # steps since the last row, skipped ones included
        clipped = lg["clipped"] / tried if tried else None
        if log is not None:
            log.write(self.step, epoch, mean, val, self.optimizer.lr, speed, norm, clipped)
        self._log = _fresh_log()

    def fit(self) -> TrainResult:
        """Train until a limit of the config is reached; returns what happened.

        Ctrl-C (SIGINT) or SIGTERM in the main thread ends the run after the
        step in progress: ``latest/`` is saved (atomically; resuming from it is
        exact) and the result's ``stop_reason`` is ``"interrupted"``, without the
        final validation. A second signal raises ``KeyboardInterrupt`` at once.
        """
        cfg = self.config
        out = None
        if cfg.out_dir:
            out = claim_run_dir(cfg.out_dir, continuing=True, force=True, what="out_dir")
        log = MetricsLog(out / "metrics.csv", self._resumed_at) if out else None
        started = time.perf_counter()
        progress = Progress(self._total_steps(), self.step, cfg.progress)
        saved_at, last_loss, reason = -1, None, None
        validated: tuple[int, float | None] = (-1, None)  # the last scheduled validation
        row_time, row_symbols, run_symbols = started, 0, 0  # for the speeds shown
        request = self._stop_request = StopRequest()
        request.install()  # Ctrl-C or SIGTERM: end after this step, save latest/
        try:
            try:
                while (reason := request.reason or self._stop_reason(started)) is None:
                    try:
                        loss, symbols, epoch = self.train_step()
                    except DivergedError as err:  # every bad step was skipped: the weights are good
                        if out is None:
                            raise
                        self.save(out / "latest")
                        raise DivergedError(
                            f"{err}; {out / 'latest'} holds the weights of the last good step: "
                            "continue from it with a lower learning rate"
                        ) from None
                    last_loss = loss
                    if loss is not None:
                        self._log["loss_sum"] += loss
                        self._log["steps"] += 1
                    row_symbols += symbols
                    run_symbols += symbols
                    val, improved = None, False
                    if cfg.eval_every and self.step % cfg.eval_every == 0:
                        val, improved = self._validate()
                        validated = (self.step, val)
                        if val is not None:
                            progress.write(f"step {self.step} (epoch {epoch}): val loss {val:.4f}")
                    now = time.perf_counter()
                    speed = row_symbols / max(now - row_time, 1e-9)  # since the last row
                    if self.step % cfg.log_every == 0 or val is not None:
                        self._write_row(log, epoch, val, speed)
                        row_time, row_symbols = now, 0
                    if out is not None and improved:
                        self.save(out / "best")
                    if out is not None and cfg.save_every and self.step % cfg.save_every == 0:
                        self.save(out / "latest")
                        saved_at = self.step
                    progress.update(1, loss, run_symbols / max(now - started, 1e-9))
            except _Interrupted:  # a signal during a scheduled validation
                reason = "interrupted"  # (the step itself is done)
            if out is not None and saved_at != self.step:
                self.save(out / "latest")  # before the final validation: resumes exactly
            final_val = test = None
            if reason != "interrupted":
                try:
                    final_val = self._final_validation(log, out, validated)
                    test = self.evaluate("test")
                except _Interrupted:  # during the last passes: latest/ is saved already
                    reason = "interrupted"
            interrupted = reason == "interrupted"
        finally:
            request.restore()
            self._stop_request = None
            progress.close()
            if log is not None:
                log.close()
        if out is not None and cfg.plot and not interrupted:
            plot_losses(out / "metrics.csv", out / "loss.png")
        return TrainResult(
            steps=self.step,
            epoch=self.batcher.epoch,
            stop_reason=reason,
            last_train_loss=last_loss,
            best_val_loss=self.best_val_loss,
            final_val_loss=final_val,
            seconds=time.perf_counter() - started,
            test_loss=test,
        )

    def _final_validation(
        self, log: MetricsLog | None, out: Path | None, validated: tuple[int, float | None]
    ) -> float | None:
        """The validation loss of the final weights, or None without a val part.

        Unless the last step was validated on schedule, it is computed now and,
        if scheduled validations are on (``eval_every``), written to
        ``metrics.csv`` as a final-validation row (so the plot shows it) and
        compared with the best: the final model goes to ``best/`` if it is
        better. ``latest/`` is written before, so a resumed run continues as if
        it had not stopped (its patience counter does not see this validation).
        """
        if validated[0] == self.step:
            return validated[1]  # the last step was validated on schedule
        val = self.evaluate("val")
        if val is None or not self.config.eval_every:
            return val  # validation is off: only reported
        if log is not None:
            log.write(self.step, self.batcher.epoch, None, val, self.optimizer.lr, None)
        if self.best_val_loss is None or val < self.best_val_loss:
            self.best_val_loss = val
            if out is not None:
                self.save(out / "best")
        return val

    # ------------------------------------------------------------ checkpoints

    def checkpoint(self) -> Checkpoint:
        """Everything needed to continue this run exactly."""
        opt_tensors, opt_meta = self.optimizer.state_dict()
        carried, spec = flatten("state", self.state)
        trainer = {
            "step": self.step,
            "base_lr": self.base_lr,
            "lr": self.optimizer.lr,
            "best_val_loss": self.best_val_loss,
            "evals_since_best": self.evals_since_best,
            "batcher": self.batcher.state_dict(),
            "carried_state": spec,
            "model_rng": self.model.rng.bit_generator.state,
            "guard": self.guard.state_dict(),
            "log": dict(self._log),
        }
        state = {
            MODEL_KIND_KEY: kind_of(self.model),
            MODEL_CONFIG_KEY: dataclasses.asdict(self.model.config),
            VOCAB_KEY: self.vocab.to_dict() if self.vocab is not None else None,
            "optimizer": {"meta": opt_meta},
            "train_config": dataclasses.asdict(self.config),
            TRAINER_KEY: trainer,
            "extra": self.extra,
        }
        weights = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        return Checkpoint(model=weights, optimizer=opt_tensors, train=carried, state=state)

    def save(self, path: str | Path) -> Path:
        """Write :meth:`checkpoint` to directory ``path`` atomically."""
        return save_checkpoint(path, self.checkpoint())

    def restore(self, ckpt: Checkpoint, data_position: bool = True) -> bool:
        """Continue from ``ckpt``: weights, optimizer, counters, generator, and,
        if ``data_position`` and the batcher reads the same data the same way,
        the batcher position and carried state. Returns whether the data
        position was restored (the resume is then exact)."""

        def named(file: str) -> str:
            return str(ckpt.path / file) if ckpt.path else file

        where = named(STATE_FILE)
        check_tensors(named(MODEL_FILE), ckpt.model, dict(self.model.state_dict()))
        t, opt = ckpt.state.get(TRAINER_KEY), ckpt.state.get("optimizer")
        meta = opt.get("meta") if isinstance(opt, dict) else None
        if not isinstance(t, dict) or not isinstance(meta, dict):
            raise CheckpointError(f"{where}: no training state (not written by a Trainer?)")
        try:
            self.optimizer.load_state_dict(ckpt.optimizer, meta)
        except CheckpointError as err:
            raise CheckpointError(f"{named(OPTIMIZER_FILE)}: {err}") from None
        try:
            self.model.load_state_dict(ckpt.model)
            self.model.rng.bit_generator.state = t["model_rng"]
            self.guard.load_state_dict(t["guard"])
            self.step, self.base_lr = int(t["step"]), float(t["base_lr"])
            best = t["best_val_loss"]
            self.best_val_loss = None if best is None else float(best)
            self.evals_since_best = int(t["evals_since_best"])
            log = t["log"]
            self._log = _fresh_log()
            self._log.update(
                loss_sum=float(log["loss_sum"]),
                steps=int(log["steps"]),
                norm_sum=float(log.get("norm_sum", 0.0)),  # absent before grad_norm was logged
                norm_steps=int(log.get("norm_steps", 0)),
                clipped=int(log.get("clipped", 0)),
                all_steps=int(log.get("all_steps", 0)),
            )
            exact = data_position and self.batcher.compatible(t["batcher"])
            if exact:
                self.batcher.load_state_dict(t["batcher"])
                self.state = unflatten("state", ckpt.train, t["carried_state"], named(TRAIN_FILE))
            else:
                self.state = None
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, RnnCoreError) as err:
            raise CheckpointError(f"{where}: invalid training state ({err!r})") from None
        self._resumed_at = self.step
        return exact
