"""Schedules: pure functions of a step or epoch. The learning rate's (step decay,
cosine) and scheduled sampling's teacher-forcing probability.

A schedule holds no state: ``opt.lr = schedule.lr_at(base_lr, epoch)`` before each
step (or epoch) gives the same rate after a checkpoint restore as before it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from rnncore import _validate
from rnncore.errors import ArgumentError
from rnncore.optim._base import non_negative

__all__ = ["SAMPLING_DECAYS", "Cosine", "SamplingSchedule", "StepDecay"]


def _count(name: str, value: Any) -> int:
    """``value`` as an ``int >= 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ArgumentError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class StepDecay:
    """Multiply the rate by ``factor`` every ``every`` epochs from epoch ``start`` on.

    ``lr_at(base_lr, epoch) = base_lr * factor ** k`` where ``k`` counts the decay
    epochs ``start, start + every, start + 2 * every, ...`` that are ``<= epoch``.
    The default ``start = every`` is :class:`torch.optim.lr_scheduler.StepLR`;
    char-rnn's ``learning_rate_decay=0.97, learning_rate_decay_after=10`` is
    ``StepDecay(every=1, factor=0.97, start=10)``. ``epoch`` may be fractional
    (it is floored), as char-rnn's is.
    """

    every: int  # decay period in epochs, >= 1
    factor: float  # multiplier per decay, in [0, 1] for a decay
    start: int | None = None  # first decay epoch; None means `every` (torch's StepLR)

    def __post_init__(self) -> None:
        _validate.positive_int("every", self.every)
        non_negative("factor", self.factor)
        if self.start is not None:
            _count("start", self.start)

    def decays(self, epoch: float) -> int:
        """How many decays have happened by ``epoch``."""
        epoch = non_negative("epoch", epoch)
        start = self.every if self.start is None else self.start
        whole = math.floor(epoch)
        return 0 if whole < start else (whole - start) // self.every + 1

    def lr_at(self, base_lr: float, epoch: float) -> float:
        """The rate for ``epoch`` (0-based) given the initial rate ``base_lr``."""
        return non_negative("base_lr", base_lr) * self.factor ** self.decays(epoch)


@dataclass(frozen=True)
class Cosine:
    """Linear warm-up, then a half cosine from ``base_lr`` down to ``min_lr``.

    For step ``s`` (0-based): ``base_lr * (s + 1) / warmup`` while ``s < warmup``;
    then ``min_lr + (base_lr - min_lr) * (1 + cos(pi * r)) / 2`` with
    ``r = (s - warmup) / (total_steps - warmup)``; ``min_lr`` from ``total_steps`` on.
    """

    total_steps: int  # length of the schedule in steps, >= 1
    warmup: int = 0  # steps of linear warm-up at the start, < total_steps
    min_lr: float = 0.0  # the rate at the end (and after it)

    def __post_init__(self) -> None:
        _validate.positive_int("total_steps", self.total_steps)
        _count("warmup", self.warmup)
        if self.warmup >= self.total_steps:
            raise ArgumentError(
                f"warmup must be less than total_steps={self.total_steps}, got {self.warmup}"
            )
        non_negative("min_lr", self.min_lr)

    def lr_at(self, base_lr: float, step: int) -> float:
        """The rate for ``step`` (0-based) given the peak rate ``base_lr``."""
        base_lr = non_negative("base_lr", base_lr)
        step = _count("step", step)
        if step < self.warmup:
            return base_lr * (step + 1) / self.warmup
        if step >= self.total_steps:
            return self.min_lr
        r = (step - self.warmup) / (self.total_steps - self.warmup)
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * r))


SAMPLING_DECAYS = ("linear", "exponential", "inverse_sigmoid")


@dataclass(frozen=True)
class SamplingSchedule:
    """Scheduled sampling (Bengio et al. 2015): the probability ``eps_i`` that a
    decoder step of training step ``i`` reads the true previous symbol (teacher
    forcing) decays, and with ``1 - eps_i`` it reads the model's own prediction.

    - ``linear``: ``eps_i = max(floor, 1 - i / k)``  (``k`` steps to the floor);
    - ``exponential``: ``eps_i = max(floor, k ** i)``  (``0 < k < 1``);
    - ``inverse_sigmoid``: ``eps_i = max(floor, k / (k + exp(i / k)))``  (``k >= 1``).

    ``floor`` keeps some teacher forcing to the end (Bengio et al.'s minimum).
    """

    decay: str  # 'linear' | 'exponential' | 'inverse_sigmoid'
    k: float  # the decay's speed (see above)
    floor: float = 0.0  # the lowest teacher-forcing probability, in [0, 1)

    def __post_init__(self) -> None:
        _validate.choice("sampling decay", self.decay, SAMPLING_DECAYS)
        k = self.k
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k):
            raise ArgumentError(f"sampling_k must be a finite number, got {k!r}")
        valid = {"linear": k > 0, "exponential": 0 < k < 1, "inverse_sigmoid": k >= 1}
        if not valid[self.decay]:
            need = {"linear": "> 0", "exponential": "in (0, 1)", "inverse_sigmoid": ">= 1"}
            raise ArgumentError(f"sampling_k must be {need[self.decay]} for {self.decay}, got {k}")
        _validate.probability("sampling_floor", self.floor)

    def teacher_prob(self, step: int) -> float:
        """``eps_i``: the probability of the true previous symbol at ``step``."""
        i = _count("step", step)
        if self.decay == "linear":
            eps = 1.0 - i / self.k
        elif self.decay == "exponential":
            eps = self.k**i
        else:  # exp(i / k) overflows far after eps is 0 in float64
            eps = self.k / (self.k + math.exp(min(i / self.k, 700.0)))
        return max(self.floor, eps)

    def sampling_prob(self, step: int) -> float:
        """``1 - eps_i``: the probability of the model's own prediction at ``step``."""
        return 1.0 - self.teacher_prob(step)
