"""The ``rnncore sample`` and ``rnncore score`` subcommands (wired in by :mod:`rnncore.cli`).

    rnncore sample --checkpoint DIR [--length 500] [--temperature 1.0] [--top-k K]
                   [--top-p P] [--prime TEXT] [--seed S] [--num-samples N] [--eos SYMBOL]
    rnncore sample --checkpoint DIR --beam B [--n-best K] [--length-penalty A] ...
    rnncore score --checkpoint DIR (--text TEXT | --file FILE) [--prime TEXT]

Both take ``--ensemble DIR ...``: more checkpoints with the same vocabulary,
averaged with the first one's model. A flag the chosen mode would ignore is
an error, like a value out of range: :class:`~rnncore.errors.ArgumentError`,
which the command prints as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnncore.decode.beam import beam_search
from rnncore.decode.compiled import WEIGHTS
from rnncore.decode.ensemble import MODES, Ensemble
from rnncore.decode.sampling import sample as draw
from rnncore.decode.scoring import score
from rnncore.errors import ArgumentError

__all__ = ["add_sample_parser", "add_score_parser", "run_sample", "run_score"]

Loader = Callable[[str], tuple[Any, Any]]  # checkpoint or run directory -> (model, vocab)
SAMPLING_FLAGS = ["temperature", "top_k", "top_p", "num_samples", "seed"]  # not with --beam


def add_sample_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``sample`` subcommand's parser, added to the subparsers ``sub``."""
    s = sub.add_parser("sample", help="print text drawn from a trained model")
    s.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    s.add_argument("--length", type=int, default=500, help="symbols to draw (default 500)")
    s.add_argument("--temperature", type=float, help="0 = greedy (default 1)")
    s.add_argument("--top-k", type=int, help="draw from the K most likely symbols only")
    s.add_argument("--top-p", type=float, help="draw from the smallest set with mass P (0, 1]")
    s.add_argument("--prime", default="", help="text that starts the sample")
    s.add_argument("--seed", type=int, help="seed of the draws")
    s.add_argument("--num-samples", type=int, help="independent samples, drawn as a batch")
    s.add_argument("--beam", type=int, help="beam search with this many beams instead")
    s.add_argument("--n-best", type=int, help="hypotheses to print with --beam (default 1)")
    s.add_argument("--length-penalty", type=float, help="GNMT alpha with --beam (default 0)")
    s.add_argument("--eos", help="symbol that ends a sample or hypothesis (e.g. $'\\n')")
    _add_ensemble(s)
    return s


def add_score_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``score`` subcommand's parser, added to the subparsers ``sub``."""
    c = sub.add_parser("score", help="print how likely a trained model finds a text")
    c.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    text = c.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the text to score")
    text.add_argument("--file", help="UTF-8 file holding the text to score")
    c.add_argument("--prime", default="", help="context before the text (not scored)")
    _add_ensemble(c)
    return c


def _add_ensemble(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weights",
        choices=("full", *WEIGHTS),
        help="decode with the weight matrices in bfloat16 or int8 (CompiledLM); full: as trained",
    )
    p.add_argument("--ensemble", nargs="+", metavar="DIR", help="more checkpoints to average")
    p.add_argument(
        "--ensemble-mode",
        choices=MODES,
        help="average probabilities (prob, default) or log-probabilities (logprob)",
    )


def _load_lm(args: argparse.Namespace, load: Loader) -> tuple[Any, Any]:
    """The model of ``--checkpoint`` (or the ensemble with ``--ensemble``) and its
    vocabulary; with ``--weights``, compiled with its weights compressed."""
    model, vocab = load(args.checkpoint)
    model = _compressed(model, args.weights, args.checkpoint)
    if not args.ensemble:
        if args.ensemble_mode is not None:
            raise ArgumentError("--ensemble-mode needs --ensemble")
        return model, vocab
    models = [model]
    for path in args.ensemble:
        other, other_vocab = load(path)
        if other_vocab != vocab:
            raise ArgumentError(
                f"--ensemble {path}: its vocabulary differs from that of --checkpoint"
            )
        models.append(_compressed(other, args.weights, path))
    return Ensemble(models, mode=args.ensemble_mode or "prob"), vocab


def _compressed(model: Any, weights: str | None, path: str) -> Any:
    """``model`` compiled with ``--weights``, or as it is without the flag."""
    if weights is None or weights == "full":
        return model
    if getattr(model, "decodes_compiled", False) is not True:
        raise ArgumentError(
            f"--weights {weights}: the model of {path} has no compiled decoder (its "
            "cell or proj_size); decode it without --weights"
        )
    return model.compile(weights=weights)


