"""The checkpoint directory: three safetensors files and ``state.json``.

::

    <dir>/model.safetensors        weights, named as in model.state_dict()
    <dir>/optimizer.safetensors    optimizer tensors (moments, accumulators)
    <dir>/train_state.safetensors  training tensors (the carried hidden state)
    <dir>/state.json               everything else, JSON; written last

``state.json`` holds ``{"format", "version", "files", ...}``: ``files`` gives,
for each tensor file, its size, SHA-256 and the name, dtype and shape of every
tensor in it; the other keys are the caller's (model config, vocabulary,
optimizer meta, training position, generator states). Saving goes through
:func:`rnncore.checkpoint.atomic.write_directory`; loading checks everything and
raises :class:`~rnncore.errors.CheckpointError` naming the file at fault. Tensors
are encoded with ``safetensors.numpy.save`` to bytes, so no file is ever
unpickled and the bytes that are hashed are the bytes that are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from rnncore.checkpoint.atomic import resolve, write_directory
from rnncore.errors import ArgumentError, CheckpointError

__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "OPTIMIZER_FILE",
    "STATE_FILE",
    "TRAIN_FILE",
    "VERSION",
    "Checkpoint",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "rnncore.checkpoint"
VERSION = 1
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
TRAIN_FILE = "train_state.safetensors"
STATE_FILE = "state.json"
RESERVED = ("format", "version", "files")

STATE_MAX_BYTES = 256 << 20  # state.json: a vocabulary of millions of words fits
STATE_MAX_DEPTH = 32  # nesting of state.json (rnncore writes at most 6)
INT_MAX_DIGITS = 40  # an integer of state.json (seeds and generator states fit)


def read_regular_file(path: Path, max_bytes: int | None = None) -> bytes:
    """The bytes of ``path``, which must be a regular file (a symlink to one is
    followed) of at most ``max_bytes``: a FIFO, a device such as ``/dev/zero``
    or a directory is refused before reading. ``OSError`` as ``open`` raises it;
    :class:`CheckpointError` for the rest."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"{path}: not a regular file (a device, FIFO or directory)")
        if max_bytes is not None and info.st_size > max_bytes:
            raise CheckpointError(
                f"{path}: {info.st_size} bytes, more than the {max_bytes} expected"
            )
        data = f.read(info.st_size + 1)  # one more: a file that grew is caught below
    if len(data) != info.st_size:
        raise CheckpointError(f"{path}: changed while it was read")
    return data


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > INT_MAX_DIGITS:
        raise CheckpointError(f"an integer of {len(text)} digits (at most {INT_MAX_DIGITS})")
    return int(text)


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (a scalar: 0)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def parse_json(where: Path, data: bytes) -> Any:
    """``data`` as JSON with bounded nesting and integers, or :class:`CheckpointError`
    naming ``where``."""
    try:
        document = json.loads(data.decode("utf-8"), parse_int=_bounded_int)
    except CheckpointError as err:
        raise CheckpointError(f"{where}: {err}") from None
    except RecursionError:
        raise CheckpointError(f"{where}: nested too deeply (corrupted or crafted)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{where}: not valid JSON ({err}); truncated or corrupted") from None
    if _depth(document) > STATE_MAX_DEPTH:
        raise CheckpointError(f"{where}: nested more than {STATE_MAX_DEPTH} deep (crafted?)")
    return document


@dataclass
class Checkpoint:
    """Everything a checkpoint directory holds.

    Attributes:
        model: weights by name (``model.safetensors``).
        optimizer: optimizer tensors by name (``optimizer.safetensors``).
        train: other training tensors by name (``train_state.safetensors``).
        state: JSON-ready dict stored in ``state.json`` (keys ``format``,
            ``version`` and ``files`` are reserved).
        path: the directory it was loaded from (None before saving).
    """

    model: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    train: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def tensor_files(self) -> dict[str, dict[str, np.ndarray]]:
        """File name -> tensors."""
        return {MODEL_FILE: self.model, OPTIMIZER_FILE: self.optimizer, TRAIN_FILE: self.train}


