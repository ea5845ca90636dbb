"""Captioning scikit-learn's 8x8 digits with models.Captioner: each image's caption
is "<digit name> <even|odd>" ("seven odd"), for both ways of conditioning the
decoder on the image, then greedy exact match on held-out images.

    RNNCORE_NUM_THREADS=1 python benches/bench_captioner_digits.py --steps 1500

Needs scikit-learn (scripts/requirements-optional.txt) for ``load_digits``, the
1,797 images bundled with it (no download); without it the script says so and
exits. The features are the 64 pixel values scaled to 0..1. A permutation drawn
from ``--split-seed`` holds out ``--test`` of the images; both models start from
``--seed`` and read the same batches. Prints a table of steps, wall time and exact
match per conditioning, for a line of RESULTS.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rnncore.data import PairVocab
from rnncore.models import Captioner, CaptionerConfig
from rnncore.optim import Adam, clip_grad_norm_

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def caption(digit: int) -> str:
    return f"{NAMES[digit]} {'even' if digit % 2 == 0 else 'odd'}"


def exact_match(model, vocab, features, texts):
    """Fraction of images whose greedy caption equals their caption exactly."""
    outputs = model.greedy(features, max_length=4)
    return float(np.mean([vocab.decode(o) == t for o, t in zip(outputs, texts)]))


def train(model, features, tgt, args):
    """``args.steps`` Adam steps on random batches (fewer if ``args.minutes`` runs
    out): ``(steps, seconds)``."""
    opt = Adam(dict(model.named_parameters()), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    budget = 60 * args.minutes if args.minutes else float("inf")
    start = time.perf_counter()
    steps = 0
    while steps < args.steps and time.perf_counter() - start < budget:
        rows = rng.choice(len(features), args.batch, replace=False)
        model.zero_grad()
        loss = model.loss(features[rows], tgt[rows])
        model.backward()
        clip_grad_norm_(model.grads, 5.0)
        opt.step(model.grads)
        steps += 1
        if steps % 250 == 0:
            print(f"  step {steps} loss {loss:.4f} {time.perf_counter() - start:.0f}s", flush=True)
    return steps, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="training steps per model")
    parser.add_argument("--minutes", type=float, default=0.0, help="wall-time cap per model")
    parser.add_argument("--test", type=float, default=0.25, help="held-out fraction")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--embedding", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0, help="weights and batches")
    parser.add_argument("--split-seed", type=int, default=1, help="train/test split")
    parser.add_argument("--condition", nargs="+", default=["init", "input"])
    args = parser.parse_args()
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn is not installed (pip install scikit-learn): nothing to run")
        return

    digits = load_digits()
    features = (digits.data / 16.0).astype(np.float32)  # (1797, 64) pixels 0..16 -> 0..1
    texts = [caption(int(d)) for d in digits.target]
    vocab = PairVocab.from_texts(texts, tokens="word")
    tgt = np.array([[1, *vocab.encode(t)[0], 2] for t in texts], np.int64)  # BOS w w EOS
    order = np.random.default_rng(args.split_seed).permutation(len(texts))
    n_test = round(args.test * len(texts))
    test, fit = order[:n_test], order[n_test:]
    rows = []
    for condition in args.condition:
        cfg = CaptionerConfig(
            vocab_size=len(vocab), feature_size=64, condition=condition,
            embedding_dim=args.embedding, hidden_size=args.hidden, seed=args.seed,
        )  # fmt: skip
        model = Captioner(cfg)
        print(f"condition={condition}: {model.num_parameters():,} parameters", flush=True)
        steps, seconds = train(model, features[fit], tgt[fit], args)
        acc = exact_match(model, vocab, features[test], [texts[i] for i in test])
        rows.append((condition, model.num_parameters(), steps, seconds, acc))
        print(f"condition={condition}: {steps} steps in {seconds:.0f}s, exact match {acc:.4f}")
    print(
        f"\ndigits captions, {len(fit)} training and {len(test)} held-out images "
        f"(split seed {args.split_seed}), H={args.hidden}, batch {args.batch}"
    )
    print("| condition | parameters | steps | train s | greedy exact match |")
    print("|---|---:|---:|---:|---:|")
    for condition, n, steps, seconds, acc in rows:
        print(f"| {condition} | {n:,} | {steps} | {seconds:.1f} | {acc:.4f} |")


if __name__ == "__main__":
    main()
