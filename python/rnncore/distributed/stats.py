"""Per-worker throughput and time shares of data-parallel steps (``workers.csv``).

Each row covers the steps since the previous row of one worker::

    step, worker, streams, symbols_per_s, step_ms, compute_ms, allreduce_ms, update_ms

``compute`` is the worker's forward and backward, ``allreduce`` the time from
the end of its compute until all summed pieces had reached it (waiting for
slower workers included), ``update`` guard, clipping and optimizer step;
``step_ms`` is the driver's wall time per step.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "WorkerStats"]

COLUMNS = (
    "step",
    "worker",
    "streams",
    "symbols_per_s",
    "step_ms",
    "compute_ms",
    "allreduce_ms",
    "update_ms",
)
PARTS = ("compute", "allreduce", "update")


class WorkerStats:
    """Sums of step timings per worker; rows go to :attr:`out` every ``every`` steps
    and at the end of a run."""

    def __init__(self, out: Path | None = None, every: int = 10) -> None:
        self.out, self.every = out, every
        self.total: list[dict[str, float]] = []  # per worker, over the whole run
        self._window: list[dict[str, float]] = []  # per worker, since the last row

    def add(
        self, step: int, rows: list[int], T: int, timings: list[dict[str, float]], started: float
    ) -> None:
        """Record one step: worker ``w`` read ``rows[w] * T`` symbols."""
        wall = time.perf_counter() - started
        if len(self._window) != len(rows):
            self._window = [{} for _ in rows]
            self.total = [{} for _ in rows]
        for w, timing in enumerate(timings):
            for acc in (self._window[w], self.total[w]):
                acc["streams"] = rows[w]
                acc["steps"] = acc.get("steps", 0) + 1
                acc["symbols"] = acc.get("symbols", 0) + rows[w] * T
                acc["wall"] = acc.get("wall", 0.0) + wall
                for part in PARTS:
                    acc[part] = acc.get(part, 0.0) + timing[part]
        if step % self.every == 0:
            self.flush(step)

    def flush(self, step: int) -> None:
        """Write the rows of the steps since the last row (if any, and if :attr:`out`)."""
        if self.out is not None and any(acc.get("steps") for acc in self._window):
            self._write(step)

    @staticmethod
    def row(acc: dict[str, Any]) -> dict[str, float]:
        """Means per step (ms) and the throughput of one worker's sums."""
        steps = max(acc.get("steps", 0), 1)
        wall = max(acc.get("wall", 0.0), 1e-9)
        out = {"streams": acc.get("streams", 0), "symbols_per_s": acc.get("symbols", 0) / wall}
        out["step_ms"] = 1e3 * acc.get("wall", 0.0) / steps
        for part in PARTS:
            out[f"{part}_ms"] = 1e3 * acc.get(part, 0.0) / steps
        return out

    def cut(self, step: int) -> None:
        """Forget the steps after ``step`` (a run rolled back to it): drop their
        rows from :attr:`out` and the sums since the last row."""
        self._window = [{} for _ in self._window]
        if self.out is None or not self.out.exists():
            return
        with open(self.out, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        kept = [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= step]
        fresh = self.out.with_name(self.out.name + ".tmp")
        with open(fresh, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([COLUMNS, *kept])
        os.replace(fresh, self.out)

    def _write(self, step: int) -> None:
        assert self.out is not None
        new = not self.out.exists()
        with open(self.out, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(COLUMNS)
            for w, acc in enumerate(self._window):
                r = self.row(acc)
                writer.writerow([step, w, *(f"{r[c]:.6g}" for c in COLUMNS[2:])])
        self._window = [{} for _ in self._window]

    def summary(self) -> str:
        """One line per worker over the whole run."""
        lines = []
        for w, acc in enumerate(self.total):
            r = self.row(acc)
            share = r["allreduce_ms"] / max(r["step_ms"], 1e-9)
            lines.append(
                f"worker {w}: {r['streams']:.0f} streams, {r['symbols_per_s']:,.0f} symbols/s, "
                f"step {r['step_ms']:.1f} ms (compute {r['compute_ms']:.1f}, all-reduce "
                f"{r['allreduce_ms']:.1f} = {share:.0%}, update {r['update_ms']:.1f})"
            )
        return "\n".join(lines)
