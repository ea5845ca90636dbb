"""Train an attention encoder-decoder to normalise dates, then translate and draw
where it attends.

Human-written dates in ten formats ("3 May 1998", "05/03/98", "Sunday, May 3rd
1998", ...) generated from a seed map to ISO ``1998-05-03``; nothing is downloaded.

    python examples/seq2seq_dates.py --epochs 1 --png attention.png
"""

from __future__ import annotations

import argparse

import numpy as np

from rnncore.data import PairVocab, date_pairs, pair_batches
from rnncore.decode import translate
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.optim import Adam, clip_grad_norm_


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--png", default=None, help="write the attention heatmap here")
    args = parser.parse_args()

    pairs = date_pairs(args.pairs, seed=0)
    src_vocab = PairVocab.from_texts(s for s, _ in pairs)
    tgt_vocab = PairVocab.from_texts(t for _, t in pairs)
    src = [src_vocab.encode(s)[0] for s, _ in pairs]
    tgt = [tgt_vocab.encode(t)[0] for _, t in pairs]
    config = Seq2SeqConfig(
        vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), embedding_dim=32
    )
    model = Seq2Seq(config)
    opt = Adam(dict(model.named_parameters()), lr=3e-3)
    rng = np.random.default_rng(0)
    for epoch in range(args.epochs):
        for step, (s, s_lens, t, t_lens) in enumerate(pair_batches(src, tgt, 64, rng)):
            model.zero_grad()
            loss = model.loss(s, s_lens, t, t_lens)
            model.backward()
            clip_grad_norm_(model.grads, 5.0)
            opt.step(model.grads)
            if step % 50 == 0:
                print(f"epoch {epoch} step {step} loss {loss:.4f}", flush=True)

    for text in ["3 May 1998", "Sunday, May 3rd 1998", "05/03/98", "21st of June, 2031"]:
        best = translate(model, src_vocab.encode(text)[0], beam_size=5)[0]
        print(f"{text!r} -> {tgt_vocab.decode(best.ids)}")
    if args.png:
        from rnncore.decode.heatmap import attention_png

        text = "Sunday, May 3rd 1998"
        ids = np.array([src_vocab.encode(text)[0]])
        (out,), weights = model.greedy(ids, max_length=12)
        labels = [tgt_vocab.symbols[i] for i in out]
        labels += ["<eos>"] * (weights.shape[1] - len(out))  # the step that chose EOS
        attention_png(args.png, weights[0, : len(labels)], list(text), labels)
        print(f"attention of {text!r} written to {args.png}")


if __name__ == "__main__":
    main()
