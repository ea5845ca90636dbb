"""The command-line parts of :mod:`rnncore.distributed`: ``rnncore train
--workers W [--ray-address ADDR]`` and ``rnncore sweep --grid grid.json``.
Ray is imported only when one of them runs, so ``rnncore --help`` works
without it.

A grid file is JSON: a list of configs (dicts of ``rnncore train`` settings,
each with an optional ``"name"``), or ``{"base": {...}, "grid": {"setting":
[values], ...}}`` for every combination of the grid's values over the base.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from rnncore.errors import ArgumentError

__all__ = ["add_sweep_parser", "add_train_options", "data_parallel_trainer", "grid_configs"]

MAX_GRID_BYTES = 1 << 20  # a grid file is settings, not data
MAX_RUNS = 10_000


def add_train_options(t: argparse.ArgumentParser) -> None:
    """``--workers`` and ``--ray-address`` of ``rnncore train``."""
    t.add_argument("--workers", type=int, help="data-parallel workers on Ray (needs rnncore[ray])")
    t.add_argument("--ray-address", help="Ray cluster HOST:PORT (default: a local Ray instance)")


def add_sweep_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``sweep`` subcommand."""
    s = sub.add_parser("sweep", help="train many configurations as Ray tasks (rnncore[ray])")
    s.add_argument("--grid", required=True, help="JSON file: configs, or base and grid")
    s.add_argument("--out", default="rnncore-sweep", help="one subdirectory per run")
    s.add_argument("--threads-per-run", type=int, default=1, help="CPUs of each run")
    s.add_argument("--ray-address", help="Ray cluster HOST:PORT (default: a local Ray instance)")
    s.set_defaults(run=run_sweep)
    return s


def _ray_module() -> Any:
    try:
        import rnncore.distributed as distributed
    except ImportError as err:
        raise ArgumentError(f"{err}") from None
    return distributed


def grid_configs(doc: Any) -> list[dict[str, Any]]:
    """The configs of a grid document (see the module docstring)."""
    if isinstance(doc, list):
        if not all(isinstance(c, dict) for c in doc):
            raise ArgumentError("a grid list must hold dicts of settings")
        return doc
    if not isinstance(doc, dict) or set(doc) - {"base", "grid"}:
        raise ArgumentError('a grid must be a list of configs or {"base": {...}, "grid": {...}}')
    base, grid = doc.get("base", {}), doc.get("grid", {})
    if not isinstance(base, dict) or not isinstance(grid, dict):
        raise ArgumentError('"base" and "grid" must be objects')
    if not all(isinstance(v, list) and v for v in grid.values()):
        raise ArgumentError('every "grid" entry must be a non-empty list of values')
    keys = list(grid)
    runs = 1
    for k in keys:
        runs *= len(grid[k])
    if runs > MAX_RUNS:
        raise ArgumentError(f"the grid has {runs} runs, more than {MAX_RUNS}")
    configs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        config = {**base, **dict(zip(keys, values))}
        label = "-".join(f"{k}={v}" for k, v in zip(keys, values)) or "base"
        config.setdefault("name", label.replace("/", "_"))
        configs.append(config)
    return configs


def run_sweep(args: argparse.Namespace) -> int:
    """``rnncore sweep``: run the grid, print the table and write ``sweep.json``."""
    path = Path(args.grid)
    if path.stat().st_size > MAX_GRID_BYTES:
        raise ArgumentError(f"--grid {path}: larger than {MAX_GRID_BYTES} bytes")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ArgumentError(f"--grid {path}: not JSON ({err})") from None
    configs = grid_configs(doc)
    distributed = _ray_module()
    rows = distributed.sweep(
        configs, args.out, threads_per_run=args.threads_per_run, address=args.ray_address
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = [dict(vars(r)) for r in rows]
    (out / "sweep.json").write_text(json.dumps(table, indent=1), encoding="utf-8")
    print(distributed.format_table(rows))
    return 0 if all(r.error is None for r in rows) else 1


def data_parallel_trainer(args: argparse.Namespace, *parts: Any, **kwargs: Any) -> Any:
    """A :class:`~rnncore.distributed.DataParallelTrainer` for ``rnncore train
    --workers``; ``parts`` and ``kwargs`` are the Trainer's arguments."""
    if args.workers < 1:
        raise ArgumentError(f"--workers must be >= 1, got {args.workers}")
    distributed = _ray_module()
    try:
        return distributed.DataParallelTrainer(
            *parts, **kwargs, workers=args.workers, address=args.ray_address
        )
    except ArgumentError as err:
        raise ArgumentError(f"--workers: {err}") from None
