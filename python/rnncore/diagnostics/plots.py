"""PNG figures of the diagnostics (need the optional matplotlib).

Matplotlib's object API on the Agg canvas (no pyplot, no global backend change),
as :mod:`rnncore.train.plotting`. Each function returns the PNG bytes, or None
when matplotlib is missing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import numpy as np

from rnncore.train.plotting import have_matplotlib

__all__ = ["gradient_flow_png", "saturation_png"]


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")  # type: ignore[attr-defined]
    return buf.getvalue()


def saturation_png(left: Mapping[str, np.ndarray], right: Mapping[str, np.ndarray]) -> bytes | None:
    """Gate saturation as in the lectures' figure: one panel per gate, one dot per
    unit at (fraction of steps below 0.1, fraction above 0.9), coloured by layer.

    Args:
        left, right: ``{gate: (L, H)}`` fractions of steps left- and right-saturated.
    """
    if not have_matplotlib() or not left:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gates = list(left)
    fig = Figure(figsize=(3.2 * len(gates), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    for j, gate in enumerate(gates):
        ax = fig.add_subplot(1, len(gates), j + 1)
        for k in range(left[gate].shape[0]):
            ax.scatter(left[gate][k], right[gate][k], s=6, alpha=0.6, label=f"layer {k}")
        ax.plot([0, 1], [1, 0], color="0.7", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"gate {gate}")
        ax.set_xlabel("fraction left-saturated (< 0.1)")
        if j == 0:
            ax.set_ylabel("fraction right-saturated (> 0.9)")
            ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return _png(fig)


def gradient_flow_png(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str
) -> bytes | None:
    """``||dL_T/dh_t||`` against ``T - t`` on a log scale, one line per entry of
    ``curves`` (``label -> (distance, norm)``)."""
    if not have_matplotlib():
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for label, (distance, norm) in curves.items():
        ax.semilogy(distance, np.maximum(norm, 1e-300), label=label, linewidth=1.2)
    ax.set_xlabel("distance T - t (steps)")
    ax.set_ylabel("||dL_T / dh_t||")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _png(fig)
