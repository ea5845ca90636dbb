"""``rnncore seq2seq train`` and ``rnncore translate``: sequence to sequence on the
command line.

    rnncore seq2seq train (--pairs FILE | --task dates|reversal) [--tokens char|word]
        [--shared-vocab] [--model CELL] [--rnn-size H] [--num-layers L]
        [--embedding-size E] [--attention additive|general|dot|none] [--unidirectional]
        [--sampling-decay linear|exponential|inverse_sigmoid --sampling-k K] ...
        [--out DIR] [--force] [--init-from DIR]
    rnncore translate --checkpoint DIR [--beam K] [--n-best K] [--length-penalty A]
        [--max-length N] [--file FILE] [--attention-png PNG] [--ensemble DIR ...]

Training takes the limits, validation, checkpoints, resume (``--init-from``),
progress, ``metrics.csv`` and ``loss.png`` of ``rnncore train``; the settings
are resolved the same way (command line, then the checkpoint's, then
:data:`DEFAULTS`). A pairs file is read whole and checked line by line
(:func:`~rnncore.data.read_pairs`); a built-in task is generated from the seed.
``translate`` reads one source per line (stdin or ``--file``) and prints one
translation per line: greedy with ``--beam 1`` (64 sources at a time), else beam
search (the beams of 8 sources at a time);
with ``--n-best K`` each source gets ``K`` lines ``rank<TAB>score<TAB>text`` and
an empty line. ``--ensemble DIR ...`` averages the next-symbol distributions of
more models with the same vocabularies (beam search, also at ``--beam 1``); the
heatmap is the first model's.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rnncore.checkpoint import Checkpoint, checkpoint_vocab, load_checkpoint, load_model
from rnncore.checkpoint.format import STATE_FILE
from rnncore.data import (
    ExampleBatcher,
    PairVocabs,
    collate_pairs,
    date_pairs,
    read_pairs,
    reversal_pairs,
)
from rnncore.data.pairs import BOS, EOS, MAX_LINE_BYTES, SPECIALS
from rnncore.decode.seq2seq import translate_batch
from rnncore.errors import ArgumentError, CheckpointError
from rnncore.models import Seq2Seq, Seq2SeqConfig
from rnncore.models._base import CELL_ALIASES, CELLS, cell_name
from rnncore.optim import create
from rnncore.optim.schedule import SAMPLING_DECAYS
from rnncore.train import TrainConfig, Trainer, claim_run_dir, is_run_dir
from rnncore.train.options import add_run_options

__all__ = ["DEFAULTS", "add_seq2seq_parser", "add_translate_parser"]

TASKS = {"dates": date_pairs, "reversal": reversal_pairs}
BATCH = 64  # sources `translate` decodes greedily together
# sources whose beams step together: each decoder step projects the keys of every
# row's source again, so wide batches leave the cache (date model H=128, beam 5,
# one thread: 198 sentences/s one at a time, 405 at 8, 168 at 16, 119 at 64)
BEAM_BATCH = 8

# Defaults of `rnncore seq2seq train`: the date task's set-up (benches/RESULTS.md).
DEFAULTS: dict[str, Any] = {
    "pairs": None,
    "task": None,
    "task_size": 20000,  # pairs generated for --task
    "tokens": "char",
    "shared_vocab": False,
    "model": "lstm",
    "rnn_size": 128,
    "num_layers": 1,
    "embedding_size": 32,
    "attention": "additive",
    "unidirectional": False,
    "dropout": 0.0,
    "batch_size": 64,
    "optimizer": "adam",
    "lr": 3e-3,
    "grad_clip": 5.0,
    "max_epochs": None,  # None: 10 epochs, unless --max-steps or --minutes limit the run
    "max_steps": None,
    "minutes": None,
    "eval_every": 200,
    "checkpoint_every": None,
    "patience": None,
    "val_fraction": 0.05,
    "test_fraction": 0.05,
    "seed": 0,
    "dtype": "float32",
    "sampling_decay": None,
    "sampling_k": None,
    "sampling_floor": 0.0,
}
# settings that make the model, its vocabularies or its data: fixed by --init-from
FIXED = (
    "task",
    "task_size",
    "tokens",
    "shared_vocab",
    "model",
    "rnn_size",
    "num_layers",
    "embedding_size",
    "attention",
    "unidirectional",
    "dropout",
    "dtype",
    "seed",
    "optimizer",
    "val_fraction",
    "test_fraction",
)


def add_seq2seq_parser(sub: Any, parser_class: type, fit: Callable[..., int]) -> None:
    """``rnncore seq2seq train``; ``fit`` is ``rnncore train``'s restore-train-report."""
    s = sub.add_parser("seq2seq", help="sequence to sequence: train an encoder-decoder")
    commands = s.add_subparsers(dest="seq2seq_command", required=True, parser_class=parser_class)
    t = commands.add_parser("train", help="train on a pairs file or a built-in task")
    data = t.add_mutually_exclusive_group()
    data.add_argument("--pairs", help="UTF-8 file of source<TAB>target lines")
    data.add_argument("--task", choices=sorted(TASKS), help="a built-in task (no download)")
    t.add_argument("--task-size", type=int, help="pairs generated for --task (default 20000)")
    t.add_argument("--tokens", choices=["char", "word"], help="symbols: characters or words")
    t.add_argument("--shared-vocab", action="store_true", default=None, help="one vocabulary")
    t.add_argument("--model", choices=[*CELLS, *CELL_ALIASES], metavar="CELL", help="cell (lstm)")
    t.add_argument("--rnn-size", type=int, help="hidden size H of encoder and decoder (128)")
    t.add_argument("--num-layers", type=int, help="encoder layers (default 1)")
    t.add_argument("--embedding-size", type=int, help="embedding size E (default 32)")
    t.add_argument("--attention", choices=["additive", "general", "dot", "none"], help="(additive)")
    t.add_argument("--unidirectional", action="store_true", default=None, help="one-way encoder")
    t.add_argument("--dropout", type=float, help="between encoder layers (default 0)")
    t.add_argument("--batch-size", type=int, help="pairs per step (default 64)")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop", "adagrad"])
    t.add_argument("--lr", type=float, help="learning rate (default 3e-3)")
    t.add_argument("--grad-clip", type=float, help="global-norm clip, 0 = off (default 5)")
    t.add_argument("--sampling-decay", choices=SAMPLING_DECAYS, help="scheduled sampling")
    t.add_argument("--sampling-k", type=float, help="speed of the decay (see the README)")
    t.add_argument("--sampling-floor", type=float, help="lowest teacher-forcing probability")
    add_run_options(t, "rnncore-seq2seq")
    t.set_defaults(run=lambda args: run_train(args, fit), workers=None)  # no Ray here


