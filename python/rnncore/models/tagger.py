"""One tag per step of variable-length sequences: part-of-speech, named entities, ...

``ids (N, T) -> Embedding or one-hot (T, N, D) -> RNN/LSTM/GRU stack with lengths
(T, N, dirs*H) -> Dropout -> Linear (T, N, C)``, returned batch-first as
``(N, T, C)``. The loss averages the cross-entropy over valid steps only
(``t < lengths[n]``); tags at padded steps are never read.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.errors import ArgumentError, StateError
from rnncore.models._base import Config, check_common, check_same_shape
from rnncore.models.encoder import SequenceEncoder
from rnncore.nn._base import Array
from rnncore.nn.functional import _in_range, softmax_cross_entropy

__all__ = ["SequenceTagger", "TaggerConfig"]


@dataclass
class TaggerConfig(Config):
    """What :class:`SequenceTagger` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V: number of distinct tokens
    num_tags: int  # C: number of tags
    cell: str = "lstm"  # one of models.CELLS: lstm, lstm_cifg, lstm_peephole, gru, ..., rnn_*
    embedding_dim: int | None = 64  # E of the Embedding(V, E); None: one-hot input
    hidden_size: int = 128  # H: features of each direction's state
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = True  # both directions: every tag sees the whole sequence
    dropout: float = 0.0  # between recurrent layers and before the head, training only
    dtype: str = "float32"  # 'float32' | 'float64'
    seed: int | None = 0  # initial weights and dropout masks; None: fresh OS entropy

    def __post_init__(self) -> None:
        check_common(self)
        _validate.positive_int("num_tags", self.num_tags)
        _validate.flag("bidirectional", self.bidirectional)


class SequenceTagger(SequenceEncoder):
    """Recurrent encoder and a linear head per step: ``(ids, lengths) -> logits (N, T, C)``.

    Parameters: ``embedding.weight (V, E)`` (if ``embedding_dim``), ``rnn.*``
    (torch's names), ``head.weight (C, dirs*H)``, ``head.bias (C,)``.

    Args:
        config: the :class:`TaggerConfig`.
        backend: kernel module; None for the compiled kernels.
    """

    def __init__(self, config: TaggerConfig, *, backend: ModuleType | None = None) -> None:
        if not isinstance(config, TaggerConfig):
            raise ArgumentError(f"config must be a TaggerConfig, got {type(config).__name__}")
        super().__init__(config, config.num_tags, backend)
        self._cache: Array | None = None  # dlogits (T, N, C) of the most recent loss

    def _run(self, ids: Array, lens: Array) -> Array:
        """Checked ``ids (N, T)``, ``lens (N,)`` -> time-major ``logits (T, N, C)``."""
        out = self._encode_sequences(ids, lens)  # (T, N, dirs*H)
        return self.head._forward(self.dropout._forward(out))  # (T, N, C)

    def forward(self, ids: Any, lengths: Any = None) -> Array:
        """``ids (N, T)``, ``lengths (N,)`` in ``1..T`` (None: all T) -> ``logits (N, T, C)``.

        Logits at padded steps are the head's bias (the encoder output there is 0).
        """
        arr, lens = self._inputs(ids, lengths)
        self._cache = None
        return self._run(arr, lens).transpose(1, 0, 2)  # (T, N, C) -> (N, T, C)

    __call__ = forward

    def predict(self, ids: Any, lengths: Any = None) -> Array:
        """The most likely tag per step, ``(N, T)`` int64, -1 at padded steps."""
        arr, lens = self._inputs(ids, lengths)
        self._cache = None
        tags = np.ascontiguousarray(self._run(arr, lens).argmax(axis=2).T)  # (N, T)
        tags[np.arange(arr.shape[1])[None, :] >= lens[:, None]] = -1
        return tags

    def loss(self, ids: Any, lengths: Any, tags: Any) -> float:
        """Mean cross-entropy over valid steps of ``tags (N, T)`` (``0..C-1`` there).

        Kept for :meth:`backward`. Padded steps may hold any tag value.
        """
        arr, lens = self._inputs(ids, lengths)
        N, T = arr.shape
        y = check_same_shape("tags", tags, (N, T), "(N, T) like ids")
        self._cache = None
        logits = self._run(arr, lens)  # (T, N, C)
        valid = np.arange(T)[:, None] < lens[None, :]  # (T, N)
        C = self.config.num_tags
        _in_range("tags", y.T, C, valid)  # only valid steps are read
        loss, dlogits = softmax_cross_entropy(
            logits.reshape(T * N, C), y.T.reshape(-1), mask=valid.reshape(-1)
        )
        self._cache = dlogits.reshape(T, N, C)
        return loss

    def backward(self) -> None:
        """Backpropagate the most recent :meth:`loss`, adding to :attr:`grads`."""
        if self._cache is None:
            raise StateError("SequenceTagger.backward() needs a loss() call first")
        d_out = self.dropout._backward(self.head._backward(self._cache))  # (T, N, dirs*H)
        if not np.isfinite(d_out).all():
            self._poison_grads()
            return
        dx, _ = self.rnn.backward(d_out)  # (T, N, D)
        self._encode_backward(dx)
