"""Beam-5 translation throughput: rnncore.decode.seq2seq.translate against the same
model's beam search written with torch ops, same weights, side by side
(alternating, medians).

    RNNCORE_NUM_THREADS=1 python benches/bench_seq2seq_beam.py --reps 7

The model is the standard seq2seq configuration of bench_seq2seq.py (2-layer
bidirectional LSTM encoder H=256, LSTM decoder H=256 with Bahdanau attention and
input feeding, E=128, V=64, float32) with random weights, copied into that bench's
torch model. Sources are 30 symbols; every sentence is decoded for ``--length``
symbols (EOS is made unreachable by a head bias of -1e4, so both searches do the
same fixed work). A repetition translates ``--sentences`` sources one at a time.
The torch search follows rnncore's (``rnncore.decode.beam``: best 2B candidates,
EOS candidates within the best B set aside, early stop), under ``torch.no_grad``;
the best hypotheses of the two are compared as a check.
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_seq2seq import E, H, S, V, torch_model
from harness import Contender, machine, race

from rnncore.decode.seq2seq import translate
from rnncore.models import Seq2Seq, Seq2SeqConfig

BOS, EOS = 1, 2


def copy_weights(torch, theirs, ours):
    """Our parameters into the torch model of bench_seq2seq.py."""
    p = {k: torch.from_numpy(v.copy()) for k, v in ours.named_parameters()}
    names = {
        "src_embedding.weight": "src_embedding.weight",
        "tgt_embedding.weight": "tgt_embedding.weight",
        "bridge.weight": "bridge.weight", "bridge.bias": "bridge.bias",
        "cell.weight_ih": "decoder.weight_ih", "cell.weight_hh": "decoder.weight_hh",
        "cell.bias_ih": "decoder.bias_ih", "cell.bias_hh": "decoder.bias_hh",
        "w_query.weight": "decoder.attention_weight_query",
        "w_key.weight": "decoder.attention_weight_key", "v": "decoder.attention_v",
        "head.weight": "head.weight", "head.bias": "head.bias",
    }  # fmt: skip
    state = {k: p[v] for k, v in names.items()}
    state.update({f"encoder.{k}": p[f"encoder.{k}"] for k, _ in theirs.encoder.named_parameters()})
    theirs.load_state_dict(state)
    theirs.eval()


def torch_translate(torch, m, src, beam_size, max_length):
    """The best hypothesis (ids, EOS included if emitted) for ``src (S,)``."""
    with torch.no_grad():
        out, (h_n, _) = m.encoder(m.src_embedding(src[:, None]))  # (S, 1, 2H)
        memory = out.transpose(0, 1)  # (1, S, M)
        keys = m.w_key(memory)  # (1, S, A)
        h = torch.tanh(m.bridge(torch.cat([h_n[-2], h_n[-1]], dim=1)))  # (1, H)
        c = torch.zeros_like(h)
        context = memory.new_zeros(1, memory.shape[2])  # (1, M)

        def step(ids, h, c, context):
            b = ids.shape[0]
            x = torch.cat([m.tgt_embedding(ids), context], dim=1)  # (b, E + M)
            h, c = m.cell(x, (h, c))
            e = torch.tanh(m.w_query(h)[:, None, :] + keys.expand(b, -1, -1))  # (b, S, A)
            a = torch.softmax(e @ m.v, dim=1)  # (b, S)
            context = torch.einsum("ns,nsm->nm", a, memory.expand(b, -1, -1))
            logits = m.head(torch.cat([h, context], dim=1))  # (b, V)
            return torch.log_softmax(logits, dim=1).double(), h, c, context

        next_lp, h, c, context = step(torch.tensor([BOS]), h, c, context)
        seqs = torch.zeros((1, 0), dtype=torch.int64)
        total = torch.zeros(1, dtype=torch.float64)
        finished: list[tuple[float, list[int]]] = []
        for t in range(max_length):
            flat = (total[:, None] + next_lp).reshape(-1)  # (b * V,)
            vals, order = flat.topk(min(2 * beam_size, flat.numel()))
            beam, tok = order // next_lp.shape[1], order % next_lp.shape[1]
            ends = tok == EOS
            for i in torch.nonzero(ends[:beam_size]).flatten().tolist():
                finished.append((float(vals[i]), [*seqs[beam[i]].tolist(), EOS]))
            keep = ~ends
            beam, tok, vals = beam[keep][:beam_size], tok[keep][:beam_size], vals[keep][:beam_size]
            seqs = torch.cat([seqs[beam], tok[:, None]], dim=1)
            total = vals
            if beam.numel() == 0 or t + 1 == max_length:
                break
            if finished and max(f[0] for f in finished) >= float(total.max()):
                seqs = seqs[:0]
                break
            next_lp, h, c, context = step(tok, h[beam], c[beam], context[beam])
        if seqs.shape[0] and seqs.shape[1] == max_length:
            finished += [(float(v), s) for v, s in zip(total.tolist(), seqs.tolist())]
        return max(finished, key=lambda f: f[0])[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--length", type=int, default=30, help="symbols per translation")
    parser.add_argument("--sentences", type=int, default=10, help="per repetition")
    parser.add_argument("--torch-threads", type=int, default=1)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare against")
        return
    torch.set_num_threads(args.torch_threads)
    cfg = Seq2SeqConfig(
        vocab_size=V, tgt_vocab_size=V, embedding_dim=E, hidden_size=H, num_layers=2, seed=0
    )
    ours = Seq2Seq(cfg)
    ours.head.bias[EOS] = -1e4  # every search runs the full --length symbols
    theirs = torch_model(torch)
    copy_weights(torch, theirs, ours)
    sources = np.random.default_rng(0).integers(3, V, (args.sentences, S))
    torch_sources = [torch.from_numpy(s) for s in sources]

    def run_ours():
        return [
            translate(ours, s, beam_size=args.beam, max_length=args.length)[0].ids for s in sources
        ]

    def run_theirs():
        return [torch_translate(torch, theirs, s, args.beam, args.length) for s in torch_sources]

    same = sum(a == b for a, b in zip(run_ours(), run_theirs()))
    print(f"{machine()}; best hypotheses equal on {same} of {len(sources)} sentences")
    contenders = [Contender("rnncore", run_ours), Contender("torch", run_theirs)]
    race(contenders, reps=args.reps, warmup=1)
    print(
        f"beam {args.beam}, {args.length} symbols, source length {S}, one sentence at a "
        f"time, torch threads {args.torch_threads}"
    )
    print("| contender | median s / rep | sentences/s | spread |")
    print("|---|---:|---:|---:|")
    for c in contenders:
        rate = args.sentences / c.median
        print(f"| {c.name} | {c.median:.3f} | {rate:.1f} | {c.spread:.2f} |")
    ratio = contenders[1].median / contenders[0].median
    print(f"rnncore / torch throughput: {ratio:.2f}x")


if __name__ == "__main__":
    main()
