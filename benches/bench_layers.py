"""rnncore's RNN/LSTM/GRU layers against torch.nn on the standard grid of
benches/README.md: training step (forward + backward) and inference, T=64,
D=H, float32, same weights and inputs. Each training step first changes one
value of every weight matrix, as an optimizer step would, so no call reuses the
previous call's packed weights; inference calls reuse them (the cache of
packed weights, rust/src/panel/cache.rs) and run under rnncore.no_grad(), as
torch's run under torch.no_grad().

    python benches/bench_layers.py            # the whole grid
    python benches/bench_layers.py --quick    # H=128 N=32 and H=512 N=32 only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, machine_limit, race, rnn_flops

import rnncore
from rnncore import nn

GRID = [(128, 32), (512, 1), (512, 32), (512, 128), (1024, 32)]  # (H, N)
CLASSES = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


def touch(params) -> None:
    """Change one value of each weight matrix, as a training step would: no
    call may reuse a packing of the previous step's weights."""
    for p in params:
        if p.ndim == 2:
            p[0, 0] = -p[0, 0]


def contenders(cell: str, H: int, N: int, T: int, train: bool, threads: list[int], torch):
    rng = np.random.default_rng(0)
    ours = getattr(nn, CLASSES[cell])(H, H, seed=0)
    x = rng.standard_normal((T, N, H)).astype(np.float32)
    dy = rng.standard_normal((T, N, H)).astype(np.float32)
    out: list[Contender] = []

    for n in threads:

        def setup(n=n):
            rnncore.set_num_threads(n)

        if train:

            def run():
                touch(ours.parameters())
                ours(x)
                ours.backward(dy)
        else:

            def run():
                with rnncore.no_grad():  # as torch's rows run under torch.no_grad()
                    ours(x)

        out.append(Contender(f"rnncore/{n}t", run, setup))

    if torch is not None:
        layer = getattr(torch.nn, CLASSES[cell])(H, H)
        layer.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
        tx = torch.from_numpy(x)
        tdy = torch.from_numpy(dy)
        for n in (1, 2):

            def tsetup(n=n):
                torch.set_num_threads(n)
                for p in layer.parameters():
                    p.grad = None

            if train:

                def trun():
                    with torch.no_grad():
                        touch(p.detach().numpy() for p in layer.parameters())
                    xi = tx.detach().requires_grad_(True)
                    o, _ = layer(xi)
                    o.backward(tdy)
            else:

                def trun():
                    with torch.no_grad():
                        layer(tx)

            out.append(Contender(f"torch/{n}t", trun, tsetup))
    return out


def block_for(cs: list[Contender], target: float = 0.02) -> int:
    """Calls per timed repetition: enough for ``target`` seconds of the first
    contender (at most 20), so that short calls are not timed against the
    threads the previous contender left spinning."""
    cs[0].setup()
    cs[0].run()
    t0 = time.perf_counter()
    cs[0].run()
    return max(1, min(20, round(target / (time.perf_counter() - t0))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cells", default="lstm,gru,rnn")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", default="1,2", help="rnncore thread counts")
    ap.add_argument("--T", type=int, default=64)
    args = ap.parse_args()
    torch = torch_or_none()
    threads = [int(t) for t in args.threads.split(",")]
    grid = [(128, 32), (512, 32)] if args.quick else GRID

    print(f"machine: {machine()}")
    print(machine_limit().describe())
    torch_version = torch.__version__ if torch else "not installed"
    print(f"torch: {torch_version}; rnncore {rnncore.__version__}")
    print()
    header = (f"{'cell':5} {'mode':5} {'H':>5} {'N':>4} | {'contender':12} {'ms':>9} "
              f"{'spread':>6} {'tok/s':>10} {'GFLOP/s':>8} | ratio vs best torch")  # fmt: skip
    print(header)
    print("-" * len(header))
    for cell in args.cells.split(","):
        for H, N in grid:
            for train in (True, False):
                cs = contenders(cell, H, N, args.T, train, threads, torch)
                cs = race(cs, reps=args.reps, block=block_for(cs))
                flops = rnn_flops(cell, args.T, N, H, H, train)
                torch_best = min((c.median for c in cs if c.name.startswith("torch")),
                                 default=None)  # fmt: skip
                for c in cs:
                    ratio = f"{torch_best / c.median:5.2f}x" if torch_best else ""
                    print(f"{cell:5} {'train' if train else 'infer':5} {H:5} {N:4} | "
                          f"{c.name:12} {c.median * 1e3:9.3f} {c.spread:6.2f} "
                          f"{args.T * N / c.median:10,.0f} {flops / c.median / 1e9:8.1f} | "
                          f"{ratio if c.name.startswith('rnncore') else ''}")  # fmt: skip
            sys.stdout.flush()


if __name__ == "__main__":
    main()
