"""Decoding a :class:`~rnncore.models.Seq2Seq`: its decoder bound to one source is a
decodable model, so :func:`~rnncore.decode.beam_search`, :func:`~rnncore.decode.greedy`
and :class:`~rnncore.decode.Ensemble` run on it unchanged.

The state of a row is ``(h (1, N, H)[, c], context (1, N, M), memory (1, N, S, M),
keys (1, N, S, A), lengths (1, N))``: the decoder's recurrent state and last
context, the encoder output each row attends over and its keys (projected once,
when the source is bound), all with the batch on axis 1 so beams can gather
their rows. Each ``step`` is one compiled decoder call (one step) for every row.
Without attention (``attention="none"``) the context stays zero and the memory is
carried but not read, and the keys are empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnncore.decode._model import eval_mode
from rnncore.decode.beam import Hypothesis, beam_search_groups
from rnncore.decode.ensemble import Ensemble
from rnncore.errors import ArgumentError
from rnncore.nn._base import Array, State
from rnncore.nn.functional import log_softmax

__all__ = ["SourceModel", "translate", "translate_batch"]


class SourceModel:
    """``model``'s decoder conditioned on one source sentence ``src (S,)``, or on
    ``G`` of them (a list of ``(S_g,)`` arrays), one per row of ``initial_state(G)``
    (:func:`translate_batch` searches them together).

    Decoding starts from the prime ``[bos_id]`` (:func:`translate` passes it). The
    keys of the memory and the decoder's packed weights are made once, here: the
    model's weights must not change while it decodes. The model is put in eval
    mode for the encoder run; call under
    :func:`~rnncore.decode._model.eval_mode` or let the decoders do it.
    """

    def __init__(self, model: Any, src: Any) -> None:
        self.model = model
        self.vocab_size = model.config.tgt_vocab_size
        ndim = 1 if model.config.input_size is None else 2  # ids (S,) or features (S, D)
        if isinstance(src, (list, tuple)) and src and np.ndim(src[0]) == ndim:
            sources = [np.asarray(x) for x in src]  # G sentences of their own lengths
        else:
            sources = [np.asarray(src)]
        for ids in sources:
            if ids.ndim != ndim:
                layout = "(S,)" if ndim == 1 else "(S, D) features"
                raise ArgumentError(f"src must be one sentence {layout}, got shape {ids.shape}")
        lens = [len(ids) for ids in sources]
        shape = (len(sources), max(lens), *sources[0].shape[1:])  # (G, S[, D])
        padded = np.zeros(shape, dtype=sources[0].dtype)
        for g, ids in enumerate(sources):
            padded[g, : len(ids)] = ids
        with eval_mode(model):
            s, lengths = model._source(padded, np.array(lens, np.int64))
            memory, hx, _ = model.encode(s, lengths)  # (G, S, M)
        self._memory = memory[None]  # (1, G, S, M)
        self._prepared = None  # the decoder's weights packed once, for every step
        if model.config.attention == "none":
            self._keys = np.zeros((1, len(sources), 0), dtype=memory.dtype)  # not read
        else:
            self._keys = model.decoder.keys(memory)[None]  # (1, G, S, A), once
            self._prepared = model.decoder.prepare()
        self._lengths = lengths[None]  # (1, G)
        self._hx = hx  # (G, H) rows, or (h, c)
        self._M = memory.shape[2]
        self.groups = len(sources)

    def eval(self) -> SourceModel:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> SourceModel:
        self.model.train(mode)
        return self

    @property
    def training(self) -> bool:
        return self.model.training

    def initial_state(self, N: int) -> State:
        """The state after the encoder, for ``N`` rows: the bound sources' own rows
        (``N`` equal to their number), or one source's repeated ``N`` times."""
        G = self.groups
        if N != G and G != 1:
            raise ArgumentError(f"{G} sources give {G} rows, not {N}")
        h, c = self._hx if isinstance(self._hx, tuple) else (self._hx, None)
        reps = N if G == 1 else 1
        rep = lambda a: np.repeat(a[None], reps, axis=1)  # (G, ...) -> (1, N, ...)  # noqa: E731
        context = np.zeros((1, N, self._M), dtype=self.model.dtype)
        memory = np.repeat(self._memory, reps, axis=1)  # (1, N, S, M)
        keys = np.repeat(self._keys, reps, axis=1)  # (1, N, S, A)
        lengths = np.repeat(self._lengths, reps, axis=1)  # (1, N)
        cell = () if c is None else (rep(c),)
        return (rep(h), *cell, context, memory, keys, lengths)

    def step(self, ids: Array, state: State) -> tuple[Array, State]:
        """``ids (N,)`` -> ``(log_probs (N, V), state)``: one decoder step for all rows."""
        m = self.model
        h, *cell, context, memory, keys, lengths = state
        hx = (h[0], cell[0][0]) if cell else h[0]
        y = m.tgt_embedding._forward(np.asarray(ids, np.int64)[None, :])  # (1, N, E)
        out, _, hx, context_n = m._decode(
            y, memory[0], lengths[0], hx, context[0], keys[0], self._prepared
        )
        log_probs = log_softmax(m.head._forward(out[0]))  # (N, V)
        h_n, *c_n = hx if isinstance(hx, tuple) else (hx,)
        new = (h_n[None], *(c[None] for c in c_n), context_n[None], memory, keys, lengths)
        return log_probs, new


