"""Seq2seq training step: models.Seq2Seq against the same model written with torch
CPU ops, side by side (alternating, medians).

    python benches/bench_seq2seq.py --reps 7

The standard seq2seq configuration of benches/README.md: a 2-layer bidirectional LSTM
encoder H=256, an LSTM decoder H=256 with Bahdanau attention and input feeding,
N=64, source and target length 30, vocabularies of 64 symbols, float32. A step is
the loss, the backward and an SGD update. The torch model: nn.Embedding, a
bidirectional nn.LSTM, the bridge, an nn.LSTMCell loop with the attention in torch
ops, the head and cross-entropy; same sizes, its own initial weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, race

from rnncore.models import Seq2Seq, Seq2SeqConfig

N, S, T, V, E, H = 64, 30, 30, 64, 128, 256


def rnncore_step(model, batch, lr=0.01):
    src, tgt = batch
    model.zero_grad()
    model.loss(src, None, tgt)
    model.backward()
    for name, p in model.named_parameters():
        p -= lr * model.grads[name]


def torch_model(torch):
    nn = torch.nn

    class TorchSeq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embedding = nn.Embedding(V, E)
            self.tgt_embedding = nn.Embedding(V, E)
            self.encoder = nn.LSTM(E, H, num_layers=2, bidirectional=True)
            self.bridge = nn.Linear(2 * H, H)
            self.cell = nn.LSTMCell(E + 2 * H, H)
            self.w_query = nn.Linear(H, H, bias=False)
            self.w_key = nn.Linear(2 * H, H, bias=False)
            self.v = nn.Parameter(torch.empty(H).uniform_(-0.06, 0.06))
            self.head = nn.Linear(3 * H, V)

        def forward(self, src, tgt):  # src (N, S), tgt (N, T + 1)
            out, (h_n, _) = self.encoder(self.src_embedding(src.T))  # (S, N, 2H)
            memory = out.transpose(0, 1)  # (N, S, 2H)
            keys = self.w_key(memory)  # (N, S, H) once per sequence
            h = torch.tanh(self.bridge(torch.cat([h_n[-2], h_n[-1]], dim=1)))
            c = torch.zeros_like(h)
            context = memory.new_zeros(memory.shape[0], memory.shape[2])
            y = self.tgt_embedding(tgt[:, :-1].T)  # (T, N, E)
            outs = []
            for t in range(y.shape[0]):
                h, c = self.cell(torch.cat([y[t], context], dim=1), (h, c))
                e = torch.tanh(self.w_query(h)[:, None, :] + keys)  # (N, S, H)
                a = torch.softmax(e @ self.v, dim=1)  # (N, S)
                context = torch.einsum("ns,nsm->nm", a, memory)
                outs.append(torch.cat([h, context], dim=1))
            logits = self.head(torch.stack(outs))  # (T, N, V)
            return nn.functional.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].T.reshape(-1))

    return TorchSeq2Seq()


def torch_step(torch, model, batch, lr=0.01):
    src, tgt = batch
    model.zero_grad()
    model(src, tgt).backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    src = rng.integers(3, V, (N, S))
    tgt = rng.integers(3, V, (N, T + 1))
    tgt[:, 0] = 1
    cfg = Seq2SeqConfig(
        vocab_size=V, tgt_vocab_size=V, embedding_dim=E, hidden_size=H, num_layers=2, seed=0
    )
    ours = Seq2Seq(cfg)
    contenders = [Contender("rnncore", lambda: rnncore_step(ours, (src, tgt)))]
    try:
        import torch

        torch.set_num_threads(args.torch_threads)
        theirs = torch_model(torch)
        batch = (torch.from_numpy(src), torch.from_numpy(tgt))
        contenders.append(Contender("torch", lambda: torch_step(torch, theirs, batch)))
    except ImportError:
        print("torch is not installed: rnncore alone")
    print(machine())
    race(contenders, reps=args.reps, warmup=1)
    medians = {c.name: c.median for c in contenders}
    for c in contenders:
        spread = f"{min(c.times) * 1e3:.0f}-{max(c.times) * 1e3:.0f}"
        print(
            f"{c.name:8s} median {c.median * 1e3:8.1f} ms/step (range {spread} ms), "
            f"{N * T / c.median:,.0f} tok/s"
        )
    if "torch" in medians:
        print(f"speed-up rnncore / torch: {medians['torch'] / medians['rnncore']:.2f}x")


if __name__ == "__main__":
    main()
