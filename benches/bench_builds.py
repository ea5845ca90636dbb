"""Two builds of rnncore side by side: the grid's small configurations and the
min-char-rnn step, so that a change that should not cost speed shows that it
does not.

Each build is a folder holding an ``rnncore`` package (``pip install --target
DIR --no-deps dist/rnncore-*.whl``, or an unpacked wheel). The two cannot live
in one process, so every round starts one child per build, alternating
(A B A B ...); each child times every workload (median of ``--reps`` after a
warm-up) and the report gives the median over rounds and the ratio
new / old (below 1: the new build is faster).

    python benches/bench_builds.py --old DIR --new DIR [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import machine

# name -> (cell, layer keywords, H, N); a training step unless the name says
# inference, T = 64, D = H.
LAYERS = {
    "lstm H=128 N=32 inference": ("LSTM", {}, 128, 32),
    "lstm H=512 N=1 inference": ("LSTM", {}, 512, 1),
    "lstm H=512 N=1": ("LSTM", {}, 512, 1),
    "lstm H=128 N=32": ("LSTM", {}, 128, 32),
    "lstm H=64 N=64": ("LSTM", {}, 64, 64),
    "lstm cifg H=128 N=32": ("LSTM", {"cifg": True}, 128, 32),
    "lstm peephole H=128 N=32": ("LSTM", {"peephole": True}, 128, 32),
    "gru H=128 N=32": ("GRU", {}, 128, 32),
    "rnn H=128 N=32": ("RNN", {}, 128, 32),
}

CHILD = r"""
import json, statistics, sys, time
import numpy as np
import rnncore
from rnncore import nn
from rnncore.models import min_char_rnn

layers, reps, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rnncore.set_num_threads(threads)


def median_ms(step):
    for _ in range(2):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


out = {}
rng = np.random.default_rng(0)
for name, (cell, kw, h, n) in layers.items():
    layer = getattr(nn, cell)(h, h, seed=0, **kw)
    x = rng.standard_normal((64, n, h)).astype(np.float32)
    dy = np.ones((64, n, h), np.float32)

    def step(layer=layer, x=x, dy=dy, train="inference" not in name):
        layer(x)
        if train:
            layer.backward(dy)

    out[name] = median_ms(step)

ids = rng.integers(0, 65, size=26)
setup = min_char_rnn(65, seed=0)
h0 = setup.model.initial_state(1)


def minchar():
    for _ in range(20):
        setup.train_step(ids[:-1], ids[1:], h0)


out["min-char-rnn step (x20)"] = median_ms(minchar)
print(json.dumps(out))
"""


def run_child(build: Path, reps: int, threads: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(build)}
    args = [sys.executable, "-c", CHILD, json.dumps(LAYERS), str(reps), str(threads)]
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the build in {build} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", type=Path, required=True, help="folder holding the old rnncore")
    ap.add_argument("--new", type=Path, required=True, help="folder holding the new rnncore")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    for build in (args.old, args.new):
        if not (build / "rnncore" / "__init__.py").is_file():
            raise SystemExit(f"{build} holds no rnncore package")
    print(machine())
    print(f"{args.rounds} rounds, old and new alternating; {args.threads} thread(s)")
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for label in ("old", "new"):
            runs[label].append(run_child(getattr(args, label), args.reps, args.threads))
    print(f"\n{'workload':28s} {'old ms':>9s} {'new ms':>9s} {'new/old':>8s}")
    for name in runs["old"][0]:
        old = statistics.median(r[name] for r in runs["old"])
        new = statistics.median(r[name] for r in runs["new"])
        print(f"{name:28s} {old:9.2f} {new:9.2f} {new / old:8.3f}")


if __name__ == "__main__":
    main()
