"""Data-parallel training on one machine: one process against W = 1 and W = 2
Ray workers (one thread each), on the char-rnn and word-level configs of
benches/README.md; training steps alternating A B C A B C, medians.

Besides ms per step and symbols/s it reports, per worker and step, the time of
the forward and backward (compute) and of the all-reduce: from the end of a
worker's backward until every summed piece had reached it. The worker that
finishes its backward last waits for nobody, so the smaller of the two
workers' times is the all-reduce itself (transfers through the object store,
the summation, the driver's scheduling); the larger adds the wait for the
slower worker.

On a 2-core machine two workers share the cores with the driver and Ray:
this measures correctness overhead, not a speed-up.

    python benches/bench_distributed.py [--reps 7] [--only char|word]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile

import numpy as np
import ray
from harness import Contender, machine, race

import rnncore
from rnncore.data import StreamBatcher
from rnncore.distributed import DataParallelTrainer
from rnncore.distributed.stats import WorkerStats
from rnncore.models import CharLM, LMConfig
from rnncore.optim import create
from rnncore.train import TrainConfig, Trainer


def char_setup():
    """char-rnn: embedding 65 -> 64, 2x LSTM 512, N=50, T=50, Adam, clip 5 (random
    ids: the time of a step does not depend on the text)."""
    ids = np.random.default_rng(0).integers(0, 65, 1_000_000)
    V = 65

    def make():
        config = LMConfig(vocab_size=V, cell="lstm", hidden_size=512, num_layers=2,
                          embedding_dim=64, seed=0)  # fmt: skip
        model = CharLM(config)
        return model, create("adam", dict(model.named_parameters()), lr=2e-3)

    return make, ids, 50, 50


def word_setup():
    """word-level: V=10,000, E=H=512, 2x LSTM, N=32, T=35, SGD, clip 0.25 (random ids)."""
    ids = np.random.default_rng(0).integers(0, 10_000, 400_000)

    def make():
        config = LMConfig(vocab_size=10_000, cell="lstm", hidden_size=512, num_layers=2,
                          embedding_dim=512, seed=0)  # fmt: skip
        model = CharLM(config)
        return model, create("sgd", dict(model.named_parameters()), lr=20.0)

    return make, ids, 32, 35


def contenders(make, ids, N, T, clip):
    config = TrainConfig(max_epochs=None, max_steps=10**9, grad_clip_norm=clip, eval_every=0,
                         progress=False, plot=False)  # fmt: skip
    model, opt = make()
    plain = Trainer(model, opt, StreamBatcher(ids, N, T), config)
    out = [Contender("1 process", plain.train_step, lambda: rnncore.set_num_threads(1))]
    per_step: dict[str, list[list[dict]]] = {}
    trainers = []
    for W in (1, 2):
        model, opt = make()
        t = DataParallelTrainer(model, opt, StreamBatcher(ids, N, T), config, workers=W)
        t.start()
        trainers.append(t)
        per_step[f"W={W}"] = []

        def step(t=t, log=per_step[f"W={W}"]):
            t.stats = WorkerStats()
            t.train_step()
            log.append([WorkerStats.row(acc) for acc in t.stats.total])

        out.append(Contender(f"W={W}", step))
    return out, per_step, trainers, model.num_parameters()


def report(title, cs, per_step, P, N, T):
    base = cs[0].median
    print(f"\n{title}: {P:,} parameters, all-reduce of {P * 4 / 1e6:.1f} MB (float32)")
    print("| contender | ms/step | symbols/s | vs 1 process | compute ms | all-reduce ms "
          "(min / max of workers) | all-reduce share |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in cs:
        ms = 1e3 * c.median
        cells = ["—", "—", "—"]
        steps = per_step.get(c.name, [])[-len(c.times) :]
        if steps:
            compute = statistics.median(max(w["compute_ms"] for w in s) for s in steps)
            lo = statistics.median(min(w["allreduce_ms"] for w in s) for s in steps)
            hi = statistics.median(max(w["allreduce_ms"] for w in s) for s in steps)
            cells = [f"{compute:.1f}", f"{lo:.1f} / {hi:.1f}", f"{lo / ms:.0%} / {hi / ms:.0%}"]
        print(f"| {c.name} | {ms:.1f} | {N * T / c.median:,.0f} | {base / c.median:.2f}x | "
              f"{' | '.join(cells)} |  (spread {c.spread:.0%})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--only", choices=["char", "word"])
    args = parser.parse_args()
    print(f"machine: {machine()}; Ray {ray.__version__}; rnncore {rnncore.__version__}")
    root = tempfile.mkdtemp(prefix="rnr-")
    ray.init(num_cpus=3, include_dashboard=False, _temp_dir=root, log_to_driver=False,
             configure_logging=False)  # fmt: skip
    try:
        configs = {"char": (char_setup, 5.0, "char-rnn"), "word": (word_setup, 0.25, "word")}
        for key, (setup, clip, title) in configs.items():
            if args.only not in (None, key):
                continue
            make, ids, N, T = setup()
            cs, per_step, trainers, P = contenders(make, ids, N, T, clip)
            try:
                race(cs, reps=args.reps, warmup=1)
            finally:
                for t in trainers:
                    t.close()
            report(f"{title} (N={N}, T={T})", cs, per_step, P, N, T)
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
