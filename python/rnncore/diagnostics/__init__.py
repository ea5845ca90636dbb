"""Seeing inside a recurrent model: traces, interpretable cells, gate saturation,
gradient flow, and a self-contained HTML page of it all.

- :func:`text_features`: per-character features of a text (inside quotes,
  bracket depth, position in the line, ...), plus user functions.
- :func:`find_cells`: the units that track each feature, with the correlation on
  a held-out part of the text (:class:`FoundCell`); :func:`rank_cells` and
  :class:`Correlator` are its parts.
- :func:`gradient_flow` (:func:`layer_gradient_flow` for any layer):
  ``||dL_T/dh_t||`` against ``T - t`` through the kernels' backward;
  :func:`spectral_radius` of every ``W_hh``.
- :func:`write_report`: the page of ``rnncore inspect``.

The traces themselves come from :meth:`rnncore.models.CharLM.trace` and the
``trace`` method of :class:`rnncore.nn.RNN`, ``LSTM`` and ``GRU``.
"""

from __future__ import annotations

from rnncore.diagnostics.cells import Correlator, FoundCell, find_cells, rank_cells
from rnncore.diagnostics.features import FEATURES, text_features
from rnncore.diagnostics.gradients import (
    GradientFlow,
    gradient_flow,
    layer_gradient_flow,
    spectral_radius,
)

__all__ = [
    "FEATURES",
    "Correlator",
    "FoundCell",
    "GradientFlow",
    "find_cells",
    "gradient_flow",
    "layer_gradient_flow",
    "rank_cells",
    "spectral_radius",
    "text_features",
]
