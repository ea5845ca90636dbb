"""Scheduled sampling against teacher forcing on the same step budget: the date task
through rnncore.train.Trainer, then greedy exact match on held-out dates.

    RNNCORE_NUM_THREADS=1 python benches/bench_seq2seq_sampling.py --steps 400

Every run starts from the same weights (seed 0) and reads the same batches
(``ExampleBatcher``, seed 0); only the decoder's inputs differ: the true
previous symbol (teacher forcing), or with probability ``1 - eps_i`` the
model's own previous prediction, ``eps_i`` decaying over the steps
(``optim.SamplingSchedule``). A measurement, not a claim: the table is what
this budget gives.
"""

from __future__ import annotations

import argparse
import time

from bench_seq2seq_dates import exact_match

from rnncore.data import ExampleBatcher, PairVocabs, collate_pairs, date_pairs
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer

RUNS = {  # name -> TrainConfig fields
    "teacher forcing": {},
    "linear, k = steps, floor 0.5": {"sampling_decay": "linear", "sampling_floor": 0.5},
    "inverse sigmoid, k = steps / 8": {"sampling_decay": "inverse_sigmoid"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()

    train = date_pairs(args.train, seed=0)
    seen = {s for s, _ in train}
    test = [p for p in date_pairs(args.test * 2, seed=1) if p[0] not in seen][: args.test]
    vocabs = PairVocabs.from_pairs(train)
    encoded, _ = vocabs.encode(train)
    lengths = [len(s) for s, _ in encoded]
    rows = []
    for name, fields in RUNS.items():
        if fields.get("sampling_decay") == "linear":
            fields = {**fields, "sampling_k": float(args.steps)}
        elif fields:
            fields = {**fields, "sampling_k": max(1.0, args.steps / 8)}
        config = Seq2SeqConfig(
            vocab_size=len(vocabs.source), tgt_vocab_size=len(vocabs.target),
            embedding_dim=32, hidden_size=args.hidden, seed=0,
        )  # fmt: skip
        model = Seq2Seq(config)
        batcher = ExampleBatcher(encoded, collate_pairs, 64, lengths, (0.98, 0.02, 0.0), seed=0)
        optimizer = create("adam", dict(model.named_parameters()), lr=3e-3)
        settings = TrainConfig(
            max_steps=args.steps, max_epochs=None, eval_every=0, progress=False, **fields
        )
        started = time.perf_counter()
        Trainer(model, optimizer, batcher, settings).fit()
        seconds = time.perf_counter() - started
        acc = exact_match(model.eval(), vocabs.source, vocabs.target, test)
        rows.append((name, acc, seconds))
        print(f"{name}: greedy exact match {acc:.4f} after {args.steps} steps ({seconds:.0f} s)")
    print(f"\n| decoder inputs ({args.steps} steps, H={args.hidden}) | exact match | seconds |")
    print("|---|---:|---:|")
    for name, acc, seconds in rows:
        print(f"| {name} | {acc:.4f} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
