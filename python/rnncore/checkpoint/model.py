"""Rebuild a language model and its vocabulary from a checkpoint.

A checkpoint's ``state.json`` carries the model config under
:data:`MODEL_CONFIG_KEY` (``dataclasses.asdict(model.config)``) and the
vocabulary under :data:`VOCAB_KEY` (``vocab.to_dict()``). :func:`load_model`
builds the model from the config, checks every weight's name, shape and dtype
against that model before loading it, and checks the vocabulary size, so a
checkpoint that does not fit its config is a :class:`CheckpointError`, not a
broadcasting error later.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from rnncore.checkpoint.format import MODEL_FILE, STATE_FILE, Checkpoint, load_checkpoint
from rnncore.data.vocab import Vocab, vocab_from_dict
from rnncore.errors import CheckpointError, RnnCoreError

__all__ = [
    "MODEL_CONFIG_KEY",
    "VOCAB_KEY",
    "build_model",
    "check_tensors",
    "checkpoint_vocab",
    "load_model",
]

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


def _check_sizes(where: str, weights: str, config: Any, tensors: dict[str, np.ndarray]) -> None:
    """Raise unless the sizes of ``config`` (an ``LMConfig``) are those of the
    stored ``tensors``: checked before the model is built, so a small
    ``state.json`` cannot make it allocate more than the weights on disk hold."""
    V, H, L, E = config.vocab_size, config.hidden_size, config.num_layers, config.embedding_dim
    want = {"head.weight": (V, H)}
    if E is not None:
        want["embedding.weight"] = (V, E)
    for name, shape in want.items():
        got = tensors.get(name)
        if got is None or got.shape != shape:
            have = "missing" if got is None else f"{got.dtype} {got.shape}"
            raise CheckpointError(
                f"{weights}: {name} is {have}, the config needs {config.dtype} {shape}"
            )
    layers = sorted(k for k in tensors if k.startswith("rnn.weight_hh_l") and "reverse" not in k)
    if len(layers) != L:  # first: L comes from the untrusted state.json
        raise CheckpointError(
            f"{weights}: holds {len(layers)} layers, the config ({where}) needs {L} layers"
        )
    expected = [f"rnn.weight_hh_l{k}" for k in range(L)]
    if layers != sorted(expected) or any(tensors[k].shape[-1:] != (H,) for k in expected):
        raise CheckpointError(
            f"{weights}: holds {[(k, tensors[k].shape) for k in layers]}, the config "
            f"({where}) needs {L} layers of hidden size {H}"
        )


def build_model(ckpt: Checkpoint) -> Any:
    """The ``CharLM`` described by ``ckpt``, with its weights loaded."""
    from rnncore.models import CharLM, LMConfig

    where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
    config = ckpt.state.get(MODEL_CONFIG_KEY)
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: no model config under {MODEL_CONFIG_KEY!r}")
    try:
        parsed = LMConfig.from_dict(config)
    except (TypeError, RnnCoreError) as err:
        raise CheckpointError(f"{where}: invalid model config ({err})") from None
    weights = ckpt.path / MODEL_FILE if ckpt.path else MODEL_FILE
    _check_sizes(str(where), str(weights), parsed, ckpt.model)
    model = CharLM(parsed)
    check_tensors(str(weights), ckpt.model, dict(model.state_dict()))
    model.load_state_dict(ckpt.model)
    return model


def checkpoint_vocab(ckpt: Checkpoint) -> Vocab:
    """The vocabulary stored in ``ckpt`` (it must match the model's size)."""
    where = ckpt.path / STATE_FILE if ckpt.path else STATE_FILE
    try:
        vocab = vocab_from_dict(ckpt.state.get(VOCAB_KEY))
    except RnnCoreError as err:
        raise CheckpointError(f"{where}: invalid vocabulary ({err})") from None
    config = ckpt.state.get(MODEL_CONFIG_KEY)
    size = config.get("vocab_size") if isinstance(config, dict) else None
    if size != len(vocab):
        raise CheckpointError(
            f"{where}: the vocabulary has {len(vocab)} symbols but the model {size}"
        )
    return vocab


def load_model(path: str | os.PathLike) -> tuple[Any, Vocab, Checkpoint]:
    """Load a checkpoint directory: ``(model, vocab, checkpoint)``; the model is
    in eval mode."""
    ckpt = load_checkpoint(path)
    vocab = checkpoint_vocab(ckpt)
    model = build_model(ckpt)
    model.eval()
    return model, vocab, ckpt
