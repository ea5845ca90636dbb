"""Rebuild a model and its vocabulary from a checkpoint.

A checkpoint's ``state.json`` names the model's kind under :data:`MODEL_KIND_KEY`
(:mod:`rnncore.checkpoint.kinds`: a ``CharLM`` when absent), carries the model
config under :data:`MODEL_CONFIG_KEY` (``dataclasses.asdict(model.config)``) and
the vocabulary under :data:`VOCAB_KEY` (``vocab.to_dict()``). :func:`load_model`
checks the sizes the config implies against the stored tensors, builds the
model from the config, checks every weight's name, shape and dtype
against that model before loading it, and checks the vocabulary size, so a
checkpoint that does not fit its config is a :class:`CheckpointError`, not a
broadcasting error later.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnncore.checkpoint.format import MODEL_FILE, STATE_FILE, Checkpoint, load_checkpoint
from rnncore.checkpoint.kinds import Kind, check_sizes, kinds
from rnncore.data.pairs import PairVocab, PairVocabs
from rnncore.data.vocab import vocab_from_dict
from rnncore.errors import CheckpointError, RnnCoreError

__all__ = [
    "MODEL_CONFIG_KEY",
    "MODEL_KIND_KEY",
    "VOCAB_KEY",
    "build_model",
    "check_tensors",
    "checkpoint_kind",
    "checkpoint_vocab",
    "load_model",
]

MODEL_KIND_KEY = "model_kind"
MODEL_CONFIG_KEY = "model_config"
VOCAB_KEY = "vocab"


def check_tensors(
    where: str, tensors: dict[str, np.ndarray], expected: dict[str, np.ndarray]
) -> None:
    """Raise :class:`CheckpointError` (naming ``where``) unless ``tensors`` has
    exactly the names of ``expected``, each with its shape and dtype."""
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"{where}: tensors do not match the config (missing {missing}, unexpected {extra})"
        )
    for name in sorted(expected):
        got, want = tensors[name], expected[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"{where}: {name} is {got.dtype} {got.shape}, the config needs "
                f"{want.dtype} {want.shape}"
            )


def checkpoint_kind(ckpt: Checkpoint) -> Kind:
    """The model kind ``ckpt`` names under :data:`MODEL_KIND_KEY` (``char_lm``
    when it names none: checkpoints written before there were other kinds)."""
    where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
    name = ckpt.state.get(MODEL_KIND_KEY, "char_lm")
    table = kinds()
    if not isinstance(name, str) or name not in table:
        raise CheckpointError(
            f"{where}: unknown {MODEL_KIND_KEY} {str(name)[:100]!r}; known: {sorted(table)}"
        )
    return table[name]


def build_model(ckpt: Checkpoint) -> Any:
    """The model described by ``ckpt`` (any kind), with its weights loaded."""
    kind = checkpoint_kind(ckpt)
    where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
    config = ckpt.state.get(MODEL_CONFIG_KEY)
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: no model config under {MODEL_CONFIG_KEY!r}")
    try:
        parsed = kind.config.from_dict(config)
    except (TypeError, RnnCoreError) as err:
        raise CheckpointError(f"{where}: invalid model config ({err})") from None
    weights = ckpt.path / MODEL_FILE if ckpt.path else MODEL_FILE
    check_sizes(str(where), str(weights), kind, parsed, ckpt.model)
    model = kind.model(parsed)
    check_tensors(str(weights), ckpt.model, dict(model.state_dict()))
    model.load_state_dict(ckpt.model)
    return model


def _vocab_sizes(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """What each stored vocabulary's size must be for the model ``config``."""
    if kind == "seq2seq":
        return {"source": config.get("vocab_size"), "target": config.get("tgt_vocab_size")}
    return {"": config.get("vocab_size")}


def checkpoint_vocab(ckpt: Checkpoint) -> Any:
    """The vocabulary stored in ``ckpt``: a ``CharVocab``/``WordVocab`` for a
    language model, :class:`~rnncore.data.PairVocabs` for sequence to sequence,
    a :class:`~rnncore.data.PairVocab` for the others, or None when the model
    was trained without one (not a language model); its sizes must match the
    model's."""
    where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
    kind = checkpoint_kind(ckpt).name
    stored = ckpt.state.get(VOCAB_KEY)
    try:
        if kind == "char_lm":
            vocab: Any = vocab_from_dict(stored)
        elif stored is None:  # a model trained from Python on ids of its own
            return None
        elif kind == "seq2seq":
            vocab = PairVocabs.from_dict(stored)
        else:
            vocab = PairVocab.from_dict(stored)
    except RnnCoreError as err:
        raise CheckpointError(f"{where}: invalid vocabulary ({err})") from None
    config = ckpt.state.get(MODEL_CONFIG_KEY)
    sizes = _vocab_sizes(kind, config if isinstance(config, dict) else {})
    for side, size in sizes.items():
        part = getattr(vocab, side) if side else vocab
        if size != len(part):
            name = f"the {side} vocabulary" if side else "the vocabulary"
            raise CheckpointError(f"{where}: {name} has {len(part)} symbols but the model {size}")
    return vocab


def load_model(path: str | os.PathLike) -> tuple[Any, Any, Checkpoint]:
    """Load a checkpoint directory: ``(model, vocab, checkpoint)`` for any model
    kind (:func:`checkpoint_vocab` says what ``vocab`` is); the model is in eval
    mode."""
    ckpt = load_checkpoint(path)
    vocab = checkpoint_vocab(ckpt)
    model = build_model(ckpt)
    model.eval()
    return model, vocab, ckpt
