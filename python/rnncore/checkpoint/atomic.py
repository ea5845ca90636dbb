"""Replace a directory atomically: readers see the old one or the new one.

:func:`write_directory` writes every file into a fresh ``<name>.tmp-XXXX``
directory next to the target, fsyncs each file and the directory, then swaps
it in with two renames::

    <name>/          -> <name>.old/     (the previous checkpoint, kept)
    <name>.tmp-XXXX/ -> <name>/
    fsync(parent); remove <name>.old/

A crash before the first rename leaves ``<name>/`` untouched; between the two
renames only ``<name>.old/`` exists and :func:`resolve` reads that (the next
write puts it back first); after the second rename ``<name>/`` is complete.
So a reader never sees a half-written checkpoint. One writer per target at a
time. A symbolic link in place of the target, its ``.old`` or a temp directory
is refused, never followed, and a target that holds files other than those
being written is refused rather than deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rnncore.errors import ArgumentError

__all__ = ["old_path", "resolve", "write_directory"]


def old_path(target: Path) -> Path:
    """Where the previous version of ``target`` waits during a swap."""
    return target.with_name(target.name + ".old")


def _fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _refuse_links(target: Path) -> None:
    """Raise if ``target`` or a directory of its swap is a symbolic link."""
    swap = [target, old_path(target), *target.parent.glob(target.name + ".tmp-*")]
    for path in swap:
        if path.is_symlink():
            raise ArgumentError(
                f"{path} is a symbolic link; rnncore does not follow it (remove it, "
                "or write the checkpoint somewhere else)"
            )


def _refuse_foreign(target: Path, names: Mapping[str, bytes]) -> None:
    """Raise if directory ``target``, its ``.old`` or a leftover temp directory
    (all of which a write may remove) holds entries other than ``names``."""
    stale = target.parent.glob(target.name + ".tmp-*")
    for directory in (target, old_path(target), *stale):
        if not directory.is_dir():
            continue
        foreign = sorted(set(os.listdir(directory)) - set(names))
        if foreign:
            raise ArgumentError(
                f"{directory} holds files that are not part of a checkpoint "
                f"({', '.join(foreign[:3])}); rnncore does not replace it"
            )
    if target.exists() and not target.is_dir():
        raise ArgumentError(f"{target} exists and is not a directory")


def _recover(target: Path) -> None:
    """Finish or undo an interrupted swap and remove leftover temp directories."""
    old = old_path(target)
    if old.is_dir():
        if target.exists():
            shutil.rmtree(old)  # the swap completed; only the cleanup was missing
        else:
            os.replace(old, target)  # stopped between the renames: put the old one back
            _fsync_dir(target.parent)
    for stale in target.parent.glob(target.name + ".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def write_directory(target: str | os.PathLike, files: Mapping[str, bytes]) -> Path:
    """Create or replace directory ``target`` holding exactly ``files``
    (name -> contents), atomically. Files are written in the given order, so
    put the one that describes the others last."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _refuse_links(target)
    _refuse_foreign(target, files)
    _recover(target)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is an ordinary directory
        for name, data in files.items():
            _write_file(tmp / name, data)
        _fsync_dir(tmp)
        old = old_path(target)
        had_old = target.exists()
        if had_old:
            os.replace(target, old)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if had_old:
        shutil.rmtree(old, ignore_errors=True)
    return target


def resolve(target: str | os.PathLike) -> Path:
    """The directory to read for ``target``: itself, or its ``.old`` version
    when a swap was interrupted between its two renames."""
    target = Path(target)
    if not target.exists() and old_path(target).is_dir():
        return old_path(target)
    return target
