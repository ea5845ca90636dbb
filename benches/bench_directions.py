"""The two directions of a bidirectional layer side by side on two cores, against
one after the other, in the same process (alternating, medians of 6), with the
one-thread time beside them.

    python benches/bench_directions.py

A 2-layer bidirectional LSTM, D=128, T=30, N=64, float32, forward and backward;
H=128 (batch shards) and H=256 (steps split across threads).
``rnncore.nn._directions.MIN_WORK`` switches the side-by-side runs on and off.
"""

from __future__ import annotations

import time

import numpy as np

import rnncore
import rnncore.nn._directions as directions
from rnncore import nn

RUNS = (  # name, kernel threads, MIN_WORK
    ("1 thread", 1, 10**18),
    ("2 threads, one after the other", 2, 10**18),
    ("2 threads, side by side", 2, directions.MIN_WORK),
)


def main() -> None:
    x = np.random.default_rng(0).standard_normal((30, 64, 128), dtype=np.float32)
    print("| H | " + " | ".join(name for name, _, _ in RUNS) + " |")
    print("|---:|" + "---:|" * len(RUNS))
    for H in (128, 256):
        lstm = nn.LSTM(128, H, num_layers=2, bidirectional=True, seed=0)
        times: dict[str, list[float]] = {name: [] for name, _, _ in RUNS}
        for _ in range(6):
            for name, threads, limit in RUNS:
                rnncore.set_num_threads(threads)
                directions.MIN_WORK = limit
                started = time.perf_counter()
                out, _ = lstm(x)
                lstm.backward(np.ones_like(out))
                lstm.zero_grad()
                times[name].append(time.perf_counter() - started)
        rnncore.set_num_threads(None)
        cells = " | ".join(f"{np.median(times[name]) * 1e3:.1f} ms" for name, _, _ in RUNS)
        print(f"| {H} | {cells} |")


if __name__ == "__main__":
    main()
