"""Optimizers, gradient clipping, learning-rate schedules and a non-finite guard.

Optimizers update a dict name -> NumPy array in place from a dict of gradients
with the same names, with the update formulas of their torch.optim namesakes::

    opt = Adam(dict(model.named_parameters()), lr=2e-3)
    guard = NonFiniteGuard()
    loss, state = model.loss(x, y, state)
    model.zero_grad()
    model.backward()
    clip_grad_norm_(model.grads, 5.0)
    if guard.check(loss, model.grads):
        opt.step(model.grads)

``opt.state_dict()`` returns ``(tensors, meta)``, arrays and JSON, from which
``opt.load_state_dict(tensors, meta)`` restores the optimizer exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rnncore.errors import ArgumentError
from rnncore.optim._base import Optimizer
from rnncore.optim.clip import clip_grad_norm_, clip_grad_value_, global_norm
from rnncore.optim.guard import NonFiniteGuard
from rnncore.optim.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from rnncore.optim.schedule import Cosine, SamplingSchedule, StepDecay

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "Cosine",
    "NonFiniteGuard",
    "Optimizer",
    "RMSprop",
    "SamplingSchedule",
    "StepDecay",
    "clip_grad_norm_",
    "clip_grad_value_",
    "create",
    "global_norm",
]

OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adam": Adam,
    "adamw": AdamW,
}


def create(name: str, params: Mapping[str, Any], lr: float, **kwargs: Any) -> Optimizer:
    """The optimizer called ``name`` (case-insensitive key of :data:`OPTIMIZERS`).

    ``create("adam", dict(model.named_parameters()), 2e-3, betas=(0.9, 0.99))``;
    ``kwargs`` are the class's keyword arguments.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in OPTIMIZERS:
        options = ", ".join(repr(k) for k in OPTIMIZERS)
        raise ArgumentError(f"optimizer name must be one of {options}, got {name!r}")
    try:
        return OPTIMIZERS[key](params, lr, **kwargs)
    except TypeError as err:
        if "unexpected keyword" not in str(err):
            raise
        raise ArgumentError(f"{OPTIMIZERS[key].__name__}: {err}") from err
