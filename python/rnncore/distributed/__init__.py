"""Training beyond one process, on Ray (``pip install 'rnncore[ray]'``).

- :class:`DataParallelTrainer`: synchronous data-parallel training; ``W``
  workers on their own rows of the ``N`` streams, gradients summed in a fixed
  order every step; same results and checkpoints as :class:`rnncore.train.Trainer`.
- :func:`sweep`: independent training runs as Ray tasks, a table back, best first.
- :func:`train_ensemble`: ``K`` members with different seeds, as an
  :class:`rnncore.decode.Ensemble`.
- :func:`connect`, :func:`disconnect`: a local Ray instance or an existing cluster.
"""

from __future__ import annotations

try:
    import ray  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "rnncore.distributed needs Ray, which is not installed: pip install 'rnncore[ray]'"
    ) from err

from rnncore.distributed.cluster import connect, disconnect
from rnncore.distributed.shard import shard_rows
from rnncore.distributed.sweep import SweepRow, format_table, sweep, train_ensemble
from rnncore.distributed.trainer import DataParallelTrainer, WorkerLostError

__all__ = [
    "DataParallelTrainer",
    "SweepRow",
    "WorkerLostError",
    "connect",
    "disconnect",
    "format_table",
    "shard_rows",
    "sweep",
    "train_ensemble",
]
