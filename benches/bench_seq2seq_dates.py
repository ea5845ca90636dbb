"""Date normalisation with models.Seq2Seq: train for a wall-clock budget, then greedy
exact match on held-out dates.

    python benches/bench_seq2seq_dates.py --minutes 10 --test 2000 --beam 5

Training pairs come from ``date_pairs(seed=0)``, held-out ones from seed 1 with any
source seen in training removed. Prints the exact-match rate every evaluation and
at the end, with the wall time, so a line of RESULTS.md can quote it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnncore.data import PairVocab, date_pairs, pair_batches
from rnncore.decode import translate
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import Adam, clip_grad_norm_


def exact_match(model, src_vocab, tgt_vocab, pairs, batch_size=500):
    """Fraction of ``pairs`` whose greedy output equals the target exactly."""
    hits = 0
    for start in range(0, len(pairs), batch_size):
        part = pairs[start : start + batch_size]
        ids = [src_vocab.encode(s)[0] for s, _ in part]
        lens = np.array([len(i) for i in ids])
        src = np.zeros((len(ids), lens.max()), np.int64)
        for r, i in enumerate(ids):
            src[r, : len(i)] = i
        outputs, _ = model.greedy(src, lens, max_length=12)
        hits += sum(tgt_vocab.decode(o) == t for o, (_, t) in zip(outputs, part))
    return hits / len(pairs)


def beam_exact_match(model, src_vocab, tgt_vocab, pairs, beam_size):
    """Fraction of ``pairs`` whose best beam-search output equals the target."""
    hits = 0
    for source, target in pairs:
        best = translate(model, src_vocab.encode(source)[0], beam_size=beam_size, max_length=12)
        hits += tgt_vocab.decode(best[0].ids) == target
    return hits / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--train", type=int, default=50_000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--beam", type=int, default=0, help="also score beam search of this width")
    args = parser.parse_args()

    train = date_pairs(args.train, seed=0)
    seen = {s for s, _ in train}
    test = [p for p in date_pairs(args.test * 2, seed=1) if p[0] not in seen][: args.test]
    src_vocab = PairVocab.from_texts(s for s, _ in train)
    tgt_vocab = PairVocab.from_texts(t for _, t in train)
    src_ids = [src_vocab.encode(s)[0] for s, _ in train]
    tgt_ids = [tgt_vocab.encode(t)[0] for _, t in train]
    cfg = Seq2SeqConfig(
        vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), embedding_dim=32,
        hidden_size=args.hidden, seed=0,
    )  # fmt: skip
    model = Seq2Seq(cfg)
    opt = Adam(dict(model.named_parameters()), lr=args.lr)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    budget = 60 * args.minutes
    steps, epoch = 0, 0
    while time.perf_counter() - start < budget:
        epoch += 1
        for s, s_lens, t, t_lens in pair_batches(src_ids, tgt_ids, args.batch, rng):
            model.zero_grad()
            loss = model.loss(s, s_lens, t, t_lens)
            model.backward()
            clip_grad_norm_(model.grads, 5.0)
            opt.step(model.grads)
            steps += 1
            if steps % 200 == 0:
                elapsed = time.perf_counter() - start
                print(f"step {steps} epoch {epoch} loss {loss:.4f} {elapsed:.0f}s", flush=True)
            if time.perf_counter() - start >= budget:
                break
    train_time = time.perf_counter() - start
    acc = exact_match(model, src_vocab, tgt_vocab, test)
    print(
        f"date normalisation: {steps} steps in {train_time:.0f}s, greedy exact match "
        f"{acc:.4f} on {len(test)} held-out dates"
    )
    if args.beam:
        start = time.perf_counter()
        acc = beam_exact_match(model, src_vocab, tgt_vocab, test, args.beam)
        elapsed = time.perf_counter() - start
        print(
            f"beam {args.beam}: exact match {acc:.4f}, {len(test) / elapsed:.1f} sentences/s "
            "(one sentence at a time)"
        )


if __name__ == "__main__":
    main()
