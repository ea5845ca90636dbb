"""The kinds of model a checkpoint can hold, and the sizes each one's config implies.

A checkpoint's ``state.json`` names its model's kind under ``model_kind``
(checkpoints without it hold a ``CharLM``). Each kind is a model class, its
config class, and :attr:`Kind.sizes`: for a parsed config, the full shape of a
few stored tensors that together carry every size of the config, and the
number of recurrent layers under each prefix. :func:`check_sizes` compares
those with the tensors on disk *before* the model is built, so a small
``state.json`` cannot make rnncore allocate far more than the weights hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore.errors import CheckpointError

__all__ = ["Kind", "check_sizes", "kind_of", "kinds"]

Sizes = tuple[dict[str, tuple[int, ...]], dict[str, int]]  # shapes, layers per prefix


@dataclass(frozen=True)
class Kind:
    """One kind of model: its name, classes and implied sizes."""

    name: str  # the value of ``model_kind``
    model: type
    config: type
    sizes: Callable[[Any], Sizes]


def _dirs(cfg: Any) -> int:
    return 2 if cfg.bidirectional else 1


def _embedding(cfg: Any, name: str = "embedding.weight") -> dict[str, tuple[int, ...]]:
    E = cfg.embedding_dim
    features = getattr(cfg, "input_size", None) is not None  # no embedding then
    return {} if E is None or features else {name: (cfg.vocab_size, E)}


def _state_size(cfg: Any) -> int:
    """Features of the recurrent state ``h``: ``proj_size`` if set, else ``hidden_size``."""
    return getattr(cfg, "proj_size", 0) or cfg.hidden_size


def _lm(cfg: Any) -> Sizes:
    return {"head.weight": (cfg.vocab_size, _state_size(cfg)), **_embedding(cfg)}, {
        "rnn.": cfg.num_layers
    }


def _encoder(outputs: str) -> Callable[[Any], Sizes]:
    def sizes(cfg: Any) -> Sizes:
        head = (getattr(cfg, outputs), _dirs(cfg) * cfg.hidden_size)
        return {"head.weight": head, **_embedding(cfg)}, {"rnn.": cfg.num_layers}

    return sizes


def _seq2seq(cfg: Any) -> Sizes:
    E, H = cfg.embedding_dim, cfg.hidden_size
    shapes = {
        "tgt_embedding.weight": (cfg.tgt_vocab_size, E),
        "bridge.weight": (H, _dirs(cfg) * H),
    }
    if getattr(cfg, "input_size", None) is None:
        shapes["src_embedding.weight"] = (cfg.vocab_size, E)
    return shapes, {"encoder.": cfg.num_layers}


def _captioner(cfg: Any) -> Sizes:
    H = cfg.hidden_size
    P = H if cfg.condition == "init" else cfg.embedding_dim
    shapes = {
        "features.weight": (P, cfg.feature_size),
        "embedding.weight": (cfg.vocab_size, cfg.embedding_dim),
        "head.weight": (cfg.vocab_size, H),
    }
    return shapes, {"rnn.": cfg.num_layers}


def kinds() -> dict[str, Kind]:
    """Every kind by name."""
    from rnncore import models as m

    table = [
        Kind("char_lm", m.CharLM, m.LMConfig, _lm),
        Kind("classifier", m.SequenceClassifier, m.ClassifierConfig, _encoder("num_classes")),
        Kind("tagger", m.SequenceTagger, m.TaggerConfig, _encoder("num_tags")),
        Kind("seq2seq", m.Seq2Seq, m.Seq2SeqConfig, _seq2seq),
        Kind("captioner", m.Captioner, m.CaptionerConfig, _captioner),
    ]
    return {k.name: k for k in table}


def kind_of(model: Any) -> str:
    """The kind name of ``model`` (an instance of one of the kinds' classes)."""
    for kind in kinds().values():
        if type(model) is kind.model:
            return kind.name
    raise CheckpointError(
        f"a {type(model).__name__} is not a model kind checkpoints know: {sorted(kinds())}"
    )


def check_sizes(where: str, weights: str, kind: Kind, config: Any, tensors: dict[str, Any]) -> None:
    """Raise :class:`CheckpointError` unless the sizes ``config`` implies (``kind``)
    are those of the stored ``tensors``; ``where`` names the config, ``weights``
    the tensor file."""
    shapes, layers = kind.sizes(config)
    for name, shape in shapes.items():
        got = tensors.get(name)
        if got is None or np.shape(got) != shape:
            have = "missing" if got is None else f"{got.dtype} {np.shape(got)}"
            raise CheckpointError(
                f"{weights}: {name} is {have}, the config needs {config.dtype} {shape}"
            )
    for prefix, count in layers.items():  # the count first: it comes from the untrusted config
        stored = sorted(
            k
            for k in tensors
            if k.startswith(f"{prefix}weight_hh_l") and not k.endswith("_reverse")
        )
        if len(stored) != count:  # before a name is made: the count may be huge
            raise CheckpointError(
                f"{weights}: holds {len(stored)} layers under {prefix!r}, the config "
                f"({where}) needs {count} layers"
            )
        expected = sorted(f"{prefix}weight_hh_l{k}" for k in range(count))
        if stored != expected:
            raise CheckpointError(
                f"{weights}: holds the layers {stored}, the config ({where}) needs {expected}"
            )
        H = _state_size(config)  # the columns of weight_hh: the projection size if any
        if any(np.shape(tensors[k])[-1:] != (H,) for k in expected):
            raise CheckpointError(
                f"{weights}: holds {[(k, np.shape(tensors[k])) for k in stored]}, the config "
                f"({where}) needs {count} layers of hidden size {H}"
            )
