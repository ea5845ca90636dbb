"""``rnncore export``: a checkpoint's model as an ONNX file."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["add_export_parser", "run_export"]


def add_export_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand to the subparsers ``sub``."""
    e = sub.add_parser("export", help="write a checkpoint's model as an ONNX file")
    e.add_argument("--checkpoint", required=True, help="checkpoint or run directory (its best)")
    e.add_argument("--onnx", required=True, help="the .onnx file to write")
    return e


def run_export(args: argparse.Namespace, load: Callable[[str], tuple[Any, Any]]) -> int:
    """Load the model with ``load(path) -> (model, vocab)`` and write it with ``to_onnx``."""
    from rnncore.export import to_onnx

    model, vocab = load(args.checkpoint)
    try:
        to_onnx(model, args.onnx)
    except ImportError as err:
        print(f"rnncore: error: {err}", file=sys.stderr)
        return 2
    inputs = "ids (N, T) int64, h0" + (", c0" if model.config.cell == "lstm" else "")
    print(f"wrote {args.onnx}: inputs {inputs}; outputs logits (N, T, {len(vocab)}) and states")
    return 0
