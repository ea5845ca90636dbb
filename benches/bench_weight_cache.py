"""The cache of packed weights, on and off, side by side in one run: LSTM and
GRU inference calls (weights unchanged between calls: the panels are reused)
and training steps that change one value of every weight matrix first (as an
optimizer step does: every call packs again, and the cache's cost shows).
Each repetition times 8 calls in a row; turning the cache off empties it, so
each "on" repetition starts empty, and its training rows show the worst case:
the first calls after the weights start changing keep copies before the
backoff stops them. ``--steady`` measures training in a steady state instead:
child processes with the cache off (``RNNCORE_WEIGHT_CACHE_MB=0``) and on, in
turns, each timing 100 steps after 80 of warm-up, at the grid's sizes with N = 1
and H = 128.

The decoders keep a model's compilation the same way (a kept copy of its
parameters, ``rnncore.decode.compiled``): the last table samples 20 and 200
characters from a 2x512 LSTM char model, reusing the compilation, against
compiling it for each call as before.

    python benches/bench_weight_cache.py
    python benches/bench_weight_cache.py --steady
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, race

import rnncore
from rnncore import nn
from rnncore.decode import CompiledLM, sample
from rnncore.models import CharLM, LMConfig

GRID = [(128, 32), (512, 1), (512, 32), (1024, 1)]  # (H, N), T = 64 unless --T


def touch(layer) -> None:
    """Change one value of each weight matrix, as a training step would."""
    for p in layer.parameters():
        if p.ndim == 2:
            p[0, 0] = -p[0, 0]


def contenders(cell: str, H: int, N: int, T: int, train: bool) -> list[Contender]:
    rng = np.random.default_rng(0)
    layer = getattr(nn, cell)(H, H, seed=0)
    x = rng.standard_normal((T, N, H)).astype(np.float32)
    dy = rng.standard_normal((T, N, H)).astype(np.float32)

    def run():
        if train:
            touch(layer)
            layer(x)
            layer.backward(dy)
        else:
            layer(x)

    out = []
    for name, mib in (("off", 0), ("on", 512)):

        def setup(mib=mib):
            rnncore.set_weight_cache_limit(mib)

        out.append(Contender(f"cache {name}", run, setup))
    return out


def steady_child(cell: str, H: int, N: int, T: int, steps: int) -> None:
    """Print the median training-step time (ms) over ``steps`` steps."""
    import time

    (c,) = [c for c in contenders(cell, H, N, T, True) if c.name == "cache on"]
    for _ in range(80):  # past the backoff's first doublings
        c.run()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        c.run()
        times.append(time.perf_counter() - t0)
    print(float(np.median(times)) * 1e3)


def steady(threads: int, T: int) -> None:
    print(
        f"{'cell':5} {'H':>5} {'N':>4} | {'off ms':>9} {'on ms':>9} | on vs off  (training, steady)"
    )
    for cell in ("LSTM", "GRU"):
        for H, N in [(128, 32), (512, 1), (1024, 1)]:
            got: dict[str, list[float]] = {"0": [], "512": []}
            for _ in range(3):
                for mib in got:
                    env = {**os.environ, "RNNCORE_WEIGHT_CACHE_MB": mib,
                           "RNNCORE_NUM_THREADS": str(threads)}  # fmt: skip
                    here = str(Path(__file__).parent)
                    code = (f"import sys; sys.path.insert(0, {here!r}); import bench_weight_cache"
                            f" as b; b.steady_child({cell!r}, {H}, {N}, {T}, 100)")  # fmt: skip
                    out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                         capture_output=True, text=True).stdout  # fmt: skip
                    got[mib].append(float(out.split()[-1]))
            off, on = (float(np.median(v)) for v in got.values())
            print(f"{cell:5} {H:5} {N:4} | {off:9.3f} {on:9.3f} | {off / on:5.2f}x")
            sys.stdout.flush()


def decoding(reps: int) -> None:
    config = LMConfig(vocab_size=65, cell="lstm", hidden_size=512, num_layers=2, dtype="float32")
    model = CharLM(config).eval()
    head = f"{'decoding':14} {'chars':>5} | {'compiled per call':>17} {'reused':>9}"
    print(f"{head} | reused vs per call")
    for length in (20, 200):

        def per_call(n=length):
            return sample(CompiledLM(model), prime_ids=[1], length=n, seed=1)

        def reused(n=length):
            return sample(model, prime_ids=[1], length=n, seed=1)

        cs = [Contender("per call", per_call), Contender("reused", reused)]
        a, b = race(cs, reps=reps, block=4)
        print(f"{'sample, N = 1':14} {length:5} | {a.median * 1e3:17.3f} "
              f"{b.median * 1e3:9.3f} | {a.median / b.median:5.2f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--T", type=int, default=64)
    ap.add_argument("--steady", action="store_true", help="training in a steady state")
    args = ap.parse_args()
    if args.steady:
        print(f"machine: {machine()}; rnncore {rnncore.__version__}, {args.threads} threads")
        steady(args.threads, args.T)
        return
    rnncore.set_num_threads(args.threads)
    print(f"machine: {machine()}; rnncore {rnncore.__version__}, {args.threads} threads")
    print(f"{'cell':5} {'step':5} {'H':>5} {'N':>4} | {'off ms':>9} {'on ms':>9} | on vs off")
    for cell in ("LSTM", "GRU"):
        for H, N in GRID:
            for train in (False, True):
                off, on = race(contenders(cell, H, N, args.T, train), reps=args.reps, block=8)
                print(f"{cell:5} {'train' if train else 'infer':5} {H:5} {N:4} | "
                      f"{off.median * 1e3:9.3f} {on.median * 1e3:9.3f} | "
                      f"{off.median / on.median:5.2f}x")  # fmt: skip
                sys.stdout.flush()
    decoding(args.reps)


if __name__ == "__main__":
    main()