def add_translate_parser(sub: Any) -> None:
    """``rnncore translate``."""
    t = sub.add_parser("translate", help="translate lines with a seq2seq checkpoint")
    t.add_argument("--checkpoint", required=True, help="checkpoint or run directory (its best/)")
    t.add_argument("--file", help="UTF-8 file of sources, one per line (default: stdin)")
    t.add_argument("--beam", type=int, default=1, help="beam width (default 1: greedy)")
    t.add_argument("--n-best", type=int, default=1, help="hypotheses printed per source")
    t.add_argument("--length-penalty", type=float, default=0.0, help="GNMT alpha (default 0)")
    t.add_argument("--max-length", type=int, default=100, help="output symbols at most (100)")
    t.add_argument("--attention-png", help="write the first line's attention heatmap here")
    t.add_argument("--ensemble", nargs="+", metavar="DIR", help="more checkpoints to average")
    t.add_argument(
        "--ensemble-mode",
        choices=["prob", "logprob"],
        help="average probabilities (prob, default) or log-probabilities (logprob)",
    )
    t.set_defaults(run=run_translate)


# ---------------------------------------------------------------------- training


def _settings(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """Command line over the checkpoint's settings over :data:`DEFAULTS`."""
    given = {k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None}
    if "pairs" in given:
        if not given["pairs"]:
            raise ArgumentError("--pairs: an empty path")
        given["pairs"] = str(Path(given["pairs"]).resolve())
    elif saved.get("pairs") is not None:  # a path from a checkpoint is never opened
        raise ArgumentError(
            f"--init-from: the run was trained on {str(saved['pairs'])[:200]!r}; give the "
            "file with --pairs FILE (rnncore does not open a path read from a checkpoint)"
        )
    for name in FIXED:
        if name in given and name in saved and given[name] != saved[name]:
            flag = "--" + name.replace("_", "-")
            raise ArgumentError(f"{flag} differs from the checkpoint's {saved[name]!r}; it is kept")
    merged = {**DEFAULTS, **saved, **given}
    if merged["pairs"] is None and merged["task"] is None:
        raise ArgumentError("give --pairs FILE or --task (dates or reversal)")
    return {k: merged[k] for k in DEFAULTS}


def _saved_settings(ckpt: Checkpoint) -> dict[str, Any]:
    extra = ckpt.state.get("extra") or {}
    settings = extra.get("settings") if isinstance(extra, dict) else None
    if not isinstance(settings, dict) or not set(settings) <= set(DEFAULTS):
        where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
        raise CheckpointError(f"{where}: 'extra.settings' are not seq2seq training settings")
    return settings


def _pairs(s: dict[str, Any]) -> list[tuple[str, str]]:
    """The pairs of the run: the file's, or the task's generated from the seed."""
    if s["pairs"] is not None:
        path = Path(s["pairs"])
        if not path.is_file():
            raise ArgumentError(f"--pairs {path}: no such file")
        return read_pairs(path)
    if not isinstance(s["task_size"], int) or s["task_size"] < 10:
        raise ArgumentError(f"--task-size must be an integer >= 10, got {s['task_size']!r}")
    return TASKS[s["task"]](s["task_size"], seed=s["seed"])


def _fingerprint(encoded: list[tuple[list[int], list[int]]]) -> str:
    digest = hashlib.sha256(f"{len(encoded)}".encode())
    for source, target in encoded:
        digest.update(np.asarray([*source, -1, *target, -2], "<i8").tobytes())
    return digest.hexdigest()


def _model(s: dict[str, Any], vocabs: PairVocabs) -> Seq2Seq:
    config = Seq2SeqConfig(
        vocab_size=len(vocabs.source),
        tgt_vocab_size=len(vocabs.target),
        cell=cell_name(s["model"]),
        embedding_dim=s["embedding_size"],
        hidden_size=s["rnn_size"],
        num_layers=s["num_layers"],
        bidirectional=not s["unidirectional"],
        attention=s["attention"],
        dropout=s["dropout"],
        bos_id=BOS,
        eos_id=EOS,
        dtype=s["dtype"],
        seed=s["seed"],
    )
    return Seq2Seq(config)


def _train_config(args: argparse.Namespace, s: dict[str, Any], out: Path) -> TrainConfig:
    no_limit = s["max_steps"] is None and s["minutes"] is None
    max_epochs = s["max_epochs"] if s["max_epochs"] is not None else (10 if no_limit else None)
    return TrainConfig(
        max_epochs=max_epochs,
        max_steps=s["max_steps"],
        minutes=s["minutes"],
        grad_clip_norm=s["grad_clip"] or None,
        lr_decay=1.0,
        eval_every=s["eval_every"],
        checkpoint_every=s["checkpoint_every"],
        patience=s["patience"],
        out_dir=str(out),
        progress=not args.no_progress,
        sampling_decay=s["sampling_decay"],
        sampling_k=s["sampling_k"],
        sampling_floor=s["sampling_floor"],
    )


def run_train(args: argparse.Namespace, fit: Callable[..., int]) -> int:
    """``rnncore seq2seq train``."""
    from rnncore.cli import _find_checkpoint, _same

    ckpt = load_checkpoint(_find_checkpoint(args.init_from, "latest")) if args.init_from else None
    if ckpt is not None and ckpt.state.get("model_kind") != "seq2seq":
        raise ArgumentError(f"--init-from {ckpt.path} is not a seq2seq checkpoint")
    saved = _saved_settings(ckpt) if ckpt else {}
    s = _settings(args, saved)
    if s["val_fraction"] + s["test_fraction"] >= 1:
        raise ArgumentError("--val-fraction plus --test-fraction must be below 1")
    if s["sampling_decay"] is not None and s["attention"] == "none":
        raise ArgumentError("--sampling-decay needs attention (it runs in the attention decoder)")
    if args.out is not None and not args.out:
        raise ArgumentError("--out: an empty path")
    if args.out is not None:
        out = Path(args.out)
    elif ckpt is None:
        out = Path("rnncore-seq2seq")
    elif is_run_dir(ckpt.path.parent):
        out = ckpt.path.parent
    else:
        raise ArgumentError(f"--init-from {ckpt.path} is not inside a run directory; give --out")
    pairs = _pairs(s)
    own = ckpt is not None and ckpt.path is not None and _same(out, ckpt.path.parent)
    claim_run_dir(out, continuing=own, force=args.force, what="--out")
    if ckpt is not None:
        vocabs = checkpoint_vocab(ckpt)
        from rnncore.checkpoint import build_model

        model = build_model(ckpt)
    else:
        vocabs = PairVocabs.from_pairs(pairs, s["tokens"], s["shared_vocab"])
        model = _model(s, vocabs)
    encoded, unknown = vocabs.encode(pairs)
    if unknown and not args.no_progress:
        print(f"{unknown} symbols not in the vocabularies became <unk>", file=sys.stderr)
    split = (1.0 - s["val_fraction"] - s["test_fraction"], s["val_fraction"], s["test_fraction"])
    lengths = [len(src) for src, _ in encoded]
    batcher = ExampleBatcher(
        encoded,
        collate_pairs,
        s["batch_size"],
        lengths,
        split,
        s["seed"],
        50,
        _fingerprint(encoded),
    )
    optimizer = create(s["optimizer"], dict(model.named_parameters()), lr=s["lr"])
    config = _train_config(args, s, out)
    trainer = Trainer(model, optimizer, batcher, config, vocab=vocabs, extra={"settings": s})
    return fit(args, trainer, ckpt, batcher, vocabs, model, out)


# ---------------------------------------------------------------------- translation


def _source_lines(args: argparse.Namespace) -> tuple[list[str], str]:
    """The lines to translate and where they came from (for messages)."""
    if args.file is not None:
        if not Path(args.file).is_file():
            raise ArgumentError(f"--file {args.file}: no such file")
        where, stream = args.file, open(args.file, "rb")
    else:
        where, stream = "stdin", sys.stdin.buffer
    lines = []
    try:
        for number, raw in enumerate(stream, start=1):
            if len(raw) > MAX_LINE_BYTES:
                raise ArgumentError(f"{where}, line {number}: longer than {MAX_LINE_BYTES} bytes")
            try:
                line = raw.decode("utf-8").rstrip("\n").removesuffix("\r")
            except UnicodeDecodeError as err:
                raise ArgumentError(
                    f"{where}, line {number}: not valid UTF-8 ({err.reason})"
                ) from None
            if not line.strip():
                raise ArgumentError(f"{where}, line {number}: empty (one source per line)")
            lines.append(line)
    finally:
        if args.file is not None:
            stream.close()
    if not lines:
        raise ArgumentError(f"{where}: no lines to translate")
    return lines, where


def _check_translate_flags(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--beam", args.beam),
        ("--n-best", args.n_best),
        ("--max-length", args.max_length),
    ):
        if value < 1:
            raise ArgumentError(f"{flag} must be at least 1, got {value}")
    if args.n_best > args.beam:
        raise ArgumentError(f"--n-best {args.n_best} needs --beam of at least {args.n_best}")
    if args.attention_png is not None:
        folder = Path(args.attention_png).parent
        if not args.attention_png or not folder.is_dir():
            raise ArgumentError(f"--attention-png {args.attention_png!r}: no directory {folder}")


def _greedy(model: Seq2Seq, sources: list[list[int]], max_length: int) -> list[list[int]]:
    """Greedy outputs of ``sources``, :data:`BATCH` at a time."""
    outputs: list[list[int]] = []
    for start in range(0, len(sources), BATCH):
        part = sources[start : start + BATCH]
        lens = np.array([len(p) for p in part], np.int64)
        src = np.zeros((len(part), lens.max()), np.int64)
        for r, p in enumerate(part):
            src[r, : len(p)] = p
        outputs.extend(model.greedy(src, lens, max_length)[0])
    return outputs


def _heatmap(path: str, model: Seq2Seq, vocabs: PairVocabs, line: str, ids: list[int]) -> None:
    """The attention of ``ids`` (the output for ``line``, ending in EOS if emitted)."""
    from rnncore.decode.heatmap import attention_png

    if model.config.attention == "none":
        raise ArgumentError("--attention-png: this model has no attention (attention='none')")
    source, _ = vocabs.source.encode(line)
    if not ids:
        raise ArgumentError("--attention-png: the first line's translation is empty")
    tgt_in = np.array([[BOS, *ids[:-1]]], np.int64)  # (1, T): the inputs that produced ids
    _, weights = model.logits(np.array([source]), None, tgt_in)  # (1, T, S)
    symbols = vocabs.target.symbols
    labels = [SPECIALS[i] if i < len(SPECIALS) else symbols[i] for i in ids]
    split = vocabs.source.split(line, vocabs.source.tokens)
    try:
        attention_png(path, weights[0], split, labels)
    except ImportError:
        raise ArgumentError("--attention-png needs matplotlib (pip install matplotlib)") from None


def run_translate(args: argparse.Namespace) -> int:
    """``rnncore translate``."""
    from rnncore.cli import _find_checkpoint

    _check_translate_flags(args)
    model, vocabs, ckpt = load_model(_find_checkpoint(args.checkpoint, "best"))
    if not isinstance(model, Seq2Seq):
        raise ArgumentError(
            f"--checkpoint {ckpt.path} holds a {type(model).__name__}, not a seq2seq model"
        )
    if vocabs is None or model.config.input_size is not None:
        what = "features, not text" if vocabs is not None else "ids without a vocabulary"
        raise ArgumentError(
            f"--checkpoint {ckpt.path}: the model reads {what}; translate it from Python "
            "(rnncore.decode.translate)"
        )
    others = []
    for path in args.ensemble or ():
        other, other_vocabs, _ = load_model(_find_checkpoint(path, "best"))
        if not isinstance(other, Seq2Seq) or other_vocabs != vocabs:
            raise ArgumentError(
                f"--ensemble {path}: not a seq2seq model with the vocabularies of --checkpoint"
            )
        others.append(other)
    if args.ensemble_mode is not None and not others:
        raise ArgumentError("--ensemble-mode needs --ensemble")
    lines, where = _source_lines(args)
    encoded = [vocabs.source.encode(line) for line in lines]
    unknown = sum(u for _, u in encoded)
    if unknown:
        print(
            f"rnncore: {unknown} symbols of {where} not in the vocabulary became <unk>",
            file=sys.stderr,
        )
    sources = [ids for ids, _ in encoded]
    first: list[int] = []
    if args.beam == 1 and not others:
        for k, out in enumerate(_greedy(model, sources, args.max_length)):
            print(vocabs.target.decode(out))
            if k == 0:
                first = [*out, EOS] if len(out) < args.max_length else out
    else:
        for start in range(0, len(sources), BEAM_BATCH):
            part = translate_batch(
                model,
                sources[start : start + BEAM_BATCH],
                beam_size=args.beam,
                max_length=args.max_length,
                length_penalty=args.length_penalty,
                n_best=args.n_best,
                ensemble=others,
                ensemble_mode=args.ensemble_mode or "prob",
            )
            for hyps in part:
                if args.n_best == 1:
                    print(vocabs.target.decode(hyps[0].ids))
                else:
                    for rank, h in enumerate(hyps, start=1):
                        print(f"{rank}\t{h.score:.4f}\t{vocabs.target.decode(h.ids)}")
                    print()
            if start == 0:
                first = list(part[0][0].ids)
    if args.attention_png:
        _heatmap(args.attention_png, model, vocabs, lines[0], first)
    return 0
