"""The ``rnncore`` command: train a language model on text, sample from it, score text;
train a sequence-to-sequence model and translate with it.

    rnncore train [--data FILE] [--model CELL] [--rnn-size H] ... [--out DIR]
    rnncore train --init-from DIR --data FILE    # continue a run (exactly, same data)
    rnncore sample --checkpoint DIR [--length 500] [--temperature 1.0] [--top-k K]
                   [--top-p P] [--prime TEXT] [--seed S] [--num-samples N] [--eos SYMBOL]
    rnncore sample --checkpoint DIR --beam B [--n-best K] [--length-penalty A] ...
    rnncore score --checkpoint DIR (--text TEXT | --file FILE) [--prime TEXT]
    rnncore export --checkpoint DIR --onnx model.onnx   # needs rnncore[onnx]
    rnncore inspect --checkpoint DIR --file TEXT --out DIR [--cell LAYER:UNIT]
    rnncore train ... --workers W [--ray-address HOST:PORT]  # data-parallel on Ray
    rnncore sweep --grid grid.json [--out DIR]               # many runs as Ray tasks
    rnncore seq2seq train (--pairs FILE | --task dates) ...  # an encoder-decoder
    rnncore translate --checkpoint DIR [--beam K] [--n-best K] [--attention-png PNG]

``sample`` and ``score`` also take ``--ensemble DIR ...``: more checkpoints with
the same vocabulary, whose predictions are averaged with the first one's.
Every training setting is resolved in this order: the command line, then (with
``--init-from``) the settings stored in the checkpoint, then the
``--min-char-rnn`` preset, then :data:`DEFAULTS`. Errors print one line and
exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from rnncore.checkpoint import (
    Checkpoint,
    build_model,
    checkpoint_vocab,
    load_checkpoint,
    load_model,
    resolve,
)
from rnncore.checkpoint.format import STATE_FILE
from rnncore.corpus import default_corpus
from rnncore.data import CharVocab, StreamBatcher, WordVocab, build_vocab, encode_file
from rnncore.decode import commands
from rnncore.diagnostics.command import add_inspect_parser, run_inspect
from rnncore.distributed_cli import add_sweep_parser, add_train_options, data_parallel_trainer
from rnncore.errors import ArgumentError, CheckpointError, RnnCoreError
from rnncore.export import command as export_command
from rnncore.models import CharLM, LMConfig, Seq2Seq
from rnncore.models._base import CELL_ALIASES, CELLS, NOISE_FIELDS, cell_name
from rnncore.models.min_char_rnn import FROZEN, min_char_rnn
from rnncore.optim import create
from rnncore.seq2seq_cli import add_seq2seq_parser, add_translate_parser
from rnncore.train import TrainConfig, Trainer, claim_run_dir, is_run_dir
from rnncore.train.options import add_run_options

__all__ = ["DEFAULTS", "MIN_CHAR_RNN", "build_parser", "main"]

MEMMAP_BYTES = 64 << 20  # text files above this size are encoded to an id file and memory-mapped

# Defaults of `rnncore train` (char-rnn's where it has one).
DEFAULTS: dict[str, Any] = {
    "data": None,  # None: rnncore.corpus.default_corpus()
    "model": "lstm",
    "rnn_size": 128,
    "num_layers": 2,
    "embedding_size": 0,  # 0: one-hot input
    "seq_length": 50,
    "batch_size": 50,
    "dropout": 0.0,
    "forget_bias": 0.0,  # added to the LSTM forget-gate biases at init
    "init_hh": "uniform",  # weight_hh init: torch's uniform, orthogonal or identity (IRNN)
    "input_dropout": 0.0,  # dropout inside the recurrence (rnncore.nn._noise), all off
    "recurrent_dropout": 0.0,
    "zoneout": 0.0,
    "zoneout_cell": 0.0,
    "proj_size": 0,  # P < rnn_size: an LSTM with projections (torch's proj_size); 0: none
    "grad_clip": 5.0,
    "clip_mode": "norm",
    "optimizer": "adam",
    "lr": 2e-3,
    "lr_decay": 0.97,
    "lr_decay_every": 1,
    "lr_decay_after": 10,
    "max_epochs": None,  # None: 10 epochs, unless --max-steps or --minutes limit the run
    "max_steps": None,
    "minutes": None,
    "eval_every": 200,
    "checkpoint_every": None,  # None: eval_every
    "patience": None,
    "val_fraction": 0.05,
    "test_fraction": 0.05,
    "seed": 0,
    "dtype": "float32",
    "word_level": False,
    "min_count": 1,
    "min_char_rnn": False,
}
# --min-char-rnn: Karpathy's min-char-rnn (a tanh RNN on one-hot characters, summed
# loss, Adagrad with eps inside the square root, entries clipped to [-5, 5], float64).
MIN_CHAR_RNN: dict[str, Any] = {
    "model": "rnn_tanh",
    "rnn_size": 100,
    "num_layers": 1,
    "embedding_size": 0,
    "seq_length": 25,
    "batch_size": 1,
    "dropout": 0.0,
    "grad_clip": 5.0,
    "clip_mode": "value",
    "optimizer": "adagrad",
    "lr": 0.1,
    "lr_decay": 1.0,
    "dtype": "float64",
}
ARCHITECTURE = {  # setting -> field of the model config, fixed by --init-from
    "model": "cell",
    "rnn_size": "hidden_size",
    "num_layers": "num_layers",
    "embedding_size": "embedding_dim",
    "dropout": "dropout",
    "forget_bias": "forget_bias",
    "init_hh": "init_hh",
    "input_dropout": "input_dropout",
    "recurrent_dropout": "recurrent_dropout",
    "zoneout": "zoneout",
    "zoneout_cell": "zoneout_cell",
    "proj_size": "proj_size",
    "dtype": "dtype",
    "seed": "seed",
}
MIN_CHAR_RNN_HELP = "min-char-rnn's set-up: tanh RNN H=100, T=25, N=1, Adagrad 0.1, clip 5"


class _Parser(argparse.ArgumentParser):
    """argparse, whose errors are raised as :class:`ArgumentError`, so that
    :func:`main` prints them as every other error: one line, status 2."""

    def error(self, message: str) -> NoReturn:
        raise ArgumentError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``rnncore`` (``train``, ``sample``, ``score``, ``inspect``)."""
    parser = _Parser(prog="rnncore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a character- or word-level language model")
    t.add_argument("--data", help="UTF-8 text file (default: Python's help() topics)")
    t.add_argument(
        "--model",
        choices=[*CELLS, *CELL_ALIASES],
        metavar="CELL",
        help=f"recurrent cell: {', '.join(CELLS)} (default lstm); aliases: "
        + ", ".join(f"{a} = {c}" for a, c in CELL_ALIASES.items()),
    )
    t.add_argument("--rnn-size", type=int, help="hidden size H (default 128)")
    t.add_argument("--num-layers", type=int, help="stacked layers (default 2)")
    t.add_argument(
        "--proj-size", type=int, help="LSTM with projections: h has P < H features (default 0)"
    )
    t.add_argument("--embedding-size", type=int, help="embedding size E; 0 = one-hot (default)")
    t.add_argument("--seq-length", type=int, help="T, steps per chunk (default 50)")
    t.add_argument("--batch-size", type=int, help="N, parallel streams (default 50)")
    t.add_argument("--dropout", type=float, help="dropout probability (default 0)")
    t.add_argument("--forget-bias", type=float, help="added to LSTM forget-gate biases (default 0)")
    t.add_argument(
        "--init-hh", choices=["uniform", "orthogonal", "identity"], help="W_hh init (uniform)"
    )
    t.add_argument(
        "--input-dropout", type=float, help="one dropout mask per sequence on each layer's input"
    )
    t.add_argument(
        "--recurrent-dropout",
        type=float,
        help="one dropout mask per sequence on the state W_hh reads (default 0)",
    )
    t.add_argument("--zoneout", type=float, help="zoneout rate of the hidden state (default 0)")
    t.add_argument("--zoneout-cell", type=float, help="zoneout rate of the LSTM cell state")
    t.add_argument("--grad-clip", type=float, help="gradient clip, 0 = off (default 5)")
    t.add_argument("--clip-mode", choices=["norm", "value"], help="global norm or per entry")
    t.add_argument("--optimizer", choices=["adam", "adamw", "sgd", "rmsprop", "adagrad"])
    t.add_argument("--lr", type=float, help="learning rate (default 2e-3)")
    t.add_argument("--lr-decay", type=float, help="lr factor per decay (default 0.97)")
    t.add_argument("--lr-decay-every", type=int, help="epochs between decays (default 1)")
    t.add_argument("--lr-decay-after", type=int, help="epoch of the first decay (default 10)")
    t.add_argument("--word-level", action="store_true", default=None, help="words, not chars")
    t.add_argument("--min-count", type=int, help="words seen fewer times become <unk>")
    t.add_argument("--min-char-rnn", action="store_true", default=None, help=MIN_CHAR_RNN_HELP)
    add_run_options(t, "rnncore-run")
    add_train_options(t)
    t.set_defaults(run=_train)

    commands.add_sample_parser(sub).set_defaults(run=partial(commands.run_sample, load=_load))
    commands.add_score_parser(sub).set_defaults(run=partial(commands.run_score, load=_load))
    export_command.add_export_parser(sub).set_defaults(
        run=partial(export_command.run_export, load=_load)
    )
    add_inspect_parser(sub).set_defaults(run=partial(run_inspect, load=_load))
    add_sweep_parser(sub)
    add_seq2seq_parser(sub, _Parser, _fit)
    add_translate_parser(sub)
    return parser


