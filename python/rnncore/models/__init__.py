"""Models built from :mod:`rnncore.nn` layers, with a dataclass config each.

- :class:`CharLM` (:class:`LMConfig`): next-token language model (char-rnn,
  torch-rnn, word-level), trained by truncated BPTT.
- :class:`SequenceClassifier` (:class:`ClassifierConfig`): one label per sequence.
- :class:`SequenceTagger` (:class:`TaggerConfig`): one tag per step.
- :class:`Seq2Seq` (:class:`Seq2SeqConfig`): encoder–decoder with attention, or
  without (``attention="none"``) for comparison.
- :class:`Captioner` (:class:`CaptionerConfig`): a decoder conditioned on a
  feature vector.
- :func:`min_char_rnn`: Karpathy's min-char-rnn set-up from these parts.

Every model has ``named_parameters()`` with prefixed names (``rnn.weight_ih_l0``),
``grads`` with the same keys, ``zero_grad()``, ``state_dict()``/``load_state_dict()``,
``train()``/``eval()``, ``loss(...)`` then ``backward()``, and a generator ``rng``
behind every random draw.
"""

from __future__ import annotations

from rnncore.models._base import Config, Model
from rnncore.models.captioner import Captioner, CaptionerConfig
from rnncore.models.char_lm import CharLM, LMConfig
from rnncore.models.classifier import ClassifierConfig, SequenceClassifier
from rnncore.models.min_char_rnn import MinCharRNN, min_char_rnn
from rnncore.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnncore.models.tagger import SequenceTagger, TaggerConfig

__all__ = [
    "Captioner",
    "CaptionerConfig",
    "CharLM",
    "ClassifierConfig",
    "Config",
    "LMConfig",
    "MinCharRNN",
    "Model",
    "Seq2Seq",
    "Seq2SeqConfig",
    "SequenceClassifier",
    "SequenceTagger",
    "TaggerConfig",
    "min_char_rnn",
]
