"""Interpretable cells: rank every unit of a model by its correlation with text features.

A *signal* is one array of a trace (:meth:`rnncore.models.CharLM.trace`): ``tanh(c)``
(LSTM), ``h``, and each gate (``i, f, g, o`` or ``r, z, n``); a *unit* is one
``(signal, layer, index)``. :class:`Correlator` accumulates the Pearson
correlation of every unit with every feature over chunks of a text (sums only,
so memory does not grow with the text). :func:`rank_cells` keeps, per feature,
the units with the largest ``|r|`` on a discovery part of the text and reports
beside each one its correlation on a held-out part, which tells a real
detector (about the same ``r``) from chance (near 0). :func:`find_cells` does
both passes over a text with a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.diagnostics.features import Feature, text_features
from rnncore.errors import ArgumentError, ShapeError
from rnncore.models.tracing import iter_trace

__all__ = ["Correlator", "FoundCell", "find_cells", "rank_cells", "signal_columns"]


@dataclass(frozen=True)
class FoundCell:
    """One unit that tracks a feature."""

    feature: str
    signal: str  # "tanh(c)", "h" or a gate name
    layer: int
    unit: int
    corr: float  # Pearson r on the discovery part of the text
    held_out: float  # r on the held-out part (NaN if the feature is constant there)

    def held_out_text(self, spec: str) -> str:
        """:attr:`held_out` formatted with ``spec``, or ``"n/a"`` where it is NaN
        (the feature does not vary on the held-out part, so no r exists)."""
        return format(self.held_out, spec) if math.isfinite(self.held_out) else "n/a"


class Correlator:
    """Pearson correlations of ``K`` value columns with ``F`` features, over chunks.

    Args:
        F: number of features; K: number of value columns.
    """

    def __init__(self, F: int, K: int) -> None:
        self.n = 0
        self.sx = np.zeros(F)  # (F,) sums of features
        self.sxx = np.zeros(F)
        self.sy = np.zeros(K)  # (K,) sums of values
        self.syy = np.zeros(K)
        self.sxy = np.zeros((F, K))

    def update(self, feats: np.ndarray, values: np.ndarray) -> None:
        """Add rows: ``feats (T, F)`` and ``values (T, K)`` of the same ``T`` characters."""
        x = np.asarray(feats, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ShapeError(f"feats (T, F) and values (T, K) needed, got {x.shape}, {y.shape}")
        if x.shape[1] != self.sx.size or y.shape[1] != self.sy.size:
            raise ShapeError(
                f"expected {self.sx.size} features and {self.sy.size} columns, got "
                f"{x.shape[1]} and {y.shape[1]}"
            )
        self.n += x.shape[0]
        self.sx += x.sum(0)
        self.sxx += (x * x).sum(0)
        self.sy += y.sum(0)
        self.syy += (y * y).sum(0)
        self.sxy += x.T @ y  # (F, K)

    def correlation(self) -> np.ndarray:
        """``(F, K)`` Pearson r; NaN where a feature or a column is constant."""
        n = max(self.n, 1)
        cov = self.sxy / n - np.outer(self.sx / n, self.sy / n)  # (F, K)
        vx = self.sxx / n - (self.sx / n) ** 2  # (F,)
        vy = self.syy / n - (self.sy / n) ** 2  # (K,)
        sx = np.sqrt(np.where(vx > 1e-12 * (1 + self.sxx / n), vx, np.nan))
        sy = np.sqrt(np.where(vy > 1e-12 * (1 + self.syy / n), vy, np.nan))
        return np.clip(cov / np.outer(sx, sy), -1.0, 1.0)


def signal_columns(
    arrays: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """A trace's arrays as value columns.

    Args:
        arrays: ``{name: (L, T, 1, H)}`` from a trace of one sequence.

    Returns:
        ``values (T, K)`` and the ``(signal, layer, unit)`` of each of the ``K``
        columns; ``c`` becomes ``tanh(c)``.
    """
    blocks, labels = [], []
    for name, a in arrays.items():
        L, T, _, H = a.shape
        v = np.tanh(a[:, :, 0]) if name == "c" else a[:, :, 0]  # (L, T, H)
        signal = "tanh(c)" if name == "c" else name
        blocks.append(v.transpose(1, 0, 2).reshape(T, L * H))  # (T, L*H)
        labels += [(signal, k, j) for k in range(L) for j in range(H)]
    return np.concatenate(blocks, axis=1), labels


def rank_cells(
    corr: np.ndarray,
    held_out: np.ndarray,
    features: list[str],
    labels: list[tuple[str, int, int]],
    top: int = 5,
) -> list[FoundCell]:
    """Per feature, the ``top`` units with the largest ``|r|`` in ``corr``.

    Args:
        corr, held_out: ``(F, K)`` correlations on the discovery and held-out parts.
        features: the ``F`` feature names; labels: the ``K`` ``(signal, layer, unit)``.
        top: units kept per feature (a feature constant on the text gets none).

    Returns:
        :class:`FoundCell` s, feature by feature, strongest first.
    """
    top = _validate.positive_int("top", top)
    if corr.shape != (len(features), len(labels)) or held_out.shape != corr.shape:
        raise ShapeError(
            f"corr and held_out must be (F, K) = ({len(features)}, {len(labels)}), "
            f"got {corr.shape} and {held_out.shape}"
        )
    found = []
    for f, name in enumerate(features):
        strength = np.nan_to_num(np.abs(corr[f]), nan=-1.0)  # (K,)
        for k in np.argsort(-strength, kind="stable")[:top]:
            if strength[k] < 0:
                break
            signal, layer, unit = labels[k]
            found.append(
                FoundCell(name, signal, layer, unit, float(corr[f, k]), float(held_out[f, k]))
            )
    return found


def find_cells(
    model: Any,
    vocab: Any,
    text: str,
    *,
    extra: Mapping[str, Feature] | None = None,
    top: int = 5,
    chunk_size: int = 1000,
) -> list[FoundCell]:
    """The units of ``model`` that best track each feature of ``text``.

    The first half of ``text`` ranks the units, the second half checks them
    (:attr:`FoundCell.held_out`); the model runs over all of it in one pass
    (chunks of ``chunk_size``, state carried, eval mode).

    Args:
        model: a :class:`~rnncore.models.CharLM`; vocab: its character vocabulary.
        text: at least 4 characters, all in ``vocab``.
        extra: more features, ``name -> f(text)`` (see :func:`text_features`).
    """
    if not isinstance(text, str) or len(text) < 4:
        raise ArgumentError("text must be a str of at least 4 characters")
    feats = text_features(text, extra)
    names = list(feats)
    X = np.stack([feats[k] for k in names], axis=1)  # (T, F)
    ids = vocab.encode(text)[None, :]  # (1, T)
    half = len(text) // 2
    parts: list[Correlator] = []
    labels: list[tuple[str, int, int]] = []
    model.eval()
    t0 = 0
    for chunk in iter_trace(model, ids, chunk_size=chunk_size):
        values, labels = signal_columns(chunk.arrays)  # (T', K)
        if not parts:
            parts = [Correlator(len(names), values.shape[1]) for _ in range(2)]
        t1 = t0 + values.shape[0]
        cut = min(max(half - t0, 0), values.shape[0])  # rows of this chunk in the first half
        if cut:
            parts[0].update(X[t0 : t0 + cut], values[:cut])
        if cut < values.shape[0]:
            parts[1].update(X[t0 + cut : t1], values[cut:])
        t0 = t1
    return rank_cells(parts[0].correlation(), parts[1].correlation(), names, labels, top)
