"""What :class:`~rnncore.models.SequenceClassifier` and
:class:`~rnncore.models.SequenceTagger` share: ``ids (N, T)`` with ``lengths``
-> Embedding or one-hot ``(T, N, D)`` (or, with ``config.input_size = D``, float
feature vectors ``x (N, T, D)`` such as frames of audio or video, read as they
are) -> RNN/LSTM/GRU stack with lengths ``(T, N, dirs*H)``, plus the dropout
and linear head that follow it. The
subclasses decide what goes between the stack and the head (pooling or not) and
how the loss reads the head's output.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from rnncore import nn
from rnncore.models._base import (
    Config,
    Model,
    check_features,
    check_ids,
    check_lengths,
    make_rnn,
)
from rnncore.nn._base import Array

__all__ = ["SequenceEncoder"]


class SequenceEncoder(Model):
    """Layers ``embedding`` (if ``config.embedding_dim``), ``rnn``, ``dropout`` and
    ``head`` (``Linear(dirs*H, num_outputs)``), built from ``config``.

    Args:
        config: a config with ``vocab_size``, ``embedding_dim``, ``hidden_size``,
            ``cell``, ``num_layers``, ``bidirectional``, ``dropout``, ``dtype``, ``seed``.
        num_outputs: ``C``, the head's output size.
        backend: kernel module; None for the compiled kernels.
    """

    def __init__(self, config: Config, num_outputs: int, backend: ModuleType | None) -> None:
        super().__init__(config.seed)
        self.config = config
        self.dtype = np.dtype(config.dtype)
        V, E, H = config.vocab_size, config.embedding_dim, config.hidden_size
        dirs = 2 if config.bidirectional else 1
        kw: dict[str, Any] = {"dtype": self.dtype, "rng": self.rng}
        features = getattr(config, "input_size", None)
        if features is None and E is not None:
            self.embedding = self._add("embedding", nn.Embedding(V, E, **kw))
        D = features if features is not None else (V if E is None else E)
        rnn = make_rnn(config.cell, D, config, self.rng, backend, config.bidirectional)
        self.rnn = self._add("rnn", rnn)
        self.dropout = self._add("dropout", nn.Dropout(config.dropout, **kw))
        self.head = self._add("head", nn.Linear(dirs * H, num_outputs, **kw))

    def _inputs(self, ids: Any, lengths: Any) -> tuple[Array, Array]:
        """Checked ``ids (N, T)`` (or features ``(N, T, D)`` with ``input_size``) and
        lengths ``(N,)`` (all ``T`` when None)."""
        D = getattr(self.config, "input_size", None)
        if D is None:
            arr = check_ids("ids", ids, self.config.vocab_size, 2, "(N, T)")
        else:
            arr = check_features("x", ids, self.dtype, D)
        N, T = arr.shape[:2]
        lens = check_lengths(lengths, N, T)
        return arr, np.full(N, T, np.int64) if lens is None else lens

    def _encode_sequences(self, ids: Array, lens: Array) -> Array:
        """Checked ``ids (N, T)`` or features ``(N, T, D)``, ``lens (N,)`` -> the stack's
        output ``(T, N, dirs*H)`` (zero past each length)."""
        if ids.ndim == 3:  # features, read as they are
            x = np.ascontiguousarray(ids.transpose(1, 0, 2))  # (T, N, D)
        else:
            x = self._encode(ids.T, self.config.vocab_size, self.dtype)  # (T, N, D)
        out, _ = self.rnn(x, lengths=lens)
        return out
