"""Encoder–decoder with attention: translation-style sequence to sequence.

``src (N, S)`` with ``src_lengths`` -> source Embedding ``(S, N, E)`` -> stacked,
optionally bidirectional RNN/LSTM/GRU encoder ``memory (N, S, M = dirs*H)`` ->
bridge ``h0 = tanh(W [h_fwd; h_bwd] + b)`` from the top layer's final states (an
LSTM decoder starts with ``c0 = 0``) -> :class:`~rnncore.nn.AttentionDecoder` over
the embedded target inputs (teacher forcing, or scheduled sampling with
``loss(..., sampling_prob=p)``), one compiled call for all steps -> head
``Linear(H + M, V_tgt)`` on ``[h_t; context_t]``.

With ``attention="none"`` (the baseline attention is measured against) the decoder
is one plain recurrent layer of the same cell, started from the same bridge state,
that sees the source only through that state; the head is ``Linear(H, V_tgt)`` on
``h_t``. Greedy decoding and :mod:`rnncore.decode.seq2seq` run on it unchanged;
there are no attention weights (None where they would be returned).

Targets are ``tgt (N, T)`` rows ``BOS y_1 .. y_k EOS`` followed by padding, with
``tgt_lengths`` counting BOS and EOS: the decoder reads ``tgt[:, :-1]`` and is
scored on ``tgt[:, 1:]`` over the valid steps ``t < tgt_lengths - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate, nn
from rnncore.errors import ArgumentError, ShapeError, StateError
from rnncore.models._base import (
    Config,
    Model,
    check_common,
    check_features,
    check_ids,
    check_lengths,
    collect_symbols,
    make_rnn,
)
from rnncore.nn._base import CELL_STATE, Array
from rnncore.nn.functional import _in_range, softmax_cross_entropy

__all__ = ["Seq2Seq", "Seq2SeqConfig"]

ATTENTIONS = ("additive", "general", "dot", "none")  # 'none': a plain recurrent decoder


@dataclass
class Seq2SeqConfig(Config):
    """What :class:`Seq2Seq` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V_src: source symbols
    tgt_vocab_size: int  # V_tgt: target symbols (ids bos_id and eos_id among them)
    cell: str = "lstm"  # encoder and decoder cell: 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu'
    embedding_dim: int = 64  # E of both embeddings
    hidden_size: int = 128  # H: each encoder direction and the decoder
    num_layers: int = 1  # stacked encoder layers
    bidirectional: bool = True  # encoder reads both ways; memory width M = dirs*H
    attention: str = "additive"  # 'additive' (Bahdanau) | 'general' | 'dot' (Luong) | 'none'
    dropout: float = 0.0  # between encoder layers, training only
    bos_id: int = 1  # target id that starts every decoder input
    eos_id: int = 2  # target id that ends a decoded sequence
    dtype: str = "float32"  # 'float32' | 'float64'
    seed: int | None = 0  # initial weights and dropout masks
    # None: source ids (N, S); D: float source features (N, S, D) instead, e.g.
    # frames of audio (then vocab_size is 0 and there is no source embedding)
    input_size: int | None = None

    def __post_init__(self) -> None:
        check_common(self)
        _validate.positive_int("tgt_vocab_size", self.tgt_vocab_size)
        _validate.flag("bidirectional", self.bidirectional)
        _validate.choice("attention", self.attention, ATTENTIONS)
        for name in ("bos_id", "eos_id"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < self.tgt_vocab_size:
                raise ArgumentError(f"{name} must lie in 0..{self.tgt_vocab_size - 1}, got {value}")
        dirs = 2 if self.bidirectional else 1
        if self.attention == "dot" and dirs != 1:
            raise ArgumentError("dot attention needs a one-directional encoder (M == H)")


class Seq2Seq(Model):
    """Encoder, bridge, attention decoder and head (see the module docstring).

    Parameters: ``src_embedding.weight (V_src, E)`` (not with ``input_size``: the
    source is then float features ``(N, S, D)``), ``tgt_embedding.weight
    (V_tgt, E)``, ``encoder.*`` (torch's names), ``bridge.weight (H, M)``,
    ``bridge.bias (H,)``, ``decoder.*`` (:class:`~rnncore.nn.AttentionDecoder`),
    ``head.weight (V_tgt, H + M)``, ``head.bias (V_tgt,)``.

    With ``attention="none"``: ``decoder.weight_ih_l0 (G*H, E)``,
    ``decoder.weight_hh_l0 (G*H, H)``, ``decoder.bias_ih_l0``, ``decoder.bias_hh_l0
    (G*H,)`` (torch's names and gate order, one layer) and ``head.weight (V_tgt, H)``;
    the rest as above.
    """

    def __init__(self, config: Seq2SeqConfig, *, backend: ModuleType | None = None) -> None:
        if not isinstance(config, Seq2SeqConfig):
            raise ArgumentError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        super().__init__(config.seed)
        self.config = config
        self.dtype = np.dtype(config.dtype)
        E, H = config.embedding_dim, config.hidden_size
        M = (2 if config.bidirectional else 1) * H
        kw: dict[str, Any] = {"dtype": self.dtype, "rng": self.rng}
        V_src, V_tgt = config.vocab_size, config.tgt_vocab_size
        if config.input_size is None:
            self.src_embedding = self._add("src_embedding", nn.Embedding(V_src, E, **kw))
        self.tgt_embedding = self._add("tgt_embedding", nn.Embedding(V_tgt, E, **kw))
        D = E if config.input_size is None else config.input_size  # encoder input width
        rnn = make_rnn(config.cell, D, config, self.rng, backend, config.bidirectional)
        self.encoder = self._add("encoder", rnn)
        self.bridge = self._add("bridge", nn.Linear(M, H, **kw))
        if config.attention == "none":  # one layer of the encoder's cell, no dropout
            decoder = make_rnn(config.cell, E, replace(config, num_layers=1), self.rng, backend)
        else:
            kind = config.attention
            decoder = nn.AttentionDecoder(E, H, M, config.cell, kind, **kw, backend=backend)
        self.decoder = self._add("decoder", decoder)
        width = H if config.attention == "none" else H + M  # head input: h_t [; context_t]
        self.head = self._add("head", nn.Linear(width, V_tgt, **kw))
        self._cache: tuple | None = None

    @property
    def samples_inputs(self) -> bool:
        """Whether :meth:`loss` takes ``sampling_prob > 0`` (scheduled sampling runs
        inside the attention decoder; not with ``attention="none"``)."""
        return self.config.attention != "none"

    # ----------------------------------------------------------------- encoder

    def _source(self, src: Any, src_lengths: Any) -> tuple[Array, Array]:
        """Checked ``src (N, S)`` (features ``(N, S, D)`` with ``input_size``) and
        ``src_lengths (N,)`` (all ``S`` when None)."""
        D = self.config.input_size
        if D is None:
            arr = check_ids("src", src, self.config.vocab_size, 2, "(N, S)")
        else:
            arr = check_features("src", src, self.dtype, D, "S")
        N, S = arr.shape[:2]
        lens = check_lengths(src_lengths, N, S)
        return arr, np.full(N, S, np.int64) if lens is None else lens

    def encode(self, src: Array, lens: Array) -> tuple[Array, Any, Array]:
        """Checked ``src (N, S)`` (or features ``(N, S, D)``), ``lens`` ->
        ``(memory (N, S, M), h0 state, bridge pre-activation (N, H))``."""
        if src.ndim == 3:  # features, read as they are
            x = np.ascontiguousarray(src.transpose(1, 0, 2))  # (S, N, D)
        else:
            x = self.src_embedding._forward(src.T)  # (S, N, E)
        out, hx = self.encoder(x, lengths=lens)  # (S, N, M)
        h_n = hx[0] if isinstance(hx, tuple) else hx  # (L*dirs, N, H)
        dirs = 2 if self.config.bidirectional else 1
        top = np.concatenate(list(h_n[-dirs:]), axis=1)  # (N, M) top layer's final states
        h0 = np.tanh(self.bridge._forward(top))  # (N, H)
        c0 = np.zeros_like(h0) if self.config.cell in CELL_STATE else None
        state = (h0, c0) if c0 is not None else h0
        return np.ascontiguousarray(out.transpose(1, 0, 2)), state, h0

    # ----------------------------------------------------------------- decoder

    def _decode(
        self,
        y: Array,
        memory: Array,
        lens: Array,
        hx: Any,
        context: Array | None = None,
        keys: Array | None = None,
        prepared: Any = None,
    ) -> tuple[Array, Array | None, Any, Array | None]:
        """The decoder over ``y (T, N, E)`` from ``hx`` (``h (N, H)`` or ``(h, c)``):
        ``(output (T, N, H + M), weights (T, N, S), hx_n, context_n)``; ``keys``:
        ``decoder.keys(memory)`` and ``prepared`` ``decoder.prepare()`` when the
        caller steps it and keeps them. Without
        attention: ``output (T, N, H)``, no weights, and ``context`` passes through."""
        if self.config.attention != "none":
            return self.decoder(y, memory, lens, hx, context, keys=keys, prepared=prepared)
        out, hx_n = self.decoder(y, _map(lambda a: a[None], hx))  # layer state (1, N, H)
        return out, None, _map(lambda a: a[0], hx_n), context

    def _decode_backward(self, d_out: Array, memory_shape: tuple[int, ...]) -> tuple:
        """Backward of :meth:`_decode` (training mode): ``d_out`` -> ``(dy (T, N, E),
        dmemory (N, S, M), dhx)``; ``dmemory`` is zero without attention."""
        if self.config.attention != "none":
            dy, dmemory, dhx, _ = self.decoder.backward(d_out)
            return dy, dmemory, dhx
        dy, dhx = self.decoder.backward(d_out)  # dhx (1, N, H) or a pair
        return dy, np.zeros(memory_shape, self.dtype), _map(lambda a: a[0], dhx)

    # ----------------------------------------------------------------- training

    def _targets(self, tgt: Any, tgt_lengths: Any, N: int) -> tuple[Array, Array]:
        arr = check_ids("tgt", tgt, self.config.tgt_vocab_size, 2, "(N, T)")
        if arr.shape[0] != N:
            raise ShapeError(f"tgt must have the batch of src ({N}), got shape {arr.shape}")
        if arr.shape[1] < 2:
            raise ShapeError(f"tgt needs at least BOS and one symbol (T >= 2), got {arr.shape}")
        lens = check_lengths(tgt_lengths, N, arr.shape[1])
        lens = np.full(N, arr.shape[1], np.int64) if lens is None else lens
        if lens.min() < 2:
            raise ArgumentError(
                f"tgt_lengths must be at least 2 (BOS and EOS), got {lens.tolist()}"
            )
        return arr, lens

    def logits(self, src: Any, src_lengths: Any, tgt_in: Any) -> tuple[Array, Array]:
        """Teacher-forced ``logits (N, T, V_tgt)`` and attention ``weights (N, T, S)``
        (None with ``attention="none"``) for decoder inputs ``tgt_in (N, T)`` (each row
        starts with BOS)."""
        s, s_lens = self._source(src, src_lengths)
        t = check_ids("tgt_in", tgt_in, self.config.tgt_vocab_size, 2, "(N, T)")
        if t.shape[0] != s.shape[0]:
            raise ShapeError(f"tgt_in must have the batch of src ({s.shape[0]}), got {t.shape}")
        memory, state, _ = self.encode(s, s_lens)
        y = self.tgt_embedding._forward(t.T)  # (T, N, E)
        out, weights, _, _ = self._decode(y, memory, s_lens, state)
        logits = self.head._forward(out).transpose(1, 0, 2)  # (N, T, V)
        return logits, None if weights is None else weights.transpose(1, 0, 2)

    def loss(
        self,
        src: Any,
        src_lengths: Any,
        tgt: Any,
        tgt_lengths: Any = None,
        *,
        sampling_prob: float = 0.0,
    ) -> float:
        """Mean cross-entropy of ``tgt[:, 1:]`` given ``tgt[:, :-1]`` over the valid
        steps; kept for :meth:`backward`.

        Args:
            src: ``(N, S)`` source ids; src_lengths: ``(N,)`` in ``1..S`` or None.
            tgt: ``(N, T)`` rows ``BOS .. EOS`` then padding; tgt_lengths: ``(N,)``
                in ``2..T`` counting BOS and EOS, or None (all ``T``).
            sampling_prob: scheduled sampling (Bengio et al. 2015), in ``[0, 1]``:
                at every step after the first, each row is fed its own greedy
                prediction of the previous step with this probability instead of
                ``tgt``. The coin flips are seeded by one draw from :attr:`rng`
                (so a resumed run repeats them); 0 (the default) is teacher
                forcing and draws nothing.
        """
        p = _validate.unit_interval("sampling_prob", sampling_prob)
        s, s_lens = self._source(src, src_lengths)
        N = s.shape[0]
        t, t_lens = self._targets(tgt, tgt_lengths, N)
        self._cache = None
        T = t.shape[1] - 1
        memory, state, h0 = self.encode(s, s_lens)
        tgt_in = np.ascontiguousarray(t[:, :-1].T)  # (T, N)
        y = self.tgt_embedding._forward(tgt_in)  # (T, N, E)
        fed = None  # (T, N) the ids fed, when sampling
        if p > 0.0:
            if self.config.attention == "none":
                raise ArgumentError(
                    "sampling_prob > 0 needs the attention decoder (scheduled sampling "
                    "runs inside it); this model has attention='none'"
                )
            sampling = nn.ScheduledSampling(
                p, int(self.rng.integers(0, 2**64, dtype=np.uint64)), tgt_in,
                self.tgt_embedding.weight, self.head.weight, self.head.bias,
            )  # fmt: skip
            out, _, _, _, fed = self.decoder(y, memory, s_lens, state, sampling=sampling)
        else:
            out, _, _, _ = self._decode(y, memory, s_lens, state)  # (T, N, H + M)
        logits = self.head._forward(out)  # (T, N, V)
        V = self.config.tgt_vocab_size
        valid = np.arange(T)[:, None] < (t_lens - 1)[None, :]  # (T, N)
        target = np.ascontiguousarray(t[:, 1:].T)  # (T, N)
        _in_range("tgt", target, V, valid)
        loss, dlogits = softmax_cross_entropy(
            logits.reshape(T * N, V),
            target.reshape(-1),
            mask=valid.reshape(-1),
            overwrite_logits=True,
        )
        self._cache = (dlogits.reshape(T, N, V), h0, fed, memory.shape)
        return loss

    def backward(self) -> None:
        """Backpropagate the most recent :meth:`loss`, adding to :attr:`grads`."""
        if self._cache is None:
            raise StateError("Seq2Seq.backward() needs a loss() call first")
        dlogits, h0, fed, memory_shape = self._cache
        d_out = self.head._backward(dlogits)  # (T, N, H + M)
        if not np.isfinite(d_out).all():
            self._poison_grads()
            return
        dy, dmemory, dhx = self._decode_backward(d_out, memory_shape)
        self.tgt_embedding._backward(dy, fed)  # into the rows actually fed
        dh0 = dhx[0] if isinstance(dhx, tuple) else dhx  # (N, H)
        d_top = self.bridge._backward(dh0 * (1.0 - h0**2))  # (N, M)
        dirs = 2 if self.config.bidirectional else 1
        H, N = self.config.hidden_size, h0.shape[0]
        d_h_n = np.zeros((self.config.num_layers * dirs, N, H), dtype=self.dtype)
        d_h_n[-dirs:] = d_top.reshape(N, dirs, H).transpose(1, 0, 2)
        d_hx = (d_h_n, None) if self.config.cell in CELL_STATE else d_h_n
        dx, _ = self.encoder.backward(np.ascontiguousarray(dmemory.transpose(1, 0, 2)), d_hx)
        if self.config.input_size is None:
            self.src_embedding._backward(dx)

    # ----------------------------------------------------------------- decoding

    def greedy(
        self, src: Any, src_lengths: Any = None, max_length: int = 100
    ) -> tuple[list[list[int]], Array]:
        """The most likely symbol at every step, for a batch of sources at once.

        Each step is one compiled decoder call of one step for the whole batch
        (the state and context carry over). A row stops at ``eos_id`` (not included
        in its output) or after ``max_length`` symbols.

        Returns:
            ``(outputs, weights)``: one list of target ids per source, and the
            attention weights ``(N, T, S)`` of every step taken (rows that have
            stopped keep running and are ignored); None with ``attention="none"``.
        """
        s, s_lens = self._source(src, src_lengths)
        max_length = _validate.positive_int("max_length", max_length)
        was_training = self.training
        self.eval()
        try:
            memory, hx, _ = self.encode(s, s_lens)
            keys = prepared = None
            if self.config.attention != "none":
                keys, prepared = self.decoder.keys(memory), self.decoder.prepare()
            N = s.shape[0]
            prev = np.full(N, self.config.bos_id, np.int64)
            context = None
            done = np.zeros(N, dtype=bool)
            outputs: list[list[int]] = [[] for _ in range(N)]
            weights = []
            for _ in range(max_length):
                y = self.tgt_embedding._forward(prev[None, :])  # (1, N, E)
                out, w, hx, context = self._decode(y, memory, s_lens, hx, context, keys, prepared)
                prev = self.head._forward(out[0]).argmax(axis=1)  # (N,)
                if w is not None:
                    weights.append(w[0])
                if collect_symbols(prev, done, outputs, self.config.eos_id):
                    break
        finally:
            self.train(was_training)
        return outputs, np.stack(weights, axis=1) if weights else None  # (N, T, S)


def _map(fn: Any, hx: Any) -> Any:
    """``fn`` applied to a state: one array, or each array of an LSTM's ``(h, c)``."""
    return tuple(fn(a) for a in hx) if isinstance(hx, tuple) else fn(hx)
