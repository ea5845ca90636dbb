"""``metrics.csv``: one row per logging interval of a training run.

Columns (exactly): ``step, epoch, train_loss, val_loss, lr, chars_per_s,
grad_norm, clipped_frac``. ``train_loss`` is the mean training loss (nats per
symbol) of the steps since the previous row, ``val_loss`` is empty unless a
validation pass ran at that step; ``grad_norm`` is the mean global gradient
norm before clipping of those steps (empty if none had a finite norm), and
``clipped_frac`` the fraction of them where clipping changed the gradients.
The last row of a run that stopped between validations is its final
validation: ``train_loss``, ``chars_per_s``, ``grad_norm`` and
``clipped_frac`` empty. Files of earlier versions, without the last two
columns, are still read. Rows are flushed as they are written. On resume, rows
after the checkpoint's step and final-validation rows are dropped first, so the
file reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "MetricsLog", "read_metrics"]

COLUMNS = (
    "step",
    "epoch",
    "train_loss",
    "val_loss",
    "lr",
    "chars_per_s",
    "grad_norm",
    "clipped_frac",
)
OLD_COLUMNS = COLUMNS[:6]  # files written before grad_norm and clipped_frac


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a metrics file, numbers parsed (``val_loss``, ``grad_norm`` and
    ``clipped_frac`` None when empty or absent)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) not in (COLUMNS, OLD_COLUMNS):
            raise ValueError(f"{path}: expected the columns {', '.join(COLUMNS)}")
        rows = []
        for row in reader:
            rows.append(
                {
                    "step": int(row["step"]),
                    "epoch": int(row["epoch"]),
                    "train_loss": float(row["train_loss"]) if row["train_loss"] else None,
                    "val_loss": float(row["val_loss"]) if row["val_loss"] else None,
                    "lr": float(row["lr"]),
                    "chars_per_s": _float(row["chars_per_s"]),
                    "grad_norm": _float(row.get("grad_norm")),
                    "clipped_frac": _float(row.get("clipped_frac")),
                }
            )
    return rows


class MetricsLog:
    """Appends rows to ``path``.

    Args:
        path: the CSV file.
        resume_step: None starts a new file; a step keeps the existing rows up
            to that step (and the header) and appends after them.
    """

    def __init__(self, path: str | os.PathLike, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[list[str]] = []
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
            if rows and tuple(rows[0]) in (COLUMNS, OLD_COLUMNS):
                kept = [
                    r
                    for r in rows[1:]
                    if r and r[0].isdigit() and int(r[0]) <= resume_step and r[5] != ""
                ]
        fresh = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(fresh, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows([COLUMNS, *kept])
            os.replace(fresh, self.path)  # a kill here leaves the old or the new file
        except BaseException:
            fresh.unlink(missing_ok=True)  # a full disk leaves no half-written copy behind
            raise
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)

    def write(
        self,
        step: int,
        epoch: int,
        train_loss: float | None,
        val_loss: float | None,
        lr: float,
        chars_per_s: float | None,
        grad_norm: float | None = None,
        clipped_frac: float | None = None,
    ) -> None:
        """Append one row and flush it to the file (``chars_per_s`` None: a final
        validation, see the module docstring)."""
        self._writer.writerow(
            [
                step,
                epoch,
                "" if train_loss is None else repr(float(train_loss)),
                "" if val_loss is None else repr(float(val_loss)),
                repr(float(lr)),
                "" if chars_per_s is None else f"{chars_per_s:.1f}",
                "" if grad_norm is None else repr(float(grad_norm)),
                "" if clipped_frac is None else repr(float(clipped_frac)),
            ]
        )
        self._file.flush()

    def close(self) -> None:
        self._file.close()
