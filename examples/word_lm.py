"""A word-level LSTM language model in plain PyTorch, with one import swappable.

The classic PyTorch word-language-model recipe: ``nn.Embedding`` ->
``nn.LSTM`` -> ``nn.Linear``, truncated backprop through time with the state
carried across chunks, SGD with gradient clipping, ``torch.save`` of the best
model. ``--rnncore`` changes one import, ``torch.nn.LSTM`` to
``rnncore.torch.LSTM``; nothing else in the script knows the difference.

Without ``--data`` the corpus is the English help text that ships with every
CPython (``pydoc_data.topics``), so it runs with no download.

    python examples/word_lm.py --epochs 1                 # torch.nn.LSTM
    python examples/word_lm.py --epochs 1 --rnncore       # rnncore.torch.LSTM
"""

from __future__ import annotations

import argparse
import collections
import math
import pydoc_data.topics
import time

import torch
from torch import nn


def lstm_class(use_rnncore: bool) -> type[nn.LSTM]:
    """The one line that changes."""
    if use_rnncore:
        from rnncore.torch import LSTM
    else:
        from torch.nn import LSTM
    return LSTM


# ----------------------------------------------------------------------------- data


def read_words(path: str | None) -> list[str]:
    """Whitespace-separated words, ``<eos>`` at the end of every line."""
    if path is None:
        topics = pydoc_data.topics.topics
        text = "\n".join(topics[k] for k in sorted(topics))
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    return [w for line in text.splitlines() for w in [*line.split(), "<eos>"]]


def tokenize(words: list[str], vocab_size: int) -> tuple[torch.Tensor, list[str]]:
    """Ids ``(L,)`` int64 over the ``vocab_size - 1`` most frequent words and ``<unk>``."""
    counts = collections.Counter(words)
    vocab = ["<unk>"] + [w for w, _ in counts.most_common(vocab_size - 1)]
    index = {w: i for i, w in enumerate(vocab)}
    return torch.tensor([index.get(w, 0) for w in words], dtype=torch.int64), vocab


def batchify(ids: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(L,)`` -> ``(L // N, N)``: ``N`` parallel streams, one per column."""
    steps = ids.numel() // batch_size
    return ids[: steps * batch_size].view(batch_size, steps).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(T, N)`` from row ``i`` and targets ``(T*N,)``, the next words."""
    T = min(bptt, len(source) - 1 - i)
    return source[i : i + T], source[i + 1 : i + 1 + T].reshape(-1)


# ----------------------------------------------------------------------------- model


class RNNModel(nn.Module):
    """Embedding ``(V, E)`` -> LSTM (``L`` layers of ``H``) -> dropout -> linear ``(V, H)``."""

    def __init__(self, lstm: type[nn.LSTM], V: int, E: int, H: int, L: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(V, E)
        self.rnn = lstm(E, H, L, dropout=dropout)
        self.decoder = nn.Linear(H, V)
        self.H, self.L = H, L
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def forward(self, ids: torch.Tensor, hidden: tuple[torch.Tensor, torch.Tensor]):
        emb = self.drop(self.encoder(ids))  # (T, N, E)
        output, hidden = self.rnn(emb, hidden)  # (T, N, H)
        logits = self.decoder(self.drop(output))  # (T, N, V)
        return logits.view(-1, logits.size(-1)), hidden

    def init_hidden(self, N: int) -> tuple[torch.Tensor, torch.Tensor]:
        weight = next(self.parameters())
        return weight.new_zeros(self.L, N, self.H), weight.new_zeros(self.L, N, self.H)


# ----------------------------------------------------------------------------- training


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="a text file (default: Python's own help text)")
    p.add_argument("--rnncore", action="store_true", help="use rnncore.torch.LSTM")
    p.add_argument("--vocab-size", type=int, default=10_000, help="V, with <unk>")
    p.add_argument("--emsize", type=int, default=512, help="E, embedding size")
    p.add_argument("--nhid", type=int, default=512, help="H, hidden units per layer")
    p.add_argument("--nlayers", type=int, default=2, help="L, LSTM layers")
    p.add_argument("--lr", type=float, default=20.0, help="SGD learning rate")
    p.add_argument("--clip", type=float, default=0.25, help="gradient-norm clipping")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch-size", type=int, default=32, help="N")
    p.add_argument("--bptt", type=int, default=35, help="T, steps per chunk")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--float64", action="store_true", help="train in float64")
    p.add_argument("--seed", type=int, default=1111)
    p.add_argument("--save", default=None, help="torch.save the best model here")
    p.add_argument("--log-interval", type=int, default=50)
    return p.parse_args(argv)


def repackage_hidden(h):
    """Cut the graph at the chunk boundary: detach the state from its history."""
    return tuple(t.detach() for t in h)


def evaluate(model: RNNModel, source: torch.Tensor, bptt: int) -> float:
    """Mean cross-entropy (nats per word) of ``source (L, N)``."""
    model.eval()
    total, count = 0.0, 0
    hidden = model.init_hidden(source.size(1))
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            ids, targets = get_batch(source, i, bptt)
            logits, hidden = model(ids, hidden)
            total += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            count += targets.numel()
    return total / count


def main(argv: list[str] | None = None) -> list[float]:
    """Train; returns the loss of every training step."""
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.float64:
        torch.set_default_dtype(torch.float64)
    try:
        ids, vocab = tokenize(read_words(args.data), args.vocab_size)
        split = int(0.9 * len(ids))
        train_data = batchify(ids[:split], args.batch_size)  # (L, N)
        val_data = batchify(ids[split:], 10)
        LSTM = lstm_class(args.rnncore)
        model = RNNModel(LSTM, len(vocab), args.emsize, args.nhid, args.nlayers, args.dropout)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
        print(f"{LSTM.__module__}.LSTM, {len(ids):,} words, V = {len(vocab):,}")
        losses: list[float] = []
        best = math.inf
        for epoch in range(1, args.epochs + 1):
            model.train()
            hidden = model.init_hidden(args.batch_size)
            start = time.perf_counter()
            for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
                ids_in, targets = get_batch(train_data, i, args.bptt)
                hidden = repackage_hidden(hidden)
                optimizer.zero_grad()
                logits, hidden = model(ids_in, hidden)
                loss = nn.functional.cross_entropy(logits, targets)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                optimizer.step()
                losses.append(loss.item())
                if (batch + 1) % args.log_interval == 0:
                    ms = (time.perf_counter() - start) * 1000 / args.log_interval
                    print(
                        f"epoch {epoch} step {batch + 1}: loss {loss.item():.3f}, {ms:.0f} ms/step"
                    )
                    start = time.perf_counter()
                if args.max_steps is not None and len(losses) >= args.max_steps:
                    break
            val = evaluate(model, val_data, args.bptt)
            print(f"epoch {epoch}: validation loss {val:.3f}, perplexity {math.exp(val):.1f}")
            if val < best and args.save:
                torch.save(model.state_dict(), args.save)
                best = val
            if args.max_steps is not None and len(losses) >= args.max_steps:
                break
        return losses
    finally:
        torch.set_default_dtype(torch.float32)


if __name__ == "__main__":
    main()
