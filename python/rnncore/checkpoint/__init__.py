"""Checkpoints: a directory of safetensors files and a JSON manifest.

- :class:`Checkpoint`, :func:`save_checkpoint`, :func:`load_checkpoint`: the
  on-disk format, written atomically and verified on load (SHA-256, tensor
  names and shapes); every problem is a :class:`~rnncore.errors.CheckpointError`.
- :func:`load_model`: the language model and vocabulary of a checkpoint
  (:func:`build_model`, :func:`checkpoint_vocab`: its two halves);
  :func:`resolve`: the checkpoint a run directory stands for.

The file names, the manifest keys and the state (un)flattening of the trainer
live in the submodules (``format``, ``model``, ``tree``): internal.
"""

from __future__ import annotations

from rnncore.checkpoint.atomic import resolve
from rnncore.checkpoint.format import Checkpoint, load_checkpoint, save_checkpoint
from rnncore.checkpoint.model import build_model, checkpoint_vocab, load_model

__all__ = [
    "Checkpoint",
    "build_model",
    "checkpoint_vocab",
    "load_checkpoint",
    "load_model",
    "resolve",
    "save_checkpoint",
]
