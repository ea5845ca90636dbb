"""Generation speed (benches/README.md, issue targets of decoding):

- batch-1 sampling of 1,000 characters from a 2x512 LSTM char model (65
  symbols), rnncore against PyTorch loops that advance one character per call
  under no_grad (nn.LSTM, and two nn.LSTMCell), 1 and 2 threads, and the
  model compiled with its weight matrices in bfloat16 and int8;
- the memory-bandwidth floor: bytes of weights read per character divided by
  the bandwidth a large matrix-vector product reaches here, in the same run;
- batched sampling (64 samples at once) against batch 1, in characters/s;
- beam search (beam 10) against greedy decoding of the same length;
- with ``--weights``: batch-1 sampling with the weight matrices in float32,
  bfloat16 and int8 (``model.compile(weights=...)``), side by side, for the
  2x512 model (13 MB of weights, inside the last-level cache here) and a 2x1536
  one (114 MB, streamed from memory each character); with ``--checkpoint DIR``
  also what compression costs a trained model: nats/char of the first
  ``--score-chars`` characters of the last 10% of ``--text`` (the split that
  ``rnncore train`` validates on).

    python benches/bench_decode.py
    python benches/bench_decode.py --weights --checkpoint RUN/best --text CORPUS
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from harness import Contender, machine, machine_limit, race

import rnncore
from rnncore.decode import beam_search, greedy, sample
from rnncore.decode.compiled import WEIGHTS
from rnncore.models import CharLM, LMConfig

V, E, H, L = 65, 64, 512, 2


def matvec_bandwidth(nbytes: int = 128 << 20, cols: int = 4096) -> float:
    """GB/s of a float32 matrix-vector product over a ``nbytes`` matrix (numpy)."""
    rows = nbytes // (4 * cols)
    a = np.random.default_rng(0).standard_normal((rows, cols), dtype=np.float32)
    x = np.ones(cols, np.float32)
    a @ x
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        a @ x
        times.append(time.perf_counter() - t0)
    return a.nbytes / statistics.median(times) / 1e9


def step_flops(model: CharLM) -> float:
    """Matmul FLOPs of one decoding step of one row: the recurrent products of
    every layer, the input products above layer 0 (layer 0's are a table lookup:
    the embedding is folded into its input weights), and the readout."""
    G = 4
    return 2 * (L * G * H * H + (L - 1) * G * H * H + V * H)


def torch_contenders(torch, length: int):
    tnn = torch.nn
    emb, head = tnn.Embedding(V, E), tnn.Linear(H, V)
    lstm = tnn.LSTM(E, H, num_layers=L)
    cells = [tnn.LSTMCell(E, H), tnn.LSTMCell(H, H)]

    def loop_lstm():
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            x, state = torch.zeros(1, dtype=torch.long), None
            for _ in range(length):
                out, state = lstm(emb(x)[None], state)
                p = torch.softmax(head(out[0]), -1)
                x = torch.multinomial(p, 1, generator=gen)[0]

    def loop_cells():
        with torch.no_grad():
            gen = torch.Generator().manual_seed(0)
            x = torch.zeros(1, dtype=torch.long)
            hs = [(torch.zeros(1, H), torch.zeros(1, H)) for _ in cells]
            for _ in range(length):
                inp = emb(x)
                for i, cell in enumerate(cells):
                    hs[i] = cell(inp, hs[i])
                    inp = hs[i][0]
                x = torch.multinomial(torch.softmax(head(inp), -1), 1, generator=gen)[0]

    out = []
    for mkldnn in (True, False):
        for n in (1, 2):

            def setup(n=n, mkldnn=mkldnn):
                torch.set_num_threads(n)
                torch.backends.mkldnn.enabled = mkldnn

            tag = f"{n}t{'' if mkldnn else ' no-onednn'}"
            out.append(Contender(f"torch LSTM/{tag}", loop_lstm, setup))
            out.append(Contender(f"torch cells/{tag}", loop_cells, setup))
    return out


def compressed_speed(hidden: int, length: int, reps: int) -> None:
    """Batch-1 sampling of ``length`` characters from a 2-layer LSTM of ``hidden``
    units with each weight storage, side by side, at 1 and 2 threads."""
    model = CharLM(LMConfig(vocab_size=V, cell="lstm", hidden_size=hidden, num_layers=L,
                            embedding_dim=E, seed=0)).eval()  # fmt: skip
    kinds = {w: model.compile(weights=w) for w in ("float32", *WEIGHTS)}
    print(f"\nbatch-1 sampling of {length} characters, 2x{hidden} LSTM, by weight storage:")
    for t in (1, 2):
        cs = [
            Contender(f"{w}/{t}t", lambda c=c: sample(c, length=length, seed=0),
                      lambda t=t: rnncore.set_num_threads(t))
            for w, c in kinds.items()
        ]  # fmt: skip
        race(cs, reps=reps)
        base = cs[0].median
        for c, fast in zip(cs, kinds.values()):
            rate = length / c.median
            print(f"  {c.name:14} {fast.weight_bytes / 1e6:7.1f} MB  {c.median * 1e3:9.1f} ms  "
                  f"{rate:9,.0f} chars/s  {base / c.median:5.2f}x float32")  # fmt: skip
    rnncore.set_num_threads(None)


def compressed_quality(checkpoint: str, text_path: str, chars: int) -> None:
    """Nats/char of a trained model on held-out text with each weight storage."""
    from rnncore.checkpoint import load_model
    from rnncore.decode import score

    model, vocab, _ = load_model(checkpoint)
    text = Path(text_path).read_text(encoding="utf-8")
    held = text[int(len(text) * 0.9) :][:chars]
    ids = vocab.encode(held)
    c = model.config
    print(f"\nquality, {checkpoint} ({c.cell} {c.num_layers}x{c.hidden_size}), "
          f"{len(ids):,} held-out characters of {text_path}:")  # fmt: skip
    full = None
    for w in (None, *WEIGHTS):
        fast = model.compile(weights=w)
        nats = score(fast, ids).per_symbol_loss
        full = nats if full is None else full
        print(f"  {fast.weights:9} {fast.weight_bytes / 1e6:7.2f} MB  {nats:.6f} nats/char  "
              f"{nats - full:+.6f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--weights", action="store_true", help="only the weight-storage rows")
    ap.add_argument("--checkpoint", help="with --weights: a trained char model to score")
    ap.add_argument("--text", help="with --checkpoint: the corpus it was trained on")
    ap.add_argument("--score-chars", type=int, default=100_000)
    args = ap.parse_args()
    if args.weights:
        print(f"machine: {machine()}")
        compressed_speed(H, args.length, args.reps)
        compressed_speed(3 * H, max(args.length // 4, 1), args.reps)
        if args.checkpoint:
            if not args.text:
                ap.error("--checkpoint needs --text")
            compressed_quality(args.checkpoint, args.text, args.score_chars)
        return
    try:
        import torch
    except ImportError:
        torch = None
    model = CharLM(LMConfig(vocab_size=V, cell="lstm", hidden_size=H, num_layers=L,
                            embedding_dim=E, seed=0))  # fmt: skip
    model.eval()
    n = args.length
    print(f"machine: {machine()}")
    weight_bytes = sum(p.nbytes for name, p in model.named_parameters() if "embedding" not in name)
    bw, bw_same = matvec_bandwidth(), matvec_bandwidth(weight_bytes, 512)
    floor, floor_same = weight_bytes / (bw * 1e9), weight_bytes / (bw_same * 1e9)
    print(f"weights read per character: {weight_bytes / 1e6:.1f} MB")
    print(f"matrix-vector bandwidth (numpy, 128 MiB matrix): {bw:.1f} GB/s: floor "
          f"{floor * 1e3:.3f} ms/char")  # fmt: skip
    print(f"matrix-vector bandwidth (numpy, a matrix the size of the weights, cache-"
          f"resident): {bw_same:.1f} GB/s: floor {floor_same * 1e3:.3f} ms/char")  # fmt: skip
    print(machine_limit().describe())

    fast = model.compile()  # what sample(model) does on each call (build: see below)
    ours = [Contender(f"rnncore/{t}t", lambda: sample(model, length=n, seed=0),
                      lambda t=t: rnncore.set_num_threads(t)) for t in (1, 2)]  # fmt: skip
    ours += [Contender(f"rnncore compiled once/{t}t", lambda: sample(fast, length=n, seed=0),
                       lambda t=t: rnncore.set_num_threads(t)) for t in (1, 2)]  # fmt: skip
    share = {}  # the bytes of a compressed model's weights, as a share of float32's
    for w in WEIGHTS:  # the weight matrices compressed (compiled once)
        small = model.compile(weights=w)
        share[w] = small.weight_bytes / fast.weight_bytes
        ours += [Contender(f"rnncore {w}/{t}t", lambda s=small: sample(s, length=n, seed=0),
                           lambda t=t: rnncore.set_num_threads(t)) for t in (1, 2)]  # fmt: skip
    cs = race(ours + (torch_contenders(torch, n) if torch else []), reps=args.reps)
    best_torch = min((c.median for c in cs if c.name.startswith("torch")), default=None)
    print(f"\nbatch-1 sampling of {n} characters:")
    for c in cs:
        extra = ""
        if c.name.startswith("rnncore"):
            # a compressed model's floors: its own bytes over the same bandwidths
            k = next((v for w, v in share.items() if w in c.name), 1.0)
            per = c.median / n / k
            extra = f"  {per / floor:4.2f}x / {per / floor_same:4.2f}x the floors"
            if best_torch:
                extra += f"  {best_torch / c.median:5.2f}x the fastest torch loop"
        print(f"  {c.name:30} {c.median * 1e3:9.1f} ms  {n / c.median:9,.0f} chars/s{extra}")
    build = Contender("compile", model.compile)
    race([build], reps=args.reps)
    print(f"  (model.compile(), paid by each sample(model) call: {build.median * 1e3:.1f} ms)")

    rnncore.set_num_threads(None)
    one = Contender("batch 1", lambda: sample(fast, length=n, seed=0))
    batch = Contender("batch 64", lambda: sample(fast, length=n, num_samples=64, seed=0))
    race([one, batch], reps=args.reps)
    rate_1, rate_64 = n / one.median, 64 * n / batch.median
    flops = 64 * n * step_flops(model)  # matmul FLOPs of the 64-row steps
    print(f"\nbatched sampling: 64 samples {rate_64:,.0f} chars/s vs batch 1 "
          f"{rate_1:,.0f} chars/s: {rate_64 / rate_1:.1f}x; the 64-row steps run at "
          f"{flops / batch.median / 1e9:.0f} GFLOP/s ({step_flops(model) / 1e6:.2f} MFLOP "
          f"per row and step)")  # fmt: skip

    steps = 200
    g = Contender("greedy", lambda: greedy(fast, length=steps))
    b = Contender("beam 10", lambda: beam_search(fast, beam_size=10, max_length=steps))
    race([g, b], reps=args.reps)
    print(f"\nbeam 10 vs greedy, {steps} symbols: {b.median * 1e3:.1f} ms vs {g.median * 1e3:.1f} "
          f"ms: {b.median / g.median:.2f}x the wall time")  # fmt: skip


if __name__ == "__main__":
    main()
