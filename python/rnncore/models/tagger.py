"""One tag per step of variable-length sequences: part-of-speech, named entities, ...

``ids (N, T) -> Embedding or one-hot (T, N, D) -> RNN/LSTM/GRU stack with lengths
(T, N, dirs*H) -> Dropout -> Linear (T, N, C)``, returned batch-first as
``(N, T, C)``. The loss averages the cross-entropy over valid steps only
(``t < lengths[n]``); tags at padded steps are never read. With
``objective='mse'`` the targets are float vectors ``(N, T, C)`` and the loss is
their squared error, masked the same way; with ``input_size`` the inputs are
float features ``(N, T, D)`` instead of ids.
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

OBJECTIVES = ("cross_entropy", "mse")


@dataclass
class TaggerConfig(Config):
    """What :class:`SequenceTagger` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V: number of distinct tokens
    num_tags: int  # C: number of tags
    cell: str = "lstm"  # one of models.CELLS: lstm, lstm_cifg, lstm_peephole, gru, ..., mut1-3
    embedding_dim: int | None = 64  # E of the Embedding(V, E); None: one-hot input
    hidden_size: int = 128  # H: features of each direction's state
    num_layers: int = 1  # stacked recurrent layers
    bidirectional: bool = True  # both directions: every tag sees the whole sequence
    dropout: float = 0.0  # between recurrent layers and before the head, training only
    dtype: str = "float32"  # 'float32' | 'float64'
    seed: int | None = 0  # initial weights and dropout masks; None: fresh OS entropy
    # None: token ids (N, T); D: float features x (N, T, D) instead (then vocab_size
    # is 0 and there is no embedding)
    input_size: int | None = None
    # 'cross_entropy': tags (N, T) in 0..C-1 | 'mse': float targets (N, T, C), the
    # squared error averaged over the valid steps and the C outputs
    objective: str = "cross_entropy"
    # dropout inside the recurrence (rnncore.nn: RNN/LSTM/GRU), training only except
    # zoneout, which evaluates to its expectation; zoneout_cell is for the LSTM cells
    input_dropout: float = 0.0  # one mask per sequence on each layer's input
    recurrent_dropout: float = 0.0  # one mask per sequence on the state W_hh reads
    zoneout: float = 0.0  # each hidden unit keeps its previous value with this probability
    zoneout_cell: float = 0.0  # the same for the cell state

    def __post_init__(self) -> None:
        check_common(self)
        _validate.positive_int("num_tags", self.num_tags)
        _validate.choice("objective", self.objective, OBJECTIVES)
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
        self._cache: Array | None = None  # d(loss)/d(head output) (T, N, C) of the last loss

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
        """The most likely tag per step, ``(N, T)`` int64, -1 at padded steps; with
        ``objective='mse'`` the outputs ``(N, T, C)``, 0 at padded steps."""
        arr, lens = self._inputs(ids, lengths)
        self._cache = None
        out = self._run(arr, lens)  # (T, N, C)
        padded = np.arange(arr.shape[1])[None, :] >= lens[:, None]  # (N, T)
        if self.config.objective == "mse":
            values = np.ascontiguousarray(out.transpose(1, 0, 2))  # (N, T, C)
            values[padded] = 0
            return values
        tags = np.ascontiguousarray(out.argmax(axis=2).T)  # (N, T)
        tags[padded] = -1
        return tags

    def loss(self, ids: Any, lengths: Any, tags: Any) -> float:
        """Mean cross-entropy over valid steps of ``tags (N, T)`` (``0..C-1`` there);
        with ``objective='mse'``, the mean squared error of float ``tags (N, T, C)``.

        Kept for :meth:`backward`. Padded steps may hold any tag value.
        """
        arr, lens = self._inputs(ids, lengths)
        N, T = arr.shape[:2]
        C = self.config.num_tags
        if self.config.objective == "mse":
            return self._squared_error(arr, lens, tags)
        y = check_same_shape("tags", tags, (N, T), "(N, T) like ids")
        self._cache = None
        logits = self._run(arr, lens)  # (T, N, C)
        valid = np.arange(T)[:, None] < lens[None, :]  # (T, N)
        _in_range("tags", y.T, C, valid)  # only valid steps are read
        loss, dlogits = softmax_cross_entropy(
            logits.reshape(T * N, C), y.T.reshape(-1), mask=valid.reshape(-1), overwrite_logits=True
        )
        self._cache = dlogits.reshape(T, N, C)
        return loss

    def _squared_error(self, arr: Array, lens: Array, targets: Any) -> float:
        """``objective='mse'``: mean of ``(output - target)**2`` over the valid steps
        and the ``C`` outputs of ``targets (N, T, C)``; padded steps are never read."""
        N, T = arr.shape[:2]
        C = self.config.num_tags
        y = _validate.float_array("targets", targets, self.dtype)
        _validate.shape("targets", y, (N, T, C), f"(N, T, {C}) like x and num_tags")
        self._cache = None
        out = self._run(arr, lens)  # (T, N, C)
        valid = (np.arange(T)[:, None] < lens[None, :])[..., None]  # (T, N, 1)
        target = np.where(valid, y.transpose(1, 0, 2), 0)  # (T, N, C), NaN padding unread
        _validate.finite("targets", target)
        diff = np.where(valid, out - target, 0)  # (T, N, C)
        count = float(lens.sum()) * C
        self._cache = (2.0 / count * diff).astype(self.dtype)
        return float((diff.astype(np.float64) ** 2).sum() / count)

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