def _describe(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """Name -> {"dtype", "shape"} of every tensor, as stored in state.json."""
    return {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in sorted(tensors.items())}


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> Path:
    """Write ``ckpt`` to directory ``path`` atomically (replacing what is there)."""
    clash = [k for k in RESERVED if k in ckpt.state]
    if clash:
        raise ArgumentError(f"checkpoint state must not use the reserved keys {clash}")
    blobs: dict[str, bytes] = {}
    files: dict[str, Any] = {}
    for name, tensors in ckpt.tensor_files().items():
        arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
        data = st_save(arrays)
        blobs[name] = data
        files[name] = {
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "tensors": _describe(arrays),
        }
    document = {"format": FORMAT, "version": VERSION, "files": files, **ckpt.state}
    try:
        text = json.dumps(document, indent=1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ArgumentError(f"checkpoint state is not plain JSON: {err}") from None
    blobs[STATE_FILE] = text.encode("utf-8")
    return write_directory(path, blobs)


def _read_state(directory: Path) -> dict[str, Any]:
    """Parse and check the outline of ``state.json``."""
    where = directory / STATE_FILE
    try:
        data = read_regular_file(where, STATE_MAX_BYTES)
    except FileNotFoundError:
        raise CheckpointError(f"{where}: file is missing (not a checkpoint directory?)") from None
    except OSError as err:
        raise CheckpointError(f"{where}: cannot be read ({err})") from None
    document = parse_json(where, data)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not an rnncore checkpoint (no format {FORMAT!r})")
    if document.get("version") != VERSION:
        raise CheckpointError(
            f"{where}: checkpoint version {document.get('version')!r} is not supported "
            f"(this rnncore reads version {VERSION})"
        )
    files = document.get("files")
    if not isinstance(files, dict) or set(files) != {MODEL_FILE, OPTIMIZER_FILE, TRAIN_FILE}:
        raise CheckpointError(f"{where}: 'files' must list the three tensor files")
    return document


def _read_tensors(directory: Path, name: str, entry: Any) -> dict[str, np.ndarray]:
    """Read one tensor file and check it against its ``state.json`` entry."""
    where = directory / name
    if not isinstance(entry, dict) or not isinstance(entry.get("tensors"), dict):
        raise CheckpointError(f"{directory / STATE_FILE}: invalid entry for {name}")
    size = entry.get("bytes")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise CheckpointError(f"{directory / STATE_FILE}: invalid 'bytes' for {name}: {size!r}")
    try:
        data = read_regular_file(where, size)
    except FileNotFoundError:
        raise CheckpointError(f"{where}: file is missing") from None
    except OSError as err:
        raise CheckpointError(f"{where}: cannot be read ({err})") from None
    if len(data) != size:
        raise CheckpointError(f"{where}: {len(data)} bytes, but {size} were written (truncated?)")
    if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise CheckpointError(f"{where}: SHA-256 does not match state.json (corrupted)")
    try:
        tensors = st_load(data)
    except Exception as err:  # safetensors raises its own error class
        raise CheckpointError(f"{where}: not a valid safetensors file ({err})") from None
    if _describe(tensors) != entry["tensors"]:
        raise CheckpointError(f"{where}: tensor names, dtypes or shapes differ from state.json")
    for key in sorted(tensors):
        t = tensors[key]
        if t.dtype.kind in "fc" and not np.isfinite(t).all():
            raise CheckpointError(f"{where}: tensor {key!r} contains NaN or infinity")
    return tensors


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and verify the checkpoint in directory ``path``.

    Checks that every file is present, ``state.json`` is valid JSON of this
    format, each tensor file has the recorded size and SHA-256 and holds the
    recorded tensors. Any problem raises :class:`CheckpointError`.
    """
    directory = resolve(path)
    if not directory.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory there")
    document = _read_state(directory)
    files = document["files"]
    tensors = {name: _read_tensors(directory, name, files[name]) for name in sorted(files)}
    state = {k: v for k, v in document.items() if k not in RESERVED}
    return Checkpoint(
        model=tensors[MODEL_FILE],
        optimizer=tensors[OPTIMIZER_FILE],
        train=tensors[TRAIN_FILE],
        state=state,
        path=directory,
    )
