"""A decoder conditioned on a feature vector: image captioning with the image model
left outside (the features are an input).

``features (N, F)`` -> ``Linear(F, P)`` -> either the decoder's initial state
(``condition="init"``: ``h0 = tanh(W f + b)``, ``P = H``; an LSTM starts with
``c0 = 0``) or its input at step 0 (``condition="input"``: ``x_0 = W f + b`` in
place of the BOS embedding, ``P = E``, as in Show and Tell) -> RNN/LSTM/GRU stack
over the embedded caption (teacher forcing) -> ``Linear(H, V)``.

Captions are ``tgt (N, T)`` rows ``BOS y_1 .. y_k EOS`` then padding, with
``tgt_lengths`` counting BOS and EOS; the loss scores ``tgt[:, 1:]`` on the valid
steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate, nn
from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.models._base import (
    Config,
    Model,
    check_common,
    check_ids,
    check_lengths,
    collect_symbols,
    make_rnn,
)
from rnncore.nn._base import Array
from rnncore.nn.functional import _in_range, softmax_cross_entropy

__all__ = ["Captioner", "CaptionerConfig"]


@dataclass
class CaptionerConfig(Config):
    """What :class:`Captioner` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V: caption symbols (bos_id and eos_id among them)
    feature_size: int  # F: width of the feature vector
    condition: str = "init"  # 'init': features set h0 | 'input': features are x_0
    cell: str = "lstm"  # 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu'
    embedding_dim: int = 64  # E
    hidden_size: int = 128  # H
    num_layers: int = 1  # stacked layers (with 'init', every layer starts from the features)
    dropout: float = 0.0  # between layers, training only
    bos_id: int = 1
    eos_id: int = 2
    dtype: str = "float32"
    seed: int | None = 0

    def __post_init__(self) -> None:
        check_common(self)
        _validate.positive_int("feature_size", self.feature_size)
        _validate.choice("condition", self.condition, ("init", "input"))
        for name in ("bos_id", "eos_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < self.vocab_size:
                raise ArgumentError(f"{name} must lie in 0..{self.vocab_size - 1}, got {value}")


class Captioner(Model):
    """Feature projection, embedding, recurrent decoder and head (module docstring).

    Parameters: ``features.weight (P, F)``, ``features.bias (P,)``,
    ``embedding.weight (V, E)``, ``rnn.*`` (torch's names), ``head.weight (V, H)``,
    ``head.bias (V,)``.
    """

    def __init__(self, config: CaptionerConfig, *, backend: ModuleType | None = None) -> None:
        if not isinstance(config, CaptionerConfig):
            raise ArgumentError(f"config must be a CaptionerConfig, got {type(config).__name__}")
        super().__init__(config.seed)
        self.config = config
        self.dtype = np.dtype(config.dtype)
        V, E, H = config.vocab_size, config.embedding_dim, config.hidden_size
        kw: dict[str, Any] = {"dtype": self.dtype, "rng": self.rng}
        P = H if config.condition == "init" else E
        self.features = self._add("features", nn.Linear(config.feature_size, P, **kw))
        self.embedding = self._add("embedding", nn.Embedding(V, E, **kw))
        self.rnn = self._add("rnn", make_rnn(config.cell, E, config, self.rng, backend))
        self.head = self._add("head", nn.Linear(H, V, **kw))
        self._cache: tuple | None = None

    def _features(self, features: Any) -> Array:
        f = _validate.float_array("features", features, self.dtype)
        F = self.config.feature_size
        if f.ndim != 2 or f.shape[1] != F or f.shape[0] == 0:
            raise ShapeError(f"features must be (N, {F}) = (N, feature_size), got {f.shape}")
        _validate.finite("features", f)
        return f

    def _start(self, f: Array) -> tuple[Any, Array | None, Array]:
        """``(hx, x0, projection)``: the initial state (None: zeros) and step-0 input."""
        p = self.features._forward(f)  # (N, P)
        if self.config.condition == "input":
            return None, p, p
        h0 = np.tanh(p)  # (N, H)
        L = self.config.num_layers
        h = np.repeat(h0[None], L, axis=0)  # (L, N, H)
        hx = (h, np.zeros_like(h)) if self.config.cell == "lstm" else h
        return hx, None, h0

    def _inputs(self, ids: Array, x0: Array | None) -> Array:
        """``ids (N, T)`` -> embedded ``(T, N, E)``, step 0 replaced by ``x0`` if given."""
        x = self.embedding._forward(np.ascontiguousarray(ids.T))  # (T, N, E)
        if x0 is not None:
            x[0] = x0
        return x

    def loss(self, features: Any, tgt: Any, tgt_lengths: Any = None) -> float:
        """Mean cross-entropy of ``tgt[:, 1:]`` given the features and ``tgt[:, :-1]``
        over the valid steps; kept for :meth:`backward`.

        Args:
            features: ``(N, F)``.
            tgt: ``(N, T)`` captions ``BOS .. EOS`` then padding; tgt_lengths:
                ``(N,)`` in ``2..T`` counting BOS and EOS, or None (all ``T``).
        """
        f = self._features(features)
        N = f.shape[0]
        t = check_ids("tgt", tgt, self.config.vocab_size, 2, "(N, T)")
        if t.shape[0] != N or t.shape[1] < 2:
            raise ShapeError(f"tgt must be ({N}, T) with T >= 2 for {N} features, got {t.shape}")
        lens = check_lengths(tgt_lengths, N, t.shape[1])
        lens = np.full(N, t.shape[1], np.int64) if lens is None else lens
        if lens.min() < 2:
            raise ArgumentError(
                f"tgt_lengths must be at least 2 (BOS and EOS), got {lens.tolist()}"
            )
        self._cache = None
        T, V = t.shape[1] - 1, self.config.vocab_size
        hx, x0, proj = self._start(f)
        x = self._inputs(t[:, :-1], x0)  # (T, N, E)
        out, _ = self.rnn(x, hx, lengths=lens - 1)  # (T, N, H)
        logits = self.head._forward(out)  # (T, N, V)
        valid = np.arange(T)[:, None] < (lens - 1)[None, :]  # (T, N)
        target = np.ascontiguousarray(t[:, 1:].T)
        _in_range("tgt", target, V, valid)
        loss, dlogits = softmax_cross_entropy(
            logits.reshape(T * N, V),
            target.reshape(-1),
            mask=valid.reshape(-1),
            overwrite_logits=True,
        )
        self._cache = (dlogits.reshape(T, N, V), proj)
        return loss

    def backward(self) -> None:
        """Backpropagate the most recent :meth:`loss`, adding to :attr:`grads`."""
        if self._cache is None:
            raise StateError("Captioner.backward() needs a loss() call first")
        dlogits, proj = self._cache
        d_out = self.head._backward(dlogits)  # (T, N, H)
        if not np.isfinite(d_out).all():
            self._poison_grads()
            return
        dx, dhx = self.rnn.backward(d_out)  # (T, N, E), (L, N, H)
        if self.config.condition == "input":
            d_proj = dx[0].copy()  # (N, E)
            dx[0] = 0.0  # step 0 read the features, not an embedding
        else:
            dh0 = dhx[0] if isinstance(dhx, tuple) else dhx  # (L, N, H)
            d_proj = dh0.sum(axis=0) * (1.0 - proj**2)  # (N, H)
        self.embedding._backward(dx)
        self.features._backward(d_proj)

    def greedy(self, features: Any, max_length: int = 50) -> list[list[int]]:
        """The most likely caption of each feature vector, one step at a time for the
        whole batch; a row stops at ``eos_id`` (left out) or ``max_length`` symbols."""
        f = self._features(features)
        max_length = _validate.positive_int("max_length", max_length)
        was_training = self.training
        self.eval()
        try:
            N = f.shape[0]
            hx, x0, _ = self._start(f)
            prev = np.full(N, self.config.bos_id, np.int64)
            done = np.zeros(N, dtype=bool)
            outputs: list[list[int]] = [[] for _ in range(N)]
            for step in range(max_length):
                x = self._inputs(prev[:, None], x0 if step == 0 else None)  # (1, N, E)
                out, hx = self.rnn(x, hx)
                prev = self.head._forward(out[0]).argmax(axis=1)  # (N,)
                if collect_symbols(prev, done, outputs, self.config.eos_id):
                    break
        finally:
            self.train(was_training)
        return outputs
