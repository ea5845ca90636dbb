"""Whole training steps, rnncore against PyTorch and plain NumPy
(benches/README.md):

- char-rnn config: embedding of a 65-symbol vocabulary, 2-layer LSTM H=512,
  N=50, T=50, softmax readout, one Adam step (rnncore vs torch);
- word-level config: the same model with V=10,000, E=H=512, N=32, T=35,
  where the readout and its softmax cross-entropy weigh as much as the LSTMs;
- min-char-rnn config: vanilla RNN H=100, T=25, N=1, Adagrad, elementwise clip
  5 (rnncore vs Karpathy's NumPy algorithm transcribed below, and torch).

    python benches/bench_models.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, machine_limit, race

import rnncore
from rnncore.models import CharLM, LMConfig, min_char_rnn
from rnncore.optim import create

V = 65  # tinyshakespeare's vocabulary


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


# ----------------------------------------------------------------- char-rnn


def charrnn_contenders(
    torch, threads: list[int], V: int = V, E: int = 64, H: int = 512, N: int = 50, T: int = 50
):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, size=(N, T + 1))
    x, y = ids[:, :-1], ids[:, 1:]
    model = CharLM(LMConfig(vocab_size=V, cell="lstm", hidden_size=H, num_layers=2,
                            embedding_dim=E, seed=0))  # fmt: skip
    opt = create("adam", dict(model.named_parameters()), lr=2e-3)

    def ours():
        model.zero_grad()
        model.loss(x, y)
        model.backward()
        opt.step(model.grads)

    out = [
        Contender(f"rnncore/{n}t", ours, lambda n=n: rnncore.set_num_threads(n)) for n in threads
    ]
    if torch is not None:
        tnn = torch.nn

        class Net(tnn.Module):
            def __init__(self):
                super().__init__()
                self.emb = tnn.Embedding(V, E)
                self.rnn = tnn.LSTM(E, H, num_layers=2, batch_first=True)
                self.head = tnn.Linear(H, V)

            def forward(self, ids):
                return self.head(self.rnn(self.emb(ids))[0])

        net = Net()
        topt = torch.optim.Adam(net.parameters(), lr=2e-3)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def theirs():
            topt.zero_grad()
            logits = net(tx)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), ty.reshape(-1))
            loss.backward()
            topt.step()

        for n in (1, 2):
            out.append(Contender(f"torch/{n}t", theirs, lambda n=n: torch.set_num_threads(n)))
    lstm = 3 * 2 * T * N * ((E + H) + (H + H)) * 4 * H
    return out, lstm + 3 * 2 * T * N * H * V  # matmul FLOPs of the LSTMs and the readout


# ------------------------------------------------------------- min-char-rnn


class NumpyMinCharRNN:
    """Karpathy's min-char-rnn training step, as published (loss summed over steps)."""

    def __init__(self, H: int, rng: np.random.Generator) -> None:
        self.Wxh = rng.standard_normal((H, V)) * 0.01
        self.Whh = rng.standard_normal((H, H)) * 0.01
        self.Why = rng.standard_normal((V, H)) * 0.01
        self.bh, self.by = np.zeros((H, 1)), np.zeros((V, 1))
        self.params = [self.Wxh, self.Whh, self.Why, self.bh, self.by]
        self.mem = [np.zeros_like(p) for p in self.params]

    def step(self, inputs, targets, hprev):
        xs, hs, ps = {}, {-1: np.copy(hprev)}, {}
        loss = 0.0
        for t in range(len(inputs)):
            xs[t] = np.zeros((V, 1))
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(self.Wxh @ xs[t] + self.Whh @ hs[t - 1] + self.bh)
            ys = self.Why @ hs[t] + self.by
            ps[t] = np.exp(ys) / np.sum(np.exp(ys))
            loss += -np.log(ps[t][targets[t], 0])
        grads = [np.zeros_like(p) for p in self.params]
        dWxh, dWhh, dWhy, dbh, dby = grads
        dhnext = np.zeros_like(hs[0])
        for t in reversed(range(len(inputs))):
            dy = np.copy(ps[t])
            dy[targets[t]] -= 1
            dWhy += dy @ hs[t].T
            dby += dy
            dh = self.Why.T @ dy + dhnext
            dhraw = (1 - hs[t] * hs[t]) * dh
            dbh += dhraw
            dWxh += dhraw @ xs[t].T
            dWhh += dhraw @ hs[t - 1].T
            dhnext = self.Whh.T @ dhraw
        for p, g, m in zip(self.params, grads, self.mem):
            np.clip(g, -5, 5, out=g)
            m += g * g
            p += -0.1 * g / np.sqrt(m + 1e-8)
        return loss, hs[len(inputs) - 1]


