"""rnncore.torch against torch.nn, side by side (benches/README.md):

- the word-level config through examples/word_lm.py: one training step
  (embedding, 2-layer LSTM, linear readout, cross-entropy, backward, gradient
  clipping, SGD) with ``torch.nn.LSTM`` and with ``rnncore.torch.LSTM``,
  V = 10,000, E = H = 512, N = 32, T = 35;
- the largest differences from torch.nn, outputs and gradients;
- the same step with the LSTM taken out (its input passed through): the time
  the rest of the script takes whichever LSTM it uses, and so the most any
  LSTM can speed the step up;
- the wrapper's own cost: forward and backward of the same 2-layer LSTM through
  ``rnncore.torch.LSTM`` (autograd) and through ``rnncore.nn.LSTM`` (NumPy, the
  kernels called directly).

Every contender alternates with the others in one process; medians and their
ratios, at 1 and 2 threads.

    python benches/bench_torch.py [--reps 7] [--threads 1 2] [--parity-only]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, machine_limit, race, rnn_flops

import rnncore

V, E, H, L, N, T = 10_000, 512, 512, 2, 32, 35


def load_example():
    path = Path(__file__).resolve().parent.parent / "examples" / "word_lm.py"
    spec = importlib.util.spec_from_file_location("word_lm", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def passthrough(torch):
    """An ``nn.LSTM`` stand-in that returns its input (E = H) and the state."""

    class NoLSTM(torch.nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, x, hidden):
            return x, hidden

    return NoLSTM


def step_contender(torch, word_lm, use_rnncore: bool | None) -> Contender:
    """One training step of the example's model and loop body, dropout 0.2;
    ``use_rnncore=None``: without the LSTM."""
    torch.manual_seed(0)
    lstm = passthrough(torch) if use_rnncore is None else word_lm.lstm_class(use_rnncore)
    model = word_lm.RNNModel(lstm, V, E, H, L, 0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (T + 1, N), generator=gen)
    state = {"hidden": model.init_hidden(N)}

    def run():
        hidden = word_lm.repackage_hidden(state["hidden"])
        optimizer.zero_grad()
        logits, state["hidden"] = model(ids[:-1], hidden)
        loss = torch.nn.functional.cross_entropy(logits, ids[1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()

    names = {None: "no LSTM", True: "rnncore.torch.LSTM", False: "torch.nn.LSTM"}
    name = names[use_rnncore]
    return Contender(f"word-LM step, {name}", run)


def wrapper_contenders(torch) -> list[Contender]:
    """Forward + backward of one LSTM stack: through autograd vs the NumPy layer."""
    import rnncore.torch as rt

    layer = rnncore.nn.LSTM(E, H, L, seed=0)
    module = rt.LSTM(E, H, L)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((T, N, E), dtype=np.float32)
    d_out = np.ones((T, N, H), np.float32)
    x_t = torch.from_numpy(x).requires_grad_(True)
    d_out_t = torch.from_numpy(d_out)

    def direct():
        layer.zero_grad()
        layer(x)
        layer.backward(d_out)

    def through_torch():
        module.zero_grad()
        out, _ = module(x_t)
        out.backward(d_out_t)

    return [
        Contender("LSTM fwd+bwd, rnncore.nn (kernels direct)", direct),
        Contender("LSTM fwd+bwd, rnncore.torch (autograd)", through_torch),
    ]


def time_outside_kernels(run, reps: int) -> float:
    """Median share of ``run()``'s time spent outside the Rust forward and backward:
    the wrapper's own cost, measured within each call and so immune to the
    machine's load changing between contenders."""
    import rnncore._rnncore as kernels

    inside = [0.0]
    originals = {name: getattr(kernels, name) for name in ("forward", "backward")}

    def timed(f):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return f(*args, **kwargs)
            finally:
                inside[0] += time.perf_counter() - t0

        return wrapper

    shares = []
    try:
        for name, f in originals.items():
            setattr(kernels, name, timed(f))
        for _ in range(reps):
            inside[0] = 0.0
            t0 = time.perf_counter()
            run()
            total = time.perf_counter() - t0
            shares.append((total - inside[0]) / inside[0])
    finally:
        for name, f in originals.items():
            setattr(kernels, name, f)
    return statistics.median(shares)


