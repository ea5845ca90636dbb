"""The command-line flags every training command shares (``rnncore train``,
``rnncore seq2seq train``): limits, validation, checkpoints and the run directory.
Each command adds its model's own flags and keeps its own defaults table."""

from __future__ import annotations

import argparse

__all__ = ["add_run_options"]


def add_run_options(t: argparse.ArgumentParser, default_out: str) -> None:
    """Add the shared flags to ``t``; ``default_out`` is the run directory
    without ``--out``. Every flag defaults to None: "not given"."""
    t.add_argument("--max-epochs", type=int, help="epochs to train (default 10 if no other limit)")
    t.add_argument("--max-steps", type=int, help="total steps to train")
    t.add_argument("--minutes", type=float, help="time budget of this run")
    t.add_argument("--eval-every", type=int, help="steps between validations (default 200)")
    t.add_argument("--checkpoint-every", type=int, help="steps between saves of latest/")
    t.add_argument("--patience", type=int, help="stop after this many validations without gain")
    t.add_argument("--val-fraction", type=float, help="validation part (default 0.05)")
    t.add_argument("--test-fraction", type=float, help="test part (default 0.05)")
    t.add_argument("--seed", type=int, help="seed of weights, dropout and data order (default 0)")
    t.add_argument("--dtype", choices=["float32", "float64"])
    t.add_argument("--out", help=f"output directory (default: {default_out})")
    t.add_argument(
        "--force",
        action="store_true",
        help="write into --out although it holds an earlier run or other files (kept)",
    )
    t.add_argument("--init-from", help="checkpoint (or run directory: its latest/) to continue")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