def translate(
    model: Any,
    src: Any,
    *,
    beam_size: int = 1,
    max_length: int = 100,
    length_penalty: float = 0.0,
    n_best: int = 1,
) -> list[Hypothesis]:
    """The ``n_best`` best target sequences for one source ``src (S,)`` by beam search
    (``beam_size`` 1 is greedy), ending in ``eos_id``; ``ids`` of each
    :class:`~rnncore.decode.Hypothesis` include the final ``eos_id`` if emitted."""
    ids = np.asarray(src)
    ndim = 1 if model.config.input_size is None else 2
    if ids.ndim != ndim:
        layout = "(S,)" if ndim == 1 else "(S, D) features"
        raise ArgumentError(f"src must be one sentence {layout}, got shape {ids.shape}")
    options = {"max_length": max_length, "length_penalty": length_penalty, "n_best": n_best}
    return translate_batch(model, [ids], beam_size=beam_size, **options)[0]


def translate_batch(
    model: Any,
    sources: Any,
    *,
    beam_size: int = 1,
    max_length: int = 100,
    length_penalty: float = 0.0,
    n_best: int = 1,
    ensemble: Sequence[Any] = (),
    ensemble_mode: str = "prob",
) -> list[list[Hypothesis]]:
    """:func:`translate` for a batch of sources at once (a list of ``(S_g,)`` id
    sequences of any lengths): one beam search per source, all of their beams
    advancing through one compiled decoder step per step
    (:func:`~rnncore.decode.beam_search_groups`). Each source gets the same
    hypotheses as :func:`translate` alone.

    ``ensemble``: more ``Seq2Seq`` models with the same target symbols (size, BOS
    and EOS), each bound to the same sources; their next-symbol distributions
    are averaged with ``model``'s (:class:`~rnncore.decode.Ensemble`, ``mode``
    ``ensemble_mode``)."""
    if not isinstance(sources, (list, tuple)) or not sources:
        raise ArgumentError("sources must be a non-empty list of id sequences")
    cfg = model.config
    arrays = [np.asarray(x) for x in sources]
    bound: Any = SourceModel(model, arrays)
    if ensemble:
        members = [bound]
        for k, other in enumerate(ensemble):
            c = getattr(other, "config", None)
            same = c is not None and (c.tgt_vocab_size, c.bos_id, c.eos_id) == (
                cfg.tgt_vocab_size, cfg.bos_id, cfg.eos_id,
            )  # fmt: skip
            if not same:
                raise ArgumentError(
                    f"ensemble[{k}] must be a Seq2Seq with the target symbols of model "
                    f"({cfg.tgt_vocab_size} symbols, bos_id {cfg.bos_id}, eos_id {cfg.eos_id})"
                )
            members.append(SourceModel(other, arrays))
        bound = Ensemble(members, mode=ensemble_mode)
    return beam_search_groups(
        bound,
        groups=len(sources),
        prime_ids=[cfg.bos_id],
        beam_size=beam_size,
        max_length=max_length,
        eos_id=cfg.eos_id,
        length_penalty=length_penalty,
        n_best=n_best,
    )
