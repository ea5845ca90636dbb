"""String reversal with and without attention: models.Seq2Seq trained for the same
number of steps with Bahdanau attention and with ``attention="none"``, then greedy
exact match on held-out strings.

    RNNCORE_NUM_THREADS=1 python benches/bench_seq2seq_reversal.py --steps 2000

Pairs come from ``reversal_pairs`` (30-50 of 20 letters): training pairs from
``--seed`` (default 0), the held-out ones from ``--test-seed`` (default 1) with any
source seen in training removed. Both models start from the same seed and read the
same batches in the same order, with Adam on a cosine schedule over the
``--steps`` budget. Prints the loss as it trains and a table of steps, wall time,
exact match and the share of target symbols right at their position per model,
for a line of RESULTS.md. ``--minutes`` stops a model's training early when its
wall time runs out (the table says how many steps it took).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnncore.data import PairVocab, pair_batches, reversal_pairs
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import Adam, clip_grad_norm_
from rnncore.optim.schedule import Cosine


def exact_match(model, src_vocab, tgt_vocab, pairs, batch_size=250, max_length=52):
    """``(exact, symbols)``: the fraction of ``pairs`` whose greedy output equals the
    target exactly, and the fraction of target symbols output at their position."""
    hits, right = 0, 0
    for start in range(0, len(pairs), batch_size):
        part = pairs[start : start + batch_size]
        ids = [src_vocab.encode(s)[0] for s, _ in part]
        lens = np.array([len(i) for i in ids])
        src = np.zeros((len(ids), lens.max()), np.int64)
        for r, i in enumerate(ids):
            src[r, : len(i)] = i
        outputs, _ = model.greedy(src, lens, max_length=max_length)
        for o, (_, t) in zip(outputs, part):
            out = tgt_vocab.decode(o)
            hits += out == t
            right += sum(a == b for a, b in zip(out, t))
    return hits / len(pairs), right / sum(len(t) for _, t in pairs)


def train(model, src_ids, tgt_ids, args, evaluate):
    """``args.steps`` Adam steps, the rate on a half cosine from ``args.lr`` to
    ``args.lr / 20`` over them (fewer steps if ``args.minutes`` runs out): ``(steps,
    seconds)``. Every ``args.eval_every`` steps prints ``evaluate(model)``, not
    counted in the time."""
    opt = Adam(dict(model.named_parameters()), lr=args.lr)
    schedule = Cosine(total_steps=args.steps, min_lr=args.lr / 20)
    rng = np.random.default_rng(args.seed)
    budget = 60 * args.minutes if args.minutes else float("inf")
    start = time.perf_counter()
    steps = 0
    while steps < args.steps and time.perf_counter() - start < budget:
        for s, s_lens, t, t_lens in pair_batches(src_ids, tgt_ids, args.batch, rng):
            opt.lr = schedule.lr_at(args.lr, steps)
            model.zero_grad()
            loss = model.loss(s, s_lens, t, t_lens)
            model.backward()
            clip_grad_norm_(model.grads, 5.0)
            opt.step(model.grads)
            steps += 1
            if steps % 100 == 0:
                elapsed = time.perf_counter() - start
                print(f"  step {steps} loss {loss:.4f} {elapsed:.0f}s", flush=True)
            if args.eval_every and steps % args.eval_every == 0 and steps < args.steps:
                paused = time.perf_counter()
                acc, sym = evaluate(model)
                print(
                    f"  step {steps} exact match {acc:.4f}, symbols {sym:.4f}, "
                    f"{paused - start:.0f}s",
                    flush=True,
                )
                start += time.perf_counter() - paused
            if steps >= args.steps or time.perf_counter() - start >= budget:
                break
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per model")
    parser.add_argument("--minutes", type=float, default=0.0, help="wall-time cap per model")
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--embedding", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="training pairs, weights, batches")
    parser.add_argument("--test-seed", type=int, default=1, help="held-out pairs")
    parser.add_argument("--eval-every", type=int, default=0, help="also score every k steps")
    parser.add_argument(
        "--attention", nargs="+", default=["additive", "none"], help="models to train"
    )
    args = parser.parse_args()
    if args.test_seed == args.seed:
        parser.error("--test-seed must differ from --seed")

    train_pairs = reversal_pairs(args.train, seed=args.seed)
    seen = {s for s, _ in train_pairs}
    held_out = reversal_pairs(args.test * 2, seed=args.test_seed)
    test = [p for p in held_out if p[0] not in seen][: args.test]
    src_vocab = PairVocab.from_texts(s for s, _ in train_pairs)
    tgt_vocab = PairVocab.from_texts(t for _, t in train_pairs)
    src_ids = [src_vocab.encode(s)[0] for s, _ in train_pairs]
    tgt_ids = [tgt_vocab.encode(t)[0] for _, t in train_pairs]
    rows = []
    for attention in args.attention:
        cfg = Seq2SeqConfig(
            vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab),
            embedding_dim=args.embedding, hidden_size=args.hidden, attention=attention,
            seed=args.seed,
        )  # fmt: skip
        model = Seq2Seq(cfg)
        print(f"attention={attention}: {model.num_parameters():,} parameters", flush=True)
        evaluate = lambda m: exact_match(m, src_vocab, tgt_vocab, test)  # noqa: E731
        steps, seconds = train(model, src_ids, tgt_ids, args, evaluate)
        acc, sym = evaluate(model)
        rows.append((attention, model.num_parameters(), steps, seconds, acc, sym))
        print(f"attention={attention}: {steps} steps in {seconds:.0f}s, exact match {acc:.4f}")
    print(
        f"\nreversal of {len(test)} held-out strings (30-50 symbols), "
        f"H={args.hidden}, batch {args.batch}"
    )
    print("| attention | parameters | steps | train s | greedy exact match | symbols right |")
    print("|---|---:|---:|---:|---:|---:|")
    for attention, n, steps, seconds, acc, sym in rows:
        print(f"| {attention} | {n:,} | {steps} | {seconds:.0f} | {acc:.4f} | {sym:.4f} |")


if __name__ == "__main__":
    main()
