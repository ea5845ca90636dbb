"""Checkpoints: a directory of safetensors files and a JSON manifest.

- :class:`Checkpoint`, :func:`save_checkpoint`, :func:`load_checkpoint`: the
  on-disk format, written atomically and verified on load (SHA-256, tensor
  names and shapes); every problem is a :class:`~rnncore.errors.CheckpointError`.
- :func:`load_model`: the language model and vocabulary of a checkpoint.
- :func:`flatten`, :func:`unflatten`: nested recurrent states <-> named tensors.
"""

from __future__ import annotations

from rnncore.checkpoint.atomic import resolve, write_directory
from rnncore.checkpoint.format import (
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    TRAIN_FILE,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from rnncore.checkpoint.model import (
    MODEL_CONFIG_KEY,
    VOCAB_KEY,
    build_model,
    check_tensors,
    checkpoint_vocab,
    load_model,
)
from rnncore.checkpoint.tree import flatten, unflatten

__all__ = [
    "MODEL_CONFIG_KEY",
    "MODEL_FILE",
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "TRAIN_FILE",
    "VOCAB_KEY",
    "Checkpoint",
    "build_model",
    "check_tensors",
    "checkpoint_vocab",
    "flatten",
    "load_checkpoint",
    "load_model",
    "resolve",
    "save_checkpoint",
    "unflatten",
    "write_directory",
]
