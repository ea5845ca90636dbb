"""The loss curve of a run as a PNG (needs the optional matplotlib)."""

from __future__ import annotations

import importlib.util
import os

from rnncore.train.metrics import read_metrics

__all__ = ["have_matplotlib", "plot_losses"]


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_losses(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> bool:
    """Draw train and validation loss against the step from ``metrics.csv``.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global
    backend change). Returns False, writing nothing, when matplotlib is missing
    or the file has no rows.
    """
    if not have_matplotlib():
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(csv_path)
    train = [(r["step"], r["train_loss"]) for r in rows if r["train_loss"] is not None]
    val = [(r["step"], r["val_loss"]) for r in rows if r["val_loss"] is not None]
    if not train and not val:
        return False
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1.0)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per symbol)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    return True
