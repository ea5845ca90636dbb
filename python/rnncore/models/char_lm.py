"""A recurrent language model over any vocabulary: characters (char-rnn) or words.

``ids (N, T) -> one-hot or Embedding (T, N, D) -> RNN/LSTM/GRU stack (T, N, H)
-> Dropout -> Linear head (T, N, V) -> softmax cross-entropy`` against the next
(with ``proj_size = P``, an LSTM with projections, the stack's output is
``(T, N, P)`` and the head reads ``P`` features)
ids. The API is batch-first; the recurrent kernels run time-major, so ids are
transposed once on the way in. Training runs truncated backpropagation through
time: :meth:`CharLM.loss` returns the final state, which the caller passes into
the next chunk; no gradient flows between chunks.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from rnncore import _validate, decode, nn
from rnncore.errors import ArgumentError, StateError
from rnncore.models import tracing
from rnncore.models._base import (
    CELL_STATE,
    UNCOMPILED,
    Config,
    Model,
    check_common,
    check_ids,
    check_same_shape,
    make_rnn,
)
from rnncore.nn._base import Array, State
from rnncore.nn.functional import log_softmax, softmax_cross_entropy

__all__ = ["CharLM", "LMConfig"]


@dataclass
class LMConfig(Config):
    """What :class:`CharLM` is; ``dataclasses.asdict(config)`` is JSON."""

    vocab_size: int  # V: number of distinct tokens (characters, words, ...)
    cell: str = "lstm"  # one of models.CELLS: lstm, lstm_cifg, lstm_peephole, gru, ..., mut1-3
    hidden_size: int = 128  # H: features of each layer's state (char-rnn's rnn_size)
    num_layers: int = 2  # stacked recurrent layers (char-rnn's default)
    dropout: float = 0.0  # between recurrent layers and before the head, training only
    embedding_dim: int | None = None  # None: one-hot input (char-rnn); E: an Embedding(V, E)
    dtype: str = "float32"  # 'float32' | 'float64', of parameters and activations
    forget_bias: float = 0.0  # added to the LSTM forget-gate bias_ih at init; 0 keeps torch's
    seed: int | None = 0  # initial weights and dropout masks; None: fresh OS entropy
    init_hh: str = "uniform"  # 'uniform' (torch's) | 'orthogonal' | 'identity' (rnn_* only)
    proj_size: int = 0  # P < H: LSTM with projections (torch's proj_size, cell='lstm'); 0: none
    # dropout inside the recurrence (rnncore.nn: RNN/LSTM/GRU), training only except
    # zoneout, which evaluates to its expectation; zoneout_cell is for the LSTM cells
    input_dropout: float = 0.0  # one mask per sequence on each layer's input
    recurrent_dropout: float = 0.0  # one mask per sequence on the state W_hh reads
    zoneout: float = 0.0  # each hidden unit keeps its previous value with this probability
    zoneout_cell: float = 0.0  # the same for the cell state

    def __post_init__(self) -> None:
        check_common(self)
        if isinstance(self.forget_bias, bool) or not isinstance(self.forget_bias, numbers.Real):
            raise ArgumentError(f"forget_bias must be a number, got {self.forget_bias!r}")
        if not math.isfinite(self.forget_bias):
            raise ArgumentError(f"forget_bias must be finite, got {self.forget_bias}")
        if self.forget_bias != 0 and self.cell not in CELL_STATE:
            raise ArgumentError(
                f"forget_bias is for cell='lstm', 'lstm_cifg' or 'lstm_peephole', not {self.cell!r}"
            )
        _validate.choice("init_hh", self.init_hh, nn.init.HH_INITS)
        self.proj_size = _validate.proj_size(self.proj_size, self.hidden_size, self.cell)
        if self.init_hh == "identity" and not self.cell.startswith("rnn_"):
            raise ArgumentError(
                f"init_hh='identity' (IRNN) is for cell='rnn_relu' or 'rnn_tanh', not {self.cell!r}"
            )


class CharLM(Model):
    """Next-token language model: embedding/one-hot, recurrent stack, dropout, linear head.

    Parameters (``named_parameters()``): ``embedding.weight (V, E)`` if
    ``embedding_dim`` is set, ``rnn.weight_ih_l{k}``, ``rnn.weight_hh_l{k}``,
    ``rnn.bias_ih_l{k}``, ``rnn.bias_hh_l{k}`` (torch's LSTM/GRU/RNN names and
    shapes; ``rnn.weight_hr_l{k} (P, H)`` with ``proj_size``), ``head.weight (V, H)``
    (``(V, P)`` with ``proj_size``) and ``head.bias (V,)``. Initialisation is
    torch's, plus ``forget_bias`` and ``init_hh`` (:mod:`rnncore.nn.init`). One-hot
    input costs ``T*N*V`` floats per chunk: for a large vocabulary (words) set
    ``embedding_dim``.

    Args:
        config: the :class:`LMConfig`.
        backend: kernel module; None for the compiled kernels,
            ``rnncore.reference`` for the NumPy reference (slow, for checks).

    Example::

        >>> model = CharLM(LMConfig(vocab_size=65, hidden_size=32, seed=0))
        >>> x = np.zeros((4, 10), np.int64)                  # (N, T) ids
        >>> loss, state = model.loss(x, x)                   # state for the next chunk
        >>> model.zero_grad(); model.backward()              # fills model.grads
    """

    def __init__(self, config: LMConfig, *, backend: ModuleType | None = None) -> None:
        if not isinstance(config, LMConfig):
            raise ArgumentError(
                f"config must be an LMConfig (LMConfig.from_dict(d) for a dict), "
                f"got {type(config).__name__}"
            )
        super().__init__(config.seed)
        self.config = config
        self.dtype = np.dtype(config.dtype)
        V, E, H = config.vocab_size, config.embedding_dim, config.hidden_size
        kw: dict[str, Any] = {"dtype": self.dtype, "rng": self.rng}
        if E is not None:
            self.embedding = self._add("embedding", nn.Embedding(V, E, **kw))
        self.rnn = self._add(
            "rnn", make_rnn(config.cell, V if E is None else E, config, self.rng, backend)
        )
        self.dropout = self._add("dropout", nn.Dropout(config.dropout, **kw))
        self.head = self._add("head", nn.Linear(config.proj_size or H, V, **kw))
        nn.init.init_hh_(self.rnn, config.init_hh)  # draws from self.rng after the rest
        if config.forget_bias != 0:
            nn.init.forget_bias_(self.rnn, config.forget_bias)  # gates i|f|g|o
        # (dlogits (T*N, V), T, N, whether the loss was finite)
        self._cache: tuple[Array, int, int, bool] | None = None

    # ----------------------------------------------------------------- state

    def _state_shapes(self, N: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """Shapes of ``h`` and ``c``: ``(num_layers, N, H)`` each, but ``h`` is
        ``(num_layers, N, P)`` with ``proj_size``."""
        L, H = self.config.num_layers, self.config.hidden_size
        return (L, N, self.config.proj_size or H), (L, N, H)

    def initial_state(self, N: int) -> State:
        """Zeros: ``(h, c)`` for LSTM, else ``h``, each ``(num_layers, N, H)`` (``h``
        ``(num_layers, N, P)`` with ``proj_size``)."""
        N = _validate.positive_int("N", N)
        h_shape, c_shape = self._state_shapes(N)
        _validate.buffer_len("initial_state(N)", *c_shape)
        with _validate.allocating("initial_state(N)"):
            h = np.zeros(h_shape, self.dtype)
            return (h, np.zeros(c_shape, self.dtype)) if self.config.cell in CELL_STATE else h

    def _check_state(self, state: State, N: int) -> State:
        """``state`` as the recurrent layer takes it, checked under the name ``state``."""
        if state is None:
            return None
        shapes = self._state_shapes(N)
        meanings = ("(num_layers, N, proj_size)" if self.config.proj_size else "(num_layers, N, H)",
                    "(num_layers, N, H)")  # fmt: skip
        lstm = self.config.cell in CELL_STATE
        if lstm != isinstance(state, tuple) or (lstm and len(state) != 2):
            want = "a tuple (h, c)" if lstm else "a single array h"
            raise ArgumentError(f"state must be {want} for cell={self.config.cell!r}")
        parts = []
        for i, s in enumerate(state if lstm else (state,)):
            name = f"state[{i}]" if lstm else "state"
            s = _validate.float_array(name, s, self.dtype)
            _validate.shape(name, s, shapes[i], meanings[i])
            _validate.finite(name, s)
            parts.append(s)
        return tuple(parts) if lstm else parts[0]

    # ----------------------------------------------------------------- forward

    def _run(self, ids: Array, state: State) -> tuple[Array, State]:
        """``ids (T, N)`` checked -> ``logits (T, N, V)`` and the final state."""
        x = self._encode(ids, self.config.vocab_size, self.dtype)  # (T, N, D)
        out, state = self.rnn(x, state)  # (T, N, H)
        return self.head._forward(self.dropout._forward(out)), state  # (T, N, V)

    def forward(self, inputs: Any, state: State = None) -> tuple[Array, State]:
        """``inputs (N, T)`` ids -> ``(logits (N, T, V), state)``; forgets the last loss."""
        ids = check_ids("inputs", inputs, self.config.vocab_size, 2, "(N, T)")
        state = self._check_state(state, ids.shape[0])
        self._cache = None
        logits, state = self._run(ids.T, state)
        return logits.transpose(1, 0, 2), state  # (T, N, V) -> (N, T, V)

    __call__ = forward

    def loss(
        self,
        inputs: Any,
        targets: Any,
        state: State = None,
        mask: Any = None,
        *,
        reduction: str = "mean",
    ) -> tuple[float, State]:
        """Cross-entropy of predicting ``targets`` from ``inputs``; kept for :meth:`backward`.

        Args:
            inputs: ``(N, T)`` integer ids in ``0..V-1``.
            targets: ``(N, T)`` the next ids (``inputs`` shifted by one in the text).
            state: the state the previous chunk returned, or None for zeros.
            mask: ``(N, T)`` bool or 0/1 (or non-negative weights): positions to
                count, e.g. False on padding; None counts all ``N*T`` positions.
            reduction: ``"mean"`` over counted positions, or ``"sum"``
                (min-char-rnn's loss).

        Returns:
            ``(loss, state)``: a float, and the final recurrent state (``(h, c)`` for
            LSTM, else ``h``; each ``(num_layers, N, H)``) to pass to the next chunk.
            A non-finite loss is returned, not raised (see ``NonFiniteGuard``).
        """
        ids = check_ids("inputs", inputs, self.config.vocab_size, 2, "(N, T)")
        N, T = ids.shape
        tgt = check_same_shape("targets", targets, (N, T), "(N, T) like inputs")
        if mask is not None:
            mask = np.asarray(mask)
            _validate.shape("mask", mask, (N, T), "(N, T) like inputs")
            mask = mask.T.reshape(-1)  # (T*N,) time-major like the logits
        state = self._check_state(state, N)
        self._cache = None
        logits, state = self._run(ids.T, state)  # (T, N, V)
        V = self.config.vocab_size
        loss, dlogits = softmax_cross_entropy(
            logits.reshape(T * N, V),
            tgt.T.reshape(-1),
            mask=mask,
            reduction=reduction,
            overwrite_logits=True,  # (T*N, V) becomes the gradient: no second array
        )
        # a counted row that is not finite makes the loss NaN (and only such a
        # row makes the gradient non-finite): the loss says it without a pass
        self._cache = (dlogits, T, N, math.isfinite(loss))
        return loss, state

    # ----------------------------------------------------------------- backward

    def backward(self) -> None:
        """Backpropagate the most recent :meth:`loss`, adding to :attr:`grads`.

        Call :meth:`zero_grad` first unless accumulating over several chunks. If
        that loss (or an upstream gradient) was not finite, every gradient is set
        to NaN instead, as autograd would, so ``NonFiniteGuard`` skips the step.
        """
        if self._cache is None:
            raise StateError(
                "CharLM.backward() needs a loss() call first (forward() and step() "
                "do not keep what backward needs)"
            )
        dlogits, T, N, finite = self._cache
        if not finite:
            self._poison_grads()
            return
        d_top = self.head._backward(dlogits.reshape(T, N, -1))  # (T, N, H)
        d_top = self.dropout._backward(d_top)
        if not np.isfinite(d_top).all():
            self._poison_grads()
            return
        dx, _ = self.rnn.backward(d_top)  # (T, N, D); no gradient into the given state
        self._encode_backward(dx)

    # ----------------------------------------------------------------- sampling

    def step(self, ids: Any, state: State = None) -> tuple[Array, State]:
        """One token per sequence: ``ids (N,)`` -> ``(log_probs (N, V), state)``.

        For sampling; call :meth:`eval` first (in training mode dropout is applied,
        as in torch). Forgets the most recent :meth:`loss`.
        """
        arr = check_ids("ids", ids, self.config.vocab_size, 1, "(N,)")
        state = self._check_state(state, arr.shape[0])
        self._cache = None
        logits, state = self._run(arr[None, :], state)  # (1, N, V)
        return log_softmax(logits[0]), state

    # ----------------------------------------------------------------- tracing

    def trace(self, ids: Any, *, chunk_size: int = 512, state: State = None) -> Any:
        """Every layer's states and gates at every step of ``ids (N, T)``, computed
        in chunks with the state carried: :func:`rnncore.models.tracing.trace`
        (arrays ``(num_layers, T, N, H)`` named ``h``, ``c``, ``i, f, g, o`` or
        ``r, z, n``, and the next-symbol ``log_probs (T, N, V)``)."""
        return tracing.trace(self, ids, chunk_size=chunk_size, state=state)

    # ----------------------------------------------------------------- decoding

    @property
    def decodes_compiled(self) -> bool:
        """Whether the decoders run this model through :meth:`compile` (True on
        the compiled kernels; a model on the NumPy reference, or with the cell
        ``gru_reset_before``, ``gru_ln``, ``lstm_cifg``, ``lstm_peephole``, ``lstm_ln``
        or a MUT, or with ``proj_size``, which the compiled decoder lacks, decodes as
        it is)."""
        compiled = self.config.cell not in UNCOMPILED and not self.config.proj_size
        return self.rnn._backend is None and compiled

    def compile(self, weights: str | None = None) -> decode.CompiledLM:
        """A snapshot of the weights packed for fast decoding (one Rust call per
        step, or per batch of samples): :class:`rnncore.decode.CompiledLM`.
        ``weights="bfloat16"`` or ``"int8"`` keeps the weight matrices in half or
        a quarter of the bytes (see there)."""
        return decode.CompiledLM(self, weights=weights)

    def sample(self, *, length: int, **options: Any) -> list[list[int]]:
        """Draw continuations: :func:`rnncore.decode.sample` on this model (options
        ``prime_ids``, ``temperature``, ``top_k``, ``top_p``, ``stop_id``,
        ``num_samples``, ``seed`` or ``rng``)."""
        return decode.sample(self, length=length, **options)

    def greedy(self, *, length: int, **options: Any) -> list[int]:
        """Argmax decoding: :func:`rnncore.decode.greedy` on this model (options
        ``prime_ids``, ``stop_id``)."""
        return decode.greedy(self, length=length, **options)

    def beam_search(
        self, *, beam_size: int, max_length: int, **options: Any
    ) -> list[decode.Hypothesis]:
        """The best continuations: :func:`rnncore.decode.beam_search` on this model
        (options ``prime_ids``, ``min_length``, ``eos_id``, ``length_penalty``,
        ``n_best``, ``no_repeat_ngram_size``)."""
        return decode.beam_search(self, beam_size=beam_size, max_length=max_length, **options)

    def score(self, ids: Any, *, prime_ids: Any = None) -> decode.Score:
        """``(log_prob, per_symbol_loss)`` of ``ids (T,)``: :func:`rnncore.decode.score`."""
        return decode.score(self, ids, prime_ids=prime_ids)
