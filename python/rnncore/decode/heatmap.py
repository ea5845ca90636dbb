"""The attention of a decoded sentence as a PNG heatmap (needs the optional matplotlib)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from rnncore.errors import ArgumentError, ShapeError

__all__ = ["attention_png"]


def attention_png(
    path: str | os.PathLike,
    weights: Any,
    source: Sequence[str],
    output: Sequence[str],
) -> None:
    """Draw ``weights (T, S)`` with the output symbols down the side and the source
    symbols along the top, darker for more weight, and write it to ``path``.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
    change). Raises ImportError when matplotlib is missing,
    :class:`~rnncore.errors.ShapeError` when the labels do not fit the matrix and
    :class:`~rnncore.errors.ArgumentError` when ``weights`` is None (a model
    without attention).
    """
    if weights is None:
        raise ArgumentError("no attention weights to draw: the model has attention='none'")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise ShapeError(f"weights must be (T, S), got shape {w.shape}")
    if w.shape != (len(output), len(source)):
        raise ShapeError(
            f"weights has shape {w.shape} but there are {len(output)} output and "
            f"{len(source)} source symbols"
        )
    if w.size == 0:
        raise ArgumentError("nothing to draw: no output or no source symbols")
    T, S = w.shape
    fig = Figure(figsize=(max(3.0, 0.3 * S + 1.5), max(2.5, 0.3 * T + 1.2)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(w, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), [repr(s)[1:-1] or " " for s in source], fontsize=8)
    ax.set_yticks(range(T), [repr(s)[1:-1] or " " for s in output], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    fig.savefig(os.fspath(path))