def minchar_contenders(torch, threads: list[int], H: int = 100, T: int = 25):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, size=T + 1)
    inputs, targets = ids[:-1], ids[1:]
    setup = min_char_rnn(V, seed=0)
    h = setup.model.initial_state(1)
    out = [Contender(f"rnncore/{n}t", lambda: setup.train_step(inputs, targets, h),
                     lambda n=n: rnncore.set_num_threads(n)) for n in threads]  # fmt: skip
    ref = NumpyMinCharRNN(H, rng)
    hprev = np.zeros((H, 1))
    out.append(Contender("numpy", lambda: ref.step(inputs, targets, hprev)))
    if torch is not None:
        rnn = torch.nn.RNN(V, H)
        head = torch.nn.Linear(H, V)
        params = list(rnn.parameters()) + list(head.parameters())
        topt = torch.optim.Adagrad(params, lr=0.1)
        onehot = torch.nn.functional.one_hot(torch.from_numpy(inputs), V).float()[:, None]
        tt = torch.from_numpy(targets)

        def theirs():
            topt.zero_grad()
            out, _ = rnn(onehot)
            loss = torch.nn.functional.cross_entropy(head(out[:, 0]), tt, reduction="sum")
            loss.backward()
            torch.nn.utils.clip_grad_value_(params, 5.0)
            topt.step()

        for n in (1, 2):
            out.append(Contender(f"torch/{n}t", theirs, lambda n=n: torch.set_num_threads(n)))
    return out


def report(title: str, cs: list[Contender], tokens: int, flops: float | None) -> None:
    print(f"\n{title}")
    best = {k: min((c.median for c in cs if c.name.startswith(k)), default=None)
            for k in ("torch", "numpy")}  # fmt: skip
    for c in cs:
        gf = f"{flops / c.median / 1e9:8.1f}" if flops else f"{'':8}"
        ratios = "  ".join(f"{best[k] / c.median:6.2f}x vs {k}" for k in best
                           if best[k] and c.name.startswith("rnncore"))  # fmt: skip
        print(f"  {c.name:12} {c.median * 1e3:9.3f} ms  spread {c.spread:5.2f}  "
              f"{tokens / c.median:10,.0f} tok/s {gf} GFLOP/s  {ratios}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()
    torch = torch_or_none()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"machine: {machine()}")
    print(machine_limit().describe())
    print(
        f"torch: {torch.__version__ if torch else 'not installed'}; rnncore {rnncore.__version__}"
    )
    cs, flops = charrnn_contenders(torch, threads)
    report("char-rnn config (embedding 65->64, 2x LSTM 512, N=50, T=50, softmax, Adam step)",
           race(cs, reps=args.reps), 50 * 50, flops)  # fmt: skip
    cs, flops = charrnn_contenders(torch, threads, V=10_000, E=512, H=512, N=32, T=35)
    report("word-level config (embedding 10,000->512, 2x LSTM 512, N=32, T=35, softmax, Adam)",
           race(cs, reps=args.reps), 32 * 35, flops)  # fmt: skip
    report("min-char-rnn config (vanilla RNN H=100, T=25, N=1, Adagrad, clip 5)",
           race(minchar_contenders(torch, threads), reps=max(args.reps, 15), block=20),
           25, None)  # fmt: skip


if __name__ == "__main__":
    main()
