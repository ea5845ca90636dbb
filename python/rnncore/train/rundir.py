"""Run directories: which files a training run owns, and when it may write.

A run directory holds what a run writes (and may hold other tools' files,
which are kept)::

    .rnncore-run            the marker: rnncore created this directory's run
    latest/  best/          checkpoints (and their .old / .tmp-* while swapping)
    metrics.csv  loss.png  corpus-ids.npy  workers.csv

:func:`claim_run_dir` is called before a run writes anything. It creates the
directory (and the marker) when it is new or empty, and refuses:

- a non-empty directory that is not a run (unless ``force``, and even then not
  when it holds a file under one of the run's names);
- an earlier run, unless the run continues it (``--init-from``) or ``force``;
- a symbolic link in place of one of the run's own names (it is never followed).

A checkpoint directory holding files that are not a checkpoint's is never
replaced either (:func:`rnncore.checkpoint.atomic.write_directory`).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from pathlib import Path

from rnncore.errors import ArgumentError

__all__ = ["OWNED", "RUN_MARKER", "check_output_dir", "claim_run_dir", "is_run_dir"]

RUN_MARKER = ".rnncore-run"
OWNED = (
    RUN_MARKER,
    "latest",
    "best",
    "latest.old",
    "best.old",
    "latest.tmp-*",
    "best.tmp-*",
    "metrics.csv",
    "metrics.csv.tmp",
    "loss.png",
    "corpus-ids.npy",
    "workers.csv",
)


def _owned(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in OWNED)


def _has_checkpoint(p: Path) -> bool:
    return any((p / name / "state.json").is_file() for name in ("latest", "best"))


def is_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run directory: it has the marker, or (runs of
    earlier versions) it holds a checkpoint and only names a run writes."""
    p = Path(path)
    if not p.is_dir():
        return False
    if (p / RUN_MARKER).is_file():
        return True
    names = os.listdir(p)
    return bool(names) and all(map(_owned, names)) and _has_checkpoint(p)


def _shown(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def check_output_dir(
    out: str | os.PathLike,
    *,
    owned: Callable[[str], bool],
    ours: Callable[[Path], bool],
    kind: str,
    force: bool,
    what: str,
) -> list[str]:
    """The rules every directory rnncore writes into follows; returns its entries.

    ``out`` must be missing, a directory, or a symbolic link to one; no entry
    with a name rnncore writes (``owned``) may be a symbolic link. A non-empty
    directory that is not ``ours`` (an earlier output of this ``kind``) needs
    ``force``, and even then none of its entries may have a name rnncore
    writes: rnncore never replaces what it did not write.
    """
    p = Path(out)
    if p.is_symlink() and not p.exists():
        raise ArgumentError(f"{what} {p}: a symbolic link to nothing")
    if p.exists() and not p.is_dir():
        raise ArgumentError(f"{what} {p}: exists and is not a directory")
    names = sorted(os.listdir(p)) if p.is_dir() else []
    for name in names:
        if owned(name) and (p / name).is_symlink():
            raise ArgumentError(
                f"{what} {p}: {name} is a symbolic link; rnncore does not follow it "
                "(remove it, or choose another directory)"
            )
    if names and not ours(p):
        if not force:
            raise ArgumentError(
                f"{what} {p}: not empty and not an {kind} (holds {_shown(names)}); "
                "choose a new directory, or add --force to write beside those files "
                "(they are kept)"
            )
        clash = [n for n in names if owned(n)]
        if clash:
            raise ArgumentError(
                f"{what} {p}: holds {_shown(clash)}, not written by rnncore, which this "
                "would replace; choose another directory"
            )
    return names


def claim_run_dir(
    out: str | os.PathLike, *, continuing: bool, force: bool, what: str = "--out"
) -> Path:
    """Make ``out`` the directory of this run, or raise :class:`ArgumentError`
    (naming ``what``, the option or argument that gave the path).

    Args:
        out: the run directory; created if missing.
        continuing: the run continues the one in ``out`` (resume).
        force: write into ``out`` although it holds an earlier run, or files
            that are not a run's (they are kept: it is refused if one of them
            has a name the run would write).

    Files of other tools beside a run (say an ``inspect/`` page) are kept and
    do not stop the run from continuing.
    """
    p = Path(out)
    names = check_output_dir(
        p, owned=_owned, ours=is_run_dir, kind="rnncore run", force=force, what=what
    )
    if is_run_dir(p) and [n for n in names if n != RUN_MARKER] and not continuing and not force:
        raise ArgumentError(
            f"{what} {p}: holds an earlier run; continue it with --init-from {p}, "
            "or add --force to start a new run there (replacing it)"
        )
    p.mkdir(parents=True, exist_ok=True)
    marker = p / RUN_MARKER
    if marker.is_symlink() or (marker.exists() and not marker.is_file()):
        raise ArgumentError(f"{what} {p}: {RUN_MARKER} is not a regular file")
    if not marker.exists():
        marker.write_text("rnncore run directory\n", encoding="utf-8")
    return p
