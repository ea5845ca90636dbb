"""Independent training runs as Ray tasks: :func:`sweep` and :func:`train_ensemble`.

A config is a dict of ``rnncore train`` settings, keyed like
:data:`rnncore.cli.DEFAULTS` (``{"rnn_size": 64, "lr": 1e-3}``), plus an
optional ``"name"`` (default ``run-<i>``). Each run is ``rnncore train`` with
those settings, in its own directory ``out_dir/<name>`` (checkpoints,
``metrics.csv``); every config is parsed before any run starts, so a bad one
fails the sweep at once.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray

from rnncore.distributed.cluster import connect, disconnect
from rnncore.errors import ArgumentError

__all__ = ["SweepRow", "config_argv", "format_table", "sweep", "train_ensemble"]


@dataclass
class SweepRow:
    """One run of a sweep."""

    name: str
    config: dict[str, Any]
    out_dir: str
    best_val_loss: float | None = None  # lowest validation loss in metrics.csv
    last_train_loss: float | None = None  # train loss of the last metrics row
    steps: int = 0  # steps trained
    seconds: float = 0.0  # wall time of the run
    error: str | None = None  # why the run failed (None: it did not)
    extra: dict[str, Any] = field(default_factory=dict)


def config_argv(config: dict[str, Any]) -> list[str]:
    """The ``rnncore train`` arguments of one config (without its ``name``)."""
    from rnncore.cli import DEFAULTS

    if not isinstance(config, dict):
        raise ArgumentError(f"a config must be a dict of settings, got {type(config).__name__}")
    argv = []
    for key, value in config.items():
        if key == "name" or (key == "data" and value is None):
            continue
        if key not in DEFAULTS:
            raise ArgumentError(f"unknown setting {key!r} (known: {', '.join(DEFAULTS)})")
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value is not True:
                raise ArgumentError(f"setting {key!r} can only be true, got {value!r}")
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


def _parse(argv: list[str]) -> argparse.Namespace:
    """``rnncore train`` arguments parsed; errors as :class:`ArgumentError`."""
    from rnncore.cli import build_parser

    parser = build_parser()
    parser.exit_on_error = False
    try:
        args = parser.parse_args(["train", *argv])
    except (argparse.ArgumentError, ArgumentError, SystemExit) as err:
        raise ArgumentError(f"invalid settings {' '.join(argv)!r}: {err}") from None
    return args


def _run(argv: list[str], out: str, threads: int) -> dict[str, Any]:
    """One run (in a Ray task): train, then read its metrics."""
    import time

    from rnncore import set_num_threads
    from rnncore.train import read_metrics

    set_num_threads(threads)
    args = _parse([*argv, "--out", out, "--no-progress"])
    started = time.perf_counter()
    args.run(args)
    rows = read_metrics(Path(out) / "metrics.csv")
    vals = [r["val_loss"] for r in rows if r["val_loss"] is not None]
    trains = [r["train_loss"] for r in rows if r["train_loss"] is not None]
    return {
        "best_val_loss": min(vals) if vals else None,
        "last_train_loss": trains[-1] if trains else None,
        "steps": rows[-1]["step"] if rows else 0,
        "seconds": time.perf_counter() - started,
    }


def sweep(
    configs: list[dict[str, Any]],
    out_dir: str | Path = "rnncore-sweep",
    *,
    threads_per_run: int = 1,
    address: str | None = None,
) -> list[SweepRow]:
    """Train every config as its own Ray task; the table, best first.

    Args:
        configs: ``rnncore train`` settings per run (see the module docstring).
        out_dir: each run writes to ``out_dir/<name>``.
        threads_per_run: CPUs (and rnncore threads) of each run.
        address: the cluster to join when Ray is not running (None: local).

    Returns:
        One :class:`SweepRow` per config, sorted by best validation loss (runs
        without one, then failed runs, last). A failed run has ``error`` set;
        the others still finish.
    """
    if not isinstance(configs, list) or not configs:
        raise ArgumentError("configs must be a non-empty list of dicts")
    names = [
        str(c.get("name", f"run-{i}")) if isinstance(c, dict) else "" for i, c in enumerate(configs)
    ]
    bad = [n for n in names if not n or n in (".", "..") or "/" in n or "\\" in n]
    if bad:
        raise ArgumentError(f"config names must be plain directory names, got {bad}")
    if len(set(names)) != len(names):
        raise ArgumentError(f"config names must be unique, got {names}")
    argvs = [config_argv(c) for c in configs]
    for argv in argvs:
        _parse(argv)  # every config is checked before any run starts
    out = Path(out_dir)
    rows = [SweepRow(n, dict(c), str(out / n)) for n, c in zip(names, configs)]
    started = connect(address, None)
    try:
        task = ray.remote(_run).options(num_cpus=threads_per_run, max_retries=0)
        refs = [task.remote(a, r.out_dir, threads_per_run) for a, r in zip(argvs, rows)]
        for row, ref in zip(rows, refs):
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                row.error = str(err.cause if err.cause is not None else err).splitlines()[-1]
                continue
            for key, value in result.items():
                setattr(row, key, value)
    finally:
        disconnect(started)

    def key(r: SweepRow) -> tuple[int, float]:
        if r.error is not None:
            return 2, 0.0
        return (0, r.best_val_loss) if r.best_val_loss is not None else (1, math.inf)

    return sorted(rows, key=key)


def format_table(rows: list[SweepRow]) -> str:
    """The sweep table as aligned text, one run per line."""
    head = ["name", "best_val_loss", "last_train_loss", "steps", "seconds", "settings"]

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    body = [
        [
            r.name,
            num(r.best_val_loss),
            num(r.last_train_loss),
            str(r.steps),
            f"{r.seconds:.1f}",
            r.error or " ".join(f"{k}={v}" for k, v in r.config.items() if k != "name"),
        ]
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head) - 1)]
    lines = []
    for cells in [head, *body]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1])
    return "\n".join(lines)


def train_ensemble(
    settings: dict[str, Any],
    members: int,
    out_dir: str | Path = "rnncore-ensemble",
    *,
    seeds: list[int] | None = None,
    threads_per_run: int = 1,
    address: str | None = None,
    mode: str = "prob",
) -> Any:
    """Train ``members`` models that differ only in their seed, as one sweep,
    and return their best checkpoints as an :class:`rnncore.decode.Ensemble`.

    ``seeds`` defaults to ``settings["seed"] + k`` (0 when unset) for member k;
    member k is written to ``out_dir/member-<k>``.
    """
    from rnncore.checkpoint import load_model
    from rnncore.cli import _find_checkpoint
    from rnncore.decode import Ensemble

    if not isinstance(members, int) or members < 1:
        raise ArgumentError(f"members must be an integer >= 1, got {members!r}")
    if "seed" in settings and seeds is not None:
        raise ArgumentError("pass either settings['seed'] or seeds, not both")
    first = int(settings.get("seed", 0))
    seeds = list(seeds) if seeds is not None else [first + k for k in range(members)]
    if len(seeds) != members or len(set(seeds)) != members:
        raise ArgumentError(f"seeds must be {members} distinct integers, got {seeds}")
    configs = [{**settings, "seed": s, "name": f"member-{k}"} for k, s in enumerate(seeds)]
    rows = sweep(configs, out_dir, threads_per_run=threads_per_run, address=address)
    failed = [f"{r.name}: {r.error}" for r in rows if r.error is not None]
    if failed:
        raise ArgumentError(f"ensemble members failed: {'; '.join(failed)}")
    by_name = {r.name: r for r in rows}
    models = []
    for k in range(members):
        model, _, _ = load_model(_find_checkpoint(by_name[f"member-{k}"].out_dir, "best"))
        models.append(model)
    return Ensemble(models, mode=mode)
