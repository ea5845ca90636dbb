"""The ``rnncore inspect`` subcommand (wired in by :mod:`rnncore.cli`).

    rnncore inspect --checkpoint DIR --file TEXT --out DIR [--cell LAYER:UNIT]
                    [--max-chars 100000] [--page-chars 2000] [--top 5]

Writes ``DIR/index.html`` (one self-contained page), ``DIR/saturation.png`` and
``DIR/cells.csv``, and prints the units found with their held-out correlations.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rnncore.diagnostics.report import (
    check_page_chars,
    claim_page_dir,
    prepare_text,
    read_text,
    write_report,
)

__all__ = ["add_inspect_parser", "run_inspect"]

Loader = Callable[[str], tuple[Any, Any]]  # checkpoint or run directory -> (model, vocab)


def add_inspect_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``inspect`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser("inspect", help="write an HTML page of what a model's cells do on a text")
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--file", required=True, help="UTF-8 text to run the model on")
    p.add_argument("--out", required=True, help="directory for index.html and the PNGs")
    p.add_argument("--cell", help="LAYER:UNIT shown first (default: the best unit found)")
    p.add_argument("--max-chars", type=int, default=100_000, help="characters analysed")
    p.add_argument("--page-chars", type=int, default=2000, help="characters on the page")
    p.add_argument("--top", type=int, default=5, help="units listed per feature")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out although it holds other files (they are kept)",
    )
    return p


def run_inspect(args: argparse.Namespace, load: Loader) -> int:
    """``rnncore inspect``; ``load`` reads a checkpoint."""
    claim_page_dir(args.out, force=args.force, what="--out")  # before loading anything
    check_page_chars(args.page_chars)
    model, vocab = load(args.checkpoint)
    text, notes = prepare_text(read_text(args.file), vocab, args.max_chars)
    for note in notes:
        print(f"rnncore inspect: {note}", file=sys.stderr)
    report = write_report(
        model,
        vocab,
        text,
        args.out,
        force=args.force,
        notes=list(notes),
        page_chars=args.page_chars,
        cell=args.cell,
        top=args.top,
        title=f"rnncore inspect: {args.checkpoint} on {args.file}",
    )
    for note in report.notes[len(notes) :]:
        print(f"rnncore inspect: {note}", file=sys.stderr)
    out = sys.stdout
    out.write(f"{'feature':<14} {'signal':<8} layer  unit      r  held-out\n")
    for f in report.found:
        out.write(
            f"{f.feature:<14} {f.signal:<8} {f.layer:>5} {f.unit:>5} {f.corr:+6.3f} "
            f"{f.held_out_text('+.3f'):>9}\n"
        )
    if any(f.held_out_text("") == "n/a" for f in report.found):
        out.write("(n/a: the feature does not vary on the held-out part, so it has no r there)\n")
    out.write(f"wrote {report.out_dir / 'index.html'}\n")
    return 0
