"""Decoding language models: sampling, greedy, beam search, ensembles, scoring.

- :func:`sample`, :func:`greedy`: draw continuations with temperature, top-k,
  top-p and a stop symbol, all samples advanced as one batch;
  :func:`sample_text` is :func:`sample` from a prime text to a text;
  :func:`sample_with` runs the same loop with any rule; :func:`pick` and
  :func:`sampling_distribution` are the rule's pieces.
- :func:`beam_search` -> :class:`Hypothesis` list: the most likely
  continuations, with EOS, GNMT length penalty and n-gram blocking.
- :class:`Ensemble`: several models over one vocabulary, averaged; accepted
  wherever a model is.
- :func:`score` -> :class:`Score`: the log-probability of a given sequence.
- :class:`CompiledLM`: a ``CharLM`` packed for the Rust decoding kernels; the
  decoders above compile a ``CharLM`` on entry (:func:`compiled`), and
  :func:`sample` then runs its whole loop in one call.
- :func:`translate`, :class:`SourceModel`: a :class:`~rnncore.models.Seq2Seq`
  bound to one source is a decodable model, so beam search (length penalty,
  EOS, n-best) and ensembles run on it; one compiled decoder call per step.
- :mod:`rnncore.decode.commands`: the ``rnncore sample`` and ``rnncore score``
  subcommands (not imported here).

Every decoder reaches the model only through ``initial_state(N)`` and
``step(ids (N,), state) -> (log_probs (N, V), state)`` (plus an optional
``forward`` over ``(N, T)`` for primes and scored text); see
:mod:`rnncore.decode._model`.
"""

from __future__ import annotations

from rnncore.decode.beam import Hypothesis, beam_search, beam_search_groups, length_penalty
from rnncore.decode.compiled import CompiledLM, compiled
from rnncore.decode.ensemble import Ensemble
from rnncore.decode.sampling import (
    Rule,
    greedy,
    pick,
    sample,
    sample_text,
    sample_with,
    sampling_distribution,
)
from rnncore.decode.scoring import Score, score
from rnncore.decode.seq2seq import SourceModel, translate

__all__ = [
    "CompiledLM",
    "Ensemble",
    "Hypothesis",
    "Rule",
    "Score",
    "SourceModel",
    "beam_search",
    "beam_search_groups",
    "compiled",
    "greedy",
    "length_penalty",
    "pick",
    "sample",
    "sample_text",
    "sample_with",
    "sampling_distribution",
    "score",
    "translate",
]
