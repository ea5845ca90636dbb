"""One label per variable-length sequence: sentiment, topic, spam, ...

``ids (N, T) -> Embedding or one-hot (T, N, D) -> RNN/LSTM/GRU stack with
lengths (T, N, dirs*H) -> pooling (N, dirs*H) -> Dropout -> Linear (N, C)``.
Pooling ``"last"`` takes each sequence's final state: the forward direction at
step ``lengths[n] - 1`` and, if bidirectional, the reverse direction at step 0
(where it ends); ``"mean"`` averages the output over the valid steps.
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

__all__ = ["ClassifierConfig", "SequenceClassifier"]

POOLINGS = ("last", "mean")


@dataclass
class ClassifierConfig(Config):
    """What :class:`SequenceClassifier` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V: number of distinct tokens
    num_classes: int  # C: number of labels
    cell: str = "lstm"  # one of models.CELLS: lstm, lstm_cifg, lstm_peephole, gru, ..., mut1-3
    embedding_dim: int | None = 64  # E of the Embedding(V, E); None: one-hot input
    hidden_size: int = 128  # H: features of each direction's state
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = False  # add a reverse direction to every layer
    dropout: float = 0.0  # between recurrent layers and before the head, training only
    pooling: str = "last"  # 'last' (final states) | 'mean' (over valid steps)
    dtype: str = "float32"  # 'float32' | 'float64'
    seed: int | None = 0  # initial weights and dropout masks; None: fresh OS entropy
    # None: token ids (N, T); D: float features x (N, T, D) instead (then vocab_size
    # is 0 and there is no embedding)
    input_size: int | None = None
    # dropout inside the recurrence (rnncore.nn: RNN/LSTM/GRU), training only except
    # zoneout, which evaluates to its expectation; zoneout_cell is for the LSTM cells
    input_dropout: float = 0.0  # one mask per sequence on each layer's input
    recurrent_dropout: float = 0.0  # one mask per sequence on the state W_hh reads
    zoneout: float = 0.0  # each hidden unit keeps its previous value with this probability
    zoneout_cell: float = 0.0  # the same for the cell state

    def __post_init__(self) -> None:
        check_common(self)
        _validate.positive_int("num_classes", self.num_classes)
        _validate.flag("bidirectional", self.bidirectional)
        _validate.choice("pooling", self.pooling, POOLINGS)


class SequenceClassifier(SequenceEncoder):
    """Recurrent encoder, pooling and a linear head: ``(ids, lengths) -> logits (N, C)``.

    Parameters: ``embedding.weight (V, E)`` (if ``embedding_dim``), ``rnn.*``
    (torch's names), ``head.weight (C, dirs*H)``, ``head.bias (C,)``.

    Args:
        config: the :class:`ClassifierConfig`.
        backend: kernel module; None for the compiled kernels.
    """

    def __init__(self, config: ClassifierConfig, *, backend: ModuleType | None = None) -> None:
        if not isinstance(config, ClassifierConfig):
            raise ArgumentError(f"config must be a ClassifierConfig, got {type(config).__name__}")
        super().__init__(config, config.num_classes, backend)
        # (dlogits (N, C) or None, lengths (N,), T) of the most recent loss
        self._cache: tuple[Array, Array, int] | None = None

    def _pool(self, out: Array, lens: Array) -> Array:
        """``out (T, N, dirs*H)`` (zero past each length) -> ``(N, dirs*H)``."""
        if self.config.pooling == "mean":
            return out.sum(axis=0) / lens[:, None].astype(self.dtype)
        H, n = self.config.hidden_size, np.arange(out.shape[1])
        pooled = out[lens - 1, n].copy()  # (N, dirs*H): forward state at the last step
        if self.config.bidirectional:
            pooled[:, H:] = out[0, :, H:]  # reverse direction ends at step 0
        return pooled

    def _pool_backward(self, d_pooled: Array, lens: Array, T: int) -> Array:
        """Backward of :meth:`_pool`: ``d_pooled (N, dirs*H)`` -> ``d_out (T, N, dirs*H)``."""
        N = d_pooled.shape[0]
        if self.config.pooling == "mean":
            valid = np.arange(T)[:, None] < lens[None, :]  # (T, N)
            scale = valid / lens[None, :].astype(self.dtype)  # (T, N)
            return (scale[..., None] * d_pooled[None]).astype(self.dtype)
        H, n = self.config.hidden_size, np.arange(N)
        d_out = np.zeros((T, *d_pooled.shape), self.dtype)
        d_out[lens - 1, n, :H] = d_pooled[:, :H]
        if self.config.bidirectional:
            d_out[0, :, H:] += d_pooled[:, H:]
        return d_out

    def _run(self, ids: Array, lens: Array) -> Array:
        """Checked ``ids (N, T)``, ``lens (N,)`` -> ``logits (N, C)``."""
        out = self._encode_sequences(ids, lens)  # (T, N, dirs*H)
        return self.head._forward(self.dropout._forward(self._pool(out, lens)))  # (N, C)

    def forward(self, ids: Any, lengths: Any = None) -> Array:
        """``ids (N, T)``, ``lengths (N,)`` in ``1..T`` (None: all T) -> ``logits (N, C)``."""
        arr, lens = self._inputs(ids, lengths)
        self._cache = None
        return self._run(arr, lens)

    __call__ = forward

    def predict(self, ids: Any, lengths: Any = None) -> Array:
        """The most likely class of each sequence, ``(N,)`` int64 (in the current mode)."""
        return self.forward(ids, lengths).argmax(axis=1)

    def loss(self, ids: Any, lengths: Any, labels: Any) -> float:
        """Mean cross-entropy of ``labels (N,)`` (in ``0..C-1``); kept for :meth:`backward`."""
        arr, lens = self._inputs(ids, lengths)
        N, T = arr.shape[:2]
        y = check_same_shape("labels", labels, (N,), "(N,)")
        _in_range("labels", y, self.config.num_classes)
        self._cache = None
        logits = self._run(arr, lens)
        loss, dlogits = softmax_cross_entropy(logits, y, overwrite_logits=True)
        self._cache = (dlogits, lens, T)
        return loss

    def backward(self) -> None:
        """Backpropagate the most recent :meth:`loss`, adding to :attr:`grads`."""
        if self._cache is None:
            raise StateError("SequenceClassifier.backward() needs a loss() call first")
        dlogits, lens, T = self._cache
        d_pooled = self.dropout._backward(self.head._backward(dlogits))  # (N, dirs*H)
        if not np.isfinite(d_pooled).all():
            self._poison_grads()
            return
        dx, _ = self.rnn.backward(self._pool_backward(d_pooled, lens, T))  # (T, N, D)
        self._encode_backward(dx)
