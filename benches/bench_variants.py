"""Training step (forward + backward) of each cell variant next to its plain cell,
in one run, alternating, medians: T=64, D=H=512, N=32, float32 (benches/README.md's
H=512 N=32 point of the grid). A variant should cost at most the extra
arithmetic it adds (the LSTM with projections, P = H/4, does less: its
``W_hh`` is ``(4H, P)``, plus ``W_hr (P, H)``). The MUT cells are timed against
the reset-before GRU.

    python benches/bench_variants.py [--threads 1 2] [--reps 7] [--only TEXT ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, race

import rnncore
from rnncore import nn

T, N, H = 64, 32, 512
# (name, plain cell, variant): each pair is timed side by side.
PAIRS = [
    ("gru reset_after=False", lambda: nn.GRU(H, H, seed=0),
     lambda: nn.GRU(H, H, reset_after=False, seed=0)),
    ("lstm cifg=True", lambda: nn.LSTM(H, H, seed=0), lambda: nn.LSTM(H, H, cifg=True, seed=0)),
    ("lstm peephole=True", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, peephole=True, seed=0)),
    (f"lstm proj_size={H // 4}", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, proj_size=H // 4, seed=0)),
    # The MUT cells next to their closest relative, the reset-before GRU.
    ("mut1 / gru reset_after=False", lambda: nn.GRU(H, H, reset_after=False, seed=0),
     lambda: nn.MUT1(H, H, seed=0)),
    ("mut2 / gru reset_after=False", lambda: nn.GRU(H, H, reset_after=False, seed=0),
     lambda: nn.MUT2(H, H, seed=0)),
    ("mut3 / gru reset_after=False", lambda: nn.GRU(H, H, reset_after=False, seed=0),
     lambda: nn.MUT3(H, H, seed=0)),
    # Dropout inside the recurrence (training mode: masks drawn every call).
    ("lstm recurrent_dropout=0.25", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, recurrent_dropout=0.25, seed=0)),
    ("lstm zoneout=0.05 zoneout_cell=0.5", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, zoneout=0.05, zoneout_cell=0.5, seed=0)),
    ("lstm input_dropout=0.25", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, input_dropout=0.25, seed=0)),
    ("gru recurrent_dropout=0.25", lambda: nn.GRU(H, H, seed=0),
     lambda: nn.GRU(H, H, recurrent_dropout=0.25, seed=0)),
    ("gru zoneout=0.1", lambda: nn.GRU(H, H, seed=0), lambda: nn.GRU(H, H, zoneout=0.1, seed=0)),
    # Layer normalisation of the products (and the LSTM's cell state).
    ("lstm layer_norm=True", lambda: nn.LSTM(H, H, seed=0),
     lambda: nn.LSTM(H, H, layer_norm=True, seed=0)),
    ("gru layer_norm=True", lambda: nn.GRU(H, H, seed=0),
     lambda: nn.GRU(H, H, layer_norm=True, seed=0)),
]  # fmt: skip


def step(layer, x, dy):
    """A training step; ``dy (T, N, H)`` is cut to the output's features (P with
    a projection) once, here."""
    dy = np.ascontiguousarray(dy[..., : getattr(layer, "proj_size", 0) or H])

    def run():
        layer(x)
        layer.backward(dy)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--only", nargs="+", help="the pairs whose names contain one of these")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, N, H)).astype(np.float32)
    dy = rng.standard_normal((T, N, H)).astype(np.float32)
    print(f"# {machine()}; T={T} N={N} D=H={H} float32, training step, medians of {args.reps}")
    print("| variant | threads | plain ms | variant ms | variant / plain |")
    print("|---|---|---|---|---|")
    for name, plain, variant in PAIRS:
        if args.only and not any(o in name for o in args.only):
            continue
        for threads in args.threads:
            rnncore.set_num_threads(threads)
            a = Contender("plain", step(plain(), x, dy))
            b = Contender("variant", step(variant(), x, dy))
            race([a, b], reps=args.reps)
            print(
                f"| {name} | {threads} | {a.median * 1e3:.1f} | {b.median * 1e3:.1f} "
                f"| {b.median / a.median:.2f} (spread {a.spread:.2f}, {b.spread:.2f}) |"
            )
    rnncore.set_num_threads(None)


if __name__ == "__main__":
    main()
