"""Training of language models (sampling is :mod:`rnncore.decode`).

- :class:`Trainer`, :class:`TrainConfig`, :class:`TrainResult`: truncated BPTT
  with clipping, schedules, validation, checkpoints, early stopping and exact
  resume.
- :class:`MetricsLog`, :func:`read_metrics`: the ``metrics.csv`` of a run;
  :func:`plot_losses` draws it (with matplotlib).
- :func:`claim_run_dir`, :func:`is_run_dir`: which directories a run may
  write into (never one holding other files, never through a symbolic link).

Text from a trained model: :func:`rnncore.decode.sample_text`.
"""

from __future__ import annotations

from rnncore.train.config import TrainConfig
from rnncore.train.metrics import MetricsLog, read_metrics
from rnncore.train.plotting import plot_losses
from rnncore.train.rundir import claim_run_dir, is_run_dir
from rnncore.train.trainer import Trainer, TrainResult

__all__ = [
    "MetricsLog",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "claim_run_dir",
    "is_run_dir",
    "plot_losses",
    "read_metrics",
]