def _symbol_id(vocab: Any, symbol: str | None, flag: str) -> int | None:
    """The id of one vocabulary symbol given on the command line, or None."""
    if symbol is None:
        return None
    if symbol not in vocab.symbols:
        raise ArgumentError(f"{flag} {symbol!r} is not one symbol of the vocabulary")
    return vocab.symbols.index(symbol)


def _refuse(args: argparse.Namespace, names: list[str], reason: str) -> None:
    """ArgumentError if one of the flags ``names`` was given."""
    given = ["--" + n.replace("_", "-") for n in names if getattr(args, n) is not None]
    if given:
        raise ArgumentError(f"{', '.join(given)}: {reason}")


def _check_sample_flags(args: argparse.Namespace) -> None:
    """Ranges of the sampling and beam flags, and no flag the chosen mode would ignore."""
    if args.beam is None:
        _refuse(args, ["n_best", "length_penalty"], "only with --beam")
        if args.length < 0:
            raise ArgumentError(f"--length must be >= 0, got {args.length}")
    else:
        _refuse(args, SAMPLING_FLAGS, "not with --beam (beam search draws nothing)")
        if args.beam < 1:
            raise ArgumentError(f"--beam must be >= 1, got {args.beam}")
        if args.length < 1:
            raise ArgumentError(f"--length must be >= 1 with --beam, got {args.length}")
        if args.n_best is not None and not 1 <= args.n_best <= args.beam:
            raise ArgumentError(f"--n-best must lie in 1..--beam = 1..{args.beam}")
    t = args.temperature
    if t is not None and not (np.isfinite(t) and t >= 0):
        raise ArgumentError(f"--temperature must be >= 0, got {t}")
    if args.top_k is not None and args.top_k < 1:
        raise ArgumentError(f"--top-k must be >= 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        raise ArgumentError(f"--top-p must lie in (0, 1], got {args.top_p}")
    if args.num_samples is not None and args.num_samples < 1:
        raise ArgumentError(f"--num-samples must be >= 1, got {args.num_samples}")


def run_sample(args: argparse.Namespace, load: Loader) -> int:
    """``rnncore sample``: print samples (or beam search hypotheses); ``load`` reads a
    checkpoint. With more than one result each gets a ``--- ... ---`` header line."""
    _check_sample_flags(args)
    model, vocab = _load_lm(args, load)
    prime = vocab.encode(args.prime) if args.prime else np.zeros(0, dtype=np.int64)
    eos = _symbol_id(vocab, args.eos, "--eos")
    if args.beam is not None:
        found = beam_search(
            model,
            prime_ids=prime,
            beam_size=args.beam,
            max_length=args.length,
            eos_id=eos,
            length_penalty=args.length_penalty or 0.0,
            n_best=args.n_best or 1,
        )
        texts = [vocab.decode([*prime.tolist(), *h.ids]) for h in found]
        heads = [
            f"hypothesis {i + 1}: score {h.score:.4f}, log-prob {h.log_prob:.4f}"
            for i, h in enumerate(found)
        ]
    else:
        drawn = draw(
            model,
            prime_ids=prime,
            length=args.length,
            temperature=1.0 if args.temperature is None else args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            stop_id=eos,
            num_samples=args.num_samples or 1,
            seed=args.seed,
        )
        texts = [vocab.decode([*prime.tolist(), *ids]) for ids in drawn]
        heads = [f"sample {i + 1}" for i in range(len(texts))]
    for head, text in zip(heads, texts):
        if len(texts) > 1:
            sys.stdout.write(f"--- {head} ---\n")
        sys.stdout.write(text + "\n")
    return 0


def run_score(args: argparse.Namespace, load: Loader) -> int:
    """``rnncore score``: print the symbols scored, the log-probability, nats and
    bits per symbol; ``load`` reads a checkpoint."""
    model, vocab = _load_lm(args, load)
    if args.text is not None:
        text = args.text
    else:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ArgumentError(
                f"{args.file}: not UTF-8 text ({err.reason} at byte {err.start})"
            ) from None
    ids = vocab.encode(text)
    prime = vocab.encode(args.prime) if args.prime else None
    unit = "char" if vocab.kind == "char" else "token"
    need = 2 if prime is None else 1  # without --prime the first symbol is only context
    if len(ids) < need:
        raise ArgumentError(f"the text must hold at least {need} {unit}s to score, got {len(ids)}")
    n = len(ids) - need + 1  # symbols scored
    log_prob, nats = score(model, ids, prime_ids=prime)
    sys.stdout.write(
        f"scored {n} {unit}s\n"
        f"log-prob {log_prob:.6f} nats\n"
        f"{nats:.6f} nats/{unit}\n"
        f"{nats / np.log(2):.6f} bits/{unit}\n"
    )
    return 0