def _settings(args: argparse.Namespace, saved: dict[str, Any]) -> dict[str, Any]:
    """Command line over stored settings over the preset over the defaults."""
    given = {k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None}
    if "data" in given:
        if not given["data"]:
            raise ArgumentError("--data: an empty path")
        given["data"] = str(Path(given["data"]).resolve())  # usable from any directory
    elif saved.get("data") is not None:  # a path from a checkpoint is never opened
        raise ArgumentError(
            f"--init-from: the run was trained on {str(saved['data'])[:200]!r}; give the "
            "file with --data FILE (rnncore does not open a path read from a checkpoint)"
        )
    preset = given.get("min_char_rnn", saved.get("min_char_rnn", False))
    merged = {**DEFAULTS, **(MIN_CHAR_RNN if preset else {}), **saved, **given}
    return {k: merged[k] for k in DEFAULTS}


def _same(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name the same directory (``b`` exists)."""
    try:
        return a.exists() and a.samefile(b)
    except OSError:
        return False


def _saved_settings(ckpt: Checkpoint) -> dict[str, Any]:
    """The training settings stored in ``ckpt`` (a dict, or CheckpointError)."""
    extra = ckpt.state.get("extra") or {}
    settings = extra.get("settings", {}) if isinstance(extra, dict) else None
    if not isinstance(settings, dict) or not all(isinstance(k, str) for k in settings):
        where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
        raise CheckpointError(f"{where}: 'extra.settings' must be an object of settings")
    return settings


def _out_dir(args: argparse.Namespace, ckpt: Checkpoint | None) -> Path:
    """The run directory: ``--out``, else the run of ``--init-from``, else rnncore-run."""
    if args.out is not None:
        if not args.out:
            raise ArgumentError("--out: an empty path")
        return Path(args.out)
    if ckpt is None:
        return Path("rnncore-run")
    if not is_run_dir(ckpt.path.parent):
        raise ArgumentError(
            f"--init-from {ckpt.path} is not inside a run directory; give --out DIR for this run"
        )
    return ckpt.path.parent


def _architecture(s: dict[str, Any]) -> dict[str, Any]:
    """The model settings of ``s`` as :class:`LMConfig` fields."""
    return {
        "cell": cell_name(s["model"]),
        "hidden_size": s["rnn_size"],
        "num_layers": s["num_layers"],
        "embedding_dim": s["embedding_size"] or None,
        "dropout": s["dropout"],
        "forget_bias": s["forget_bias"],
        "init_hh": s["init_hh"],
        **{k: s[k] for k in NOISE_FIELDS},
        "proj_size": s["proj_size"],
        "dtype": s["dtype"],
        "seed": s["seed"],
    }


def _check_flags(
    args: argparse.Namespace, s: dict[str, Any], saved: dict[str, Any], ckpt: Checkpoint | None
) -> None:
    """Refuse flags that would be ignored: a model other than the checkpoint's or
    than min-char-rnn's, or another optimizer than the checkpoint's."""
    if ckpt is not None:
        stored, wanted = ckpt.state.get("model_config") or {}, _architecture(s)
        for setting, field in ARCHITECTURE.items():
            default = getattr(LMConfig, field, None)  # a field absent from older runs
            if getattr(args, setting) is not None and wanted[field] != stored.get(field, default):
                raise ArgumentError(
                    f"--{setting.replace('_', '-')} differs from the checkpoint's {field}="
                    f"{stored.get(field)!r}; the model of --init-from is kept as it is"
                )
        if args.optimizer is not None and args.optimizer != saved.get("optimizer"):
            raise ArgumentError("--optimizer differs from the checkpoint's; its state is kept")
    elif s["min_char_rnn"]:
        fixed = [
            k
            for k in ("model", "num_layers", "embedding_size", "dropout", "optimizer")
            if getattr(args, k) is not None
            and (cell_name(args.model) if k == "model" else getattr(args, k)) != MIN_CHAR_RNN[k]
        ]
        fixed += [
            k
            for k in ("forget_bias", "init_hh", "proj_size", *NOISE_FIELDS)
            if getattr(args, k) is not None
        ]
        if fixed:
            names = ", ".join("--" + k.replace("_", "-") for k in fixed)
            raise ArgumentError(f"--min-char-rnn fixes {names}; leave them out")


def _load_data(s: dict[str, Any], vocab: Any, out: Path) -> tuple[np.ndarray, Any]:
    """The corpus ids ``(L,)`` and vocabulary (``vocab`` if given, else built)."""
    if s["data"] is None:
        text = default_corpus()
    else:
        path = Path(s["data"])
        if path.stat().st_size > MEMMAP_BYTES:
            if vocab is None:
                vocab = build_vocab(path, s["word_level"], **_word_options(s))
            out.mkdir(parents=True, exist_ok=True)
            return encode_file(path, vocab, out / "corpus-ids.npy"), vocab
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ArgumentError(
                f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"
            ) from None
        if not text:
            raise ArgumentError(f"--data {path}: the file is empty")
    if vocab is None:
        if s["word_level"]:
            vocab = WordVocab.from_text(text, **_word_options(s))
        else:
            vocab = CharVocab.from_text(text)
    return vocab.encode(text), vocab


def _word_options(s: dict[str, Any]) -> dict[str, Any]:
    return {"min_count": s["min_count"]} if s["word_level"] else {}


def _build(
    s: dict[str, Any], V: int, ckpt: Checkpoint | None, frozen: list[str]
) -> tuple[Any, Any, list[str]]:
    """The model, its optimizer and the names of frozen parameters (those of the
    checkpoint when there is one)."""
    if ckpt is not None:
        model = build_model(ckpt)
    elif s["min_char_rnn"]:
        # Its N(0, 0.01^2) weights and Adagrad; T, N and clipping are the trainer's.
        setup = min_char_rnn(
            V, hidden_size=s["rnn_size"], learning_rate=s["lr"], dtype=s["dtype"], seed=s["seed"]
        )
        return setup.model, setup.optimizer, list(FROZEN)
    else:
        config = LMConfig(
            vocab_size=V,
            cell=cell_name(s["model"]),
            hidden_size=s["rnn_size"],
            num_layers=s["num_layers"],
            dropout=s["dropout"],
            embedding_dim=s["embedding_size"] or None,
            dtype=s["dtype"],
            forget_bias=s["forget_bias"],
            seed=s["seed"],
            init_hh=s["init_hh"],
            **{k: s[k] for k in NOISE_FIELDS},
            proj_size=s["proj_size"],
        )
        model, frozen = CharLM(config), []
    params = {k: p for k, p in model.named_parameters() if k not in frozen}
    return model, create(s["optimizer"], params, lr=s["lr"]), frozen


def _max_epochs(s: dict[str, Any]) -> int | None:
    """The epoch limit: as given, else 10 when no step or time limit is set."""
    if s["max_epochs"] is not None:
        return s["max_epochs"]
    return 10 if s["max_steps"] is None and s["minutes"] is None else None


def _train(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(_find_checkpoint(args.init_from, "latest")) if args.init_from else None
    saved = _saved_settings(ckpt) if ckpt else {}
    s = _settings(args, saved)
    _check_flags(args, s, saved, ckpt)
    out = _out_dir(args, ckpt)
    if s["val_fraction"] + s["test_fraction"] >= 1:
        raise ArgumentError("--val-fraction plus --test-fraction must be below 1")
    if args.ray_address is not None and args.workers is None:
        raise ArgumentError("--ray-address needs --workers")
    if s["data"] is not None and not Path(s["data"]).is_file():
        raise ArgumentError(f"--data {s['data']}: no such file")
    # continuing: --out is the run the checkpoint belongs to (a resume into
    # another earlier run replaces it, so it needs --force like a fresh run)
    own = ckpt is not None and ckpt.path is not None and _same(out, ckpt.path.parent)
    claim_run_dir(out, continuing=own, force=args.force, what="--out")
    ids, vocab = _load_data(s, checkpoint_vocab(ckpt) if ckpt else None, out)
    model, optimizer, frozen = _build(s, len(vocab), ckpt, list(saved.get("frozen", [])))
    s["frozen"] = frozen
    split = (1.0 - s["val_fraction"] - s["test_fraction"], s["val_fraction"], s["test_fraction"])
    batcher = StreamBatcher(ids, s["batch_size"], s["seq_length"], split)
    clip = s["grad_clip"] or None
    config = TrainConfig(
        max_epochs=_max_epochs(s),
        max_steps=s["max_steps"],
        minutes=s["minutes"],
        loss_reduction="sum" if s["min_char_rnn"] else "mean",
        grad_clip_norm=clip if s["clip_mode"] == "norm" else None,
        grad_clip_value=clip if s["clip_mode"] == "value" else None,
        lr_decay=s["lr_decay"],
        lr_decay_every=s["lr_decay_every"],
        lr_decay_after=s["lr_decay_after"],
        eval_every=s["eval_every"],
        checkpoint_every=s["checkpoint_every"],
        patience=s["patience"],
        out_dir=str(out),
        progress=not args.no_progress,
    )
    parts, extra = (model, optimizer, batcher, config), {"settings": s}
    if args.workers is None:
        trainer = Trainer(*parts, vocab=vocab, extra=extra)
    else:
        trainer = data_parallel_trainer(args, *parts, vocab=vocab, extra=extra)
    try:
        return _fit(args, trainer, ckpt, batcher, vocab, model, out)
    finally:
        if args.workers is not None:
            trainer.close()


def _fit(
    args: argparse.Namespace,
    trainer: Any,
    ckpt: Any,
    batcher: Any,
    vocab: Any,
    model: Any,
    out: Path,
) -> int:
    """Restore ``ckpt`` if given, train, and print the outcome."""
    notes = []
    if ckpt is not None:
        exact = trainer.restore(ckpt)
        if args.lr is not None:
            trainer.base_lr = args.lr
        how = "same data: exact" if exact else "other data: from its start"
        notes.append(f"resuming {ckpt.path} at step {trainer.step} ({how})")
    vocab_note = f"vocabulary {len(vocab)}" if hasattr(vocab, "__len__") else repr(vocab)
    notes.append(f"{batcher}, {vocab_note}, model {model.config}")
    if args.workers is not None:
        notes.append(f"{args.workers} data-parallel workers on Ray")
    if not args.no_progress:
        print("\n".join(notes), file=sys.stderr)
    result = trainer.fit()
    best = "-" if result.best_val_loss is None else f"{result.best_val_loss:.4f}"
    final = "-" if result.final_val_loss is None else f"{result.final_val_loss:.4f}"
    test = "" if result.test_loss is None else f", test loss {result.test_loss:.4f}"
    if trainer.guard.skipped:
        test += f"; {trainer.guard.skipped} steps skipped (non-finite loss, gradient or update)"
    print(
        f"stopped at step {result.steps} (epoch {result.epoch}, {result.stop_reason}) after "
        f"{result.seconds:.1f} s; val loss {final}, best {best}{test}; checkpoints in {out}"
    )
    if args.workers is not None:
        print(trainer.stats.summary())
    if result.stop_reason == "interrupted":
        print(f"rnncore: interrupted; continue with --init-from {out}", file=sys.stderr)
        return 130
    return 0


def _find_checkpoint(path: str, first: str) -> Path:
    """A checkpoint directory, or for a run directory its ``first`` checkpoint
    ('best' or 'latest'), else the other one."""
    p = Path(path)
    if (resolve(p) / STATE_FILE).exists() or not p.is_dir():
        return p
    for name in (first, "latest" if first == "best" else "best"):
        if (resolve(p / name) / STATE_FILE).exists():
            return p / name
    return p


def _load(path: str) -> tuple[Any, Any]:
    """The model and vocabulary of a checkpoint, or of a run directory's best one."""
    model, vocab, ckpt = load_model(_find_checkpoint(path, "best"))
    if not isinstance(model, CharLM):
        hint = "; translate with `rnncore translate`" if isinstance(model, Seq2Seq) else ""
        raise ArgumentError(
            f"--checkpoint {ckpt.path} holds a {type(model).__name__}, not a language model{hint}"
        )
    return model, vocab


def _one_line_warning(message: Any, category: Any, filename: str, lineno: int, *_: Any) -> None:
    """Warnings (the trainer's hints) as one line each; NumPy's floating-point
    warnings are off (``np.errstate``): a run that overflows says so itself."""
    print(f"rnncore: warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.showwarning = _one_line_warning
            args = build_parser().parse_args(argv)
            return int(args.run(args))
    except (RnnCoreError, OSError, UnicodeError, ValueError, TypeError, OverflowError) as err:
        print(f"rnncore: error: {err}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"rnncore: error: out of memory{f' ({err})' if str(err) else ''}", file=sys.stderr)
        return 2
    except RecursionError:
        print("rnncore: error: input nested too deeply", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnncore: interrupted", file=sys.stderr)
        return 130
