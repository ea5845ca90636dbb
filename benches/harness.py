"""Side-by-side timing as benches/README.md asks: contenders run in the
same process, alternating (A B A B ...), after a warm-up; medians of at least
7 repetitions; ratios of medians; the machine's matmul speed from the same run."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


# Repetitions shorter than this (seconds) get an untimed call after the pause.
WARM_BELOW = 0.1


def race(contenders: list[Contender], reps: int = 7, warmup: int = 2,
         min_seconds: float = 0.0, block: int = 1,
         settle: float = 0.05) -> list[Contender]:  # fmt: skip
    """Time every contender ``reps`` times (at least ``min_seconds`` in total
    each), interleaved, after ``warmup`` untimed rounds.

    Before each timed repetition the race sleeps ``settle`` seconds, untimed:
    the worker threads a library leaves spinning after its turn (torch's
    OpenMP threads spin for milliseconds, waiting for its next parallel
    region) would otherwise take a core from the contender that follows. On
    the 2-core EPYC, an rnncore LSTM step (H = 128, N = 32, two threads) run
    right after torch's took 15.4 ms against 10.8 ms alone, and 11.5 ms with
    torch's threads told not to spin (``OMP_WAIT_POLICY=PASSIVE``). Each
    contender's own repetition still runs its calls back to back; one shorter
    than :data:`WARM_BELOW` follows an untimed call of its own, so that the
    pause's cold caches and idle clocks do not weigh on it.

    With ``block > 1`` each repetition runs ``run()`` that many times in a row
    and records the time per call (for sub-millisecond steps).
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
            time.sleep(settle)
            if settle > 0 and (not c.times or c.times[-1] * block < WARM_BELOW):
                c.run()  # untimed: caches and clocks back up after the pause
            t0 = time.perf_counter()
            for _ in range(block):
                c.run()
            c.times.append((time.perf_counter() - t0) / block)
        rounds += 1
        if rounds >= 50:
            break
    return contenders


def matmul_rate(a: Any, b: Any, reps: int = 7) -> float:
    """GFLOP/s of ``a @ b`` for square ``(n, n)`` operands (NumPy arrays or torch
    tensors), median of ``reps`` after three warm-up products."""
    for _ in range(3):  # warm-up: threads started, clocks up
        a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * a.shape[0] ** 3 / statistics.median(times) / 1e9


def matmul_gflops(n: int = 2048, reps: int = 7) -> float:
    """GFLOP/s of a large float32 matmul with numpy, median of ``reps``."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return matmul_rate(a, b, reps)


# Variables some machines set that make OpenBLAS pick a slower kernel (on a
# 2-core EPYC, OPENBLAS_CORETYPE=Haswell gave about half of the SkylakeX
# kernel's rate): the machine's limit is measured without them.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


@dataclass
class Limit:
    """The machine's matmul rate, as benches/README.md measures it."""

    gflops: float  # numpy float32 2048^3, child process, BLAS_OVERRIDES unset
    blas: str  # the BLAS library and kernel numpy used there (threadpoolctl)
    gflops_here: float  # the same matmul in this process, environment as it is
    overrides: dict[str, str]  # the BLAS_OVERRIDES set in this environment
    torch_gflops: float | None  # torch's own float32 2048^3 matmul, if installed

    def describe(self) -> str:
        set_here = ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "none set"
        torch = "not installed" if self.torch_gflops is None else f"{self.torch_gflops:.0f}"
        return (
            f"machine limit: numpy float32 2048^3 matmul {self.gflops:.0f} GFLOP/s in a child "
            f"process without {'/'.join(BLAS_OVERRIDES)} ({self.blas}); in this process "
            f"({set_here}) {self.gflops_here:.0f} GFLOP/s; torch's matmul {torch} GFLOP/s"
        )


def blas_description() -> str:
    """The BLAS numpy calls, with the kernel it chose (``threadpoolctl``)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "kernel unknown: threadpoolctl not installed"
    blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    return (
        "; ".join(
            f"{d.get('internal_api')} {d.get('version')}, kernel {d.get('architecture')}, "
            f"{d.get('num_threads')} threads"
            for d in blas
        )
        or "no BLAS found"
    )


def machine_limit(n: int = 2048, reps: int = 7, threads: int | None = None) -> Limit:
    """:class:`Limit`: the matmul measured in a child process whose environment
    lacks :data:`BLAS_OVERRIDES`, then here, then torch's. With ``threads``, the
    child's BLAS uses that many threads (its default: every core)."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    if threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
        f"from harness import matmul_gflops, blas_description; "
        f"print(matmul_gflops(n={n}, reps={reps})); print(blas_description())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    torch_rate = None
    try:
        import torch
    except ImportError:
        pass
    else:
        torch_rate = matmul_rate(torch.randn(n, n), torch.randn(n, n), reps)
    return Limit(
        gflops=float(out[0]),
        blas=out[1],
        gflops_here=matmul_gflops(n=n, reps=reps),
        overrides={k: os.environ[k] for k in BLAS_OVERRIDES if k in os.environ},
        torch_gflops=torch_rate,
    )


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