def parity(torch) -> None:
    """Largest relative differences from torch.nn (outputs and all gradients), every
    cell, 2 layers, one and two directions, T=20, N=8, D=64, H=96."""
    import rnncore.torch as rt

    kinds = [("LSTM", {}), ("GRU", {}), ("RNN", {"nonlinearity": "tanh"})]
    kinds.append(("RNN", {"nonlinearity": "relu"}))
    for dtype in (torch.float64, torch.float32):
        worst_out = worst_grad = 0.0
        for name, extra in kinds:
            for bidirectional in (False, True):
                torch.manual_seed(0)
                kw = {"bidirectional": bidirectional, "dtype": dtype, **extra}
                theirs = getattr(torch.nn, name)(64, 96, 2, **kw)
                ours = getattr(rt, name)(64, 96, 2, **kw)
                ours.load_state_dict(theirs.state_dict())
                x = torch.randn(20, 8, 64, dtype=dtype, requires_grad=True)
                outs = [m(x)[0] for m in (theirs, ours)]
                d_out = torch.randn_like(outs[0])
                grads = [
                    torch.autograd.grad(o, [x, *m.parameters()], d_out)
                    for o, m in zip(outs, (theirs, ours))
                ]
                rel = lambda a, b: ((a - b).abs().max() / a.abs().max()).item()  # noqa: E731
                worst_out = max(worst_out, rel(*outs))
                worst_grad = max(worst_grad, *(rel(a, b) for a, b in zip(*grads)))
        print(
            f"parity with torch.nn, {dtype}: max |diff| / max |torch| = {worst_out:.1e} "
            f"(outputs), {worst_grad:.1e} (gradients)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--parity-only", action="store_true", help="only the parity check")
    args = p.parse_args()
    import torch

    word_lm = load_example()
    print(f"# {machine()}; torch {torch.__version__}, rnncore {rnncore.__version__}")
    parity(torch)
    if args.parity_only:
        return
    print(f"# word LM: V={V}, E=H={H}, L={L}, N={N}, T={T}; medians of {args.reps}, alternating")
    for threads in args.threads:
        torch.set_num_threads(threads)
        rnncore.set_num_threads(threads)
        steps = race(
            [step_contender(torch, word_lm, u) for u in (False, True, None)],
            reps=args.reps,
        )
        wrap = race(wrapper_contenders(torch), reps=args.reps)
        print(f"\n## {threads} thread(s)")
        for c in steps + wrap:
            print(f"{c.name:48s} {c.median * 1e3:8.1f} ms  (spread {c.spread:.0%})")
        speedup = steps[0].median / steps[1].median
        overhead = wrap[1].median / wrap[0].median - 1
        print(f"step speed-up, rnncore.torch vs torch.nn: {speedup:.2f}x")
        rest = steps[2].median / steps[0].median
        print(
            f"the step without its LSTM: {rest:.1%} of torch.nn's step; most any LSTM "
            f"can give: {1 / rest:.2f}x; LSTM speed-up over torch.nn's a 1.3x step needs: "
            + (f"{(1 - rest) / (1 / 1.3 - rest):.2f}x" if rest < 1 / 1.3 else "none is enough")
        )
        # The LSTM's share of torch's step, as a matmul rate, against the
        # rate a 1.3x step needs and the machine's matmul at this thread count.
        flops = L * rnn_flops("lstm", T, N, E, H, train=True)
        theirs = steps[0].median - steps[2].median
        need = steps[0].median / 1.3 - steps[2].median
        limit = machine_limit(threads=threads)
        print(
            f"LSTM fwd+bwd as matmul GFLOP/s: torch.nn's (its step minus the step without "
            f"it) {flops / theirs / 1e9:.0f}, rnncore's (kernels direct) "
            f"{flops / wrap[0].median / 1e9:.0f}, needed for a 1.3x step "
            + (f"{flops / need / 1e9:.0f}" if need > 0 else "(none is enough)")
            + f"; numpy's float32 2048^3 matmul at {threads} thread(s) "
            f"{limit.gflops:.0f} ({limit.blas})"
        )
        print(f"fwd+bwd through rnncore.torch vs rnncore.nn: {overhead:+.1%}")
        for c in wrap:
            share = time_outside_kernels(c.run, args.reps)
            print(f"{c.name}: time outside the kernels {share:.1%} of the time inside")


if __name__ == "__main__":
    main()
