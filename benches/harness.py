"""Side-by-side timing as benches/README.md asks: contenders run in the
same process, alternating (A B A B ...), after a warm-up; medians of at least
7 repetitions; ratios of medians; the machine's matmul speed from the same run."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Contender:
    """One thing to time: ``setup()`` runs before each repetition (untimed),
    ``run()`` is timed."""

    name: str
    run: Callable[[], object]
    setup: Callable[[], object] = lambda: None
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median of the repetitions: a noisy run shows here."""
        return (max(self.times) - min(self.times)) / self.median


def race(contenders: list[Contender], reps: int = 7, warmup: int = 2,
         min_seconds: float = 0.0, block: int = 1) -> list[Contender]:  # fmt: skip
    """Time every contender ``reps`` times (at least ``min_seconds`` in total
    each), interleaved, after ``warmup`` untimed rounds.

    With ``block > 1`` each repetition runs ``run()`` that many times in a row
    and records the time per call: for sub-millisecond steps, so that the
    worker threads another library leaves spinning after its turn (OpenBLAS,
    OpenMP) weigh on a block, not on one timed call.
    """
    for _ in range(warmup):
        for c in contenders:
            c.setup()
            c.run()
    start = time.perf_counter()
    rounds = 0
    while rounds < reps or time.perf_counter() - start < min_seconds * len(contenders):
        for c in contenders:
            c.setup()
            t0 = time.perf_counter()
            for _ in range(block):
                c.run()
            c.times.append((time.perf_counter() - t0) / block)
        rounds += 1
        if rounds >= 50:
            break
    return contenders


def matmul_gflops(threads_note: str = "", n: int = 2048, reps: int = 7) -> float:
    """GFLOP/s of a large float32 matmul with numpy, median of ``reps``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def machine() -> str:
    """The ``lscpu`` model line and the core count."""
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return f"{model}, {os.cpu_count()} cores"


def rnn_flops(cell: str, T: int, N: int, D: int, H: int, train: bool) -> float:
    """Matmul FLOPs of one forward (x3 for a training step), benches/README.md's count."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    fwd = 2 * T * N * (D + H) * G * H
    return 3 * fwd if train else fwd
