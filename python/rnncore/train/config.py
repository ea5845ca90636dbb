"""The settings of a training run (:class:`TrainConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from rnncore.errors import ArgumentError
from rnncore.optim.schedule import SamplingSchedule

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """How :class:`~rnncore.train.Trainer` trains. A step is one chunk of the
    training stream (``N`` streams of ``T`` symbols), including a step the
    non-finite guard skipped."""

    max_epochs: int | None = 10  # stop before epoch max_epochs starts (None: no limit)
    max_steps: int | None = None  # stop after this many steps in total (None: no limit)
    minutes: float | None = None  # wall-clock budget of this run (None: no limit)
    loss_reduction: str = "mean"  # gradient of the mean ('mean') or summed ('sum') chunk loss
    grad_clip_norm: float | None = 5.0  # rescale gradients to this global L2 norm (None: off)
    grad_clip_value: float | None = None  # then clamp each entry to [-v, v] (None: off)
    lr_decay: float = 1.0  # step decay: lr *= lr_decay every lr_decay_every epochs (1: none)
    lr_decay_every: int = 1  # epochs between two decays
    lr_decay_after: int | None = None  # epoch of the first decay (None: lr_decay_every)
    cosine: bool = False  # use a cosine schedule over max_steps instead of step decay
    warmup_steps: int = 0  # linear warm-up steps of the cosine schedule
    min_lr: float = 0.0  # final learning rate of the cosine schedule
    eval_every: int = 200  # steps between validation passes (0: never)
    checkpoint_every: int | None = None  # steps between saves of latest/ (None: eval_every)
    patience: int | None = None  # stop after this many validations without a new best
    max_val_chunks: int | None = None  # read at most this many val chunks per pass (None: all)
    max_nonfinite: int = 5  # non-finite steps in a row before training stops with an error
    log_every: int = 10  # steps per row of metrics.csv
    out_dir: str | None = None  # directory for latest/, best/, metrics.csv, loss.png
    progress: bool = True  # show a progress bar (only when stderr is a terminal)
    plot: bool = True  # write loss.png at the end when matplotlib is importable
    # scheduled sampling (Seq2Seq on examples): None, or how the teacher-forcing
    # probability decays over the steps, 'linear' | 'exponential' | 'inverse_sigmoid'
    sampling_decay: str | None = None
    sampling_k: float | None = None  # its speed (optim.SamplingSchedule); needed with a decay
    sampling_floor: float = 0.0  # the lowest teacher-forcing probability

    def __post_init__(self) -> None:
        positive = {
            "max_epochs": self.max_epochs,
            "max_steps": self.max_steps,
            "lr_decay_every": self.lr_decay_every,
            "checkpoint_every": self.checkpoint_every,
            "patience": self.patience,
            "max_val_chunks": self.max_val_chunks,
            "max_nonfinite": self.max_nonfinite,
            "log_every": self.log_every,
        }
        for name, value in positive.items():
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ArgumentError(f"{name} must be None or an integer >= 1, got {value!r}")
        if self.lr_decay_after is not None and (
            not isinstance(self.lr_decay_after, int) or self.lr_decay_after < 0
        ):
            raise ArgumentError(f"lr_decay_after must be None or >= 0, got {self.lr_decay_after!r}")
        for name in ("minutes", "grad_clip_norm", "grad_clip_value"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ArgumentError(f"{name} must be None or > 0, got {value!r}")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ArgumentError(f"eval_every must be an integer >= 0, got {self.eval_every!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ArgumentError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")
        if self.loss_reduction not in ("mean", "sum"):
            raise ArgumentError(
                f"loss_reduction must be 'mean' or 'sum', got {self.loss_reduction!r}"
            )
        if not 0 < self.lr_decay <= 1:
            raise ArgumentError(f"lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if self.min_lr < 0:
            raise ArgumentError(f"min_lr must be >= 0, got {self.min_lr!r}")
        if self.cosine and self.max_steps is None:
            raise ArgumentError("the cosine schedule needs max_steps (its length)")
        if self.patience is not None and self.eval_every == 0:
            raise ArgumentError("patience needs validation passes (eval_every >= 1)")
        if self.max_epochs is None and self.max_steps is None and self.minutes is None:
            raise ArgumentError("set at least one of max_epochs, max_steps and minutes")
        if self.sampling_decay is not None:
            if self.sampling_k is None:
                raise ArgumentError("sampling_decay needs sampling_k (the speed of the decay)")
            self.sampling_schedule()  # checks the decay, k and floor
        elif self.sampling_k is not None or self.sampling_floor != 0.0:
            raise ArgumentError("sampling_k and sampling_floor need a sampling_decay")

    def sampling_schedule(self) -> SamplingSchedule | None:
        """The scheduled-sampling schedule of the run, or None (teacher forcing)."""
        if self.sampling_decay is None:
            return None
        return SamplingSchedule(self.sampling_decay, self.sampling_k, self.sampling_floor)  # type: ignore[arg-type]

    @property
    def save_every(self) -> int:
        """Steps between saves of ``latest/`` (0: only at the end)."""
        return self.checkpoint_every if self.checkpoint_every is not None else self.eval_every
