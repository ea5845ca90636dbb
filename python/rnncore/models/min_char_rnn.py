"""Karpathy's min-char-rnn, built from rnncore parts.

The original (``min-char-rnn.py``, 2015) trains a one-layer tanh RNN with
``hidden_size = 100`` on one-hot characters, ``seq_length = 25`` steps per
chunk, batch 1, the loss summed over the steps, gradients clipped to ``[-5, 5]``
entry by entry and Adagrad at ``learning_rate = 0.1`` with
``p -= lr * g / np.sqrt(mem + 1e-8)``; weights start at ``randn * 0.01``, biases
at zero. Here that is a :class:`~rnncore.models.CharLM` (``cell="rnn_tanh"``,
``embedding_dim=None``), :class:`~rnncore.optim.Adagrad` (``eps_inside_sqrt``)
and :func:`~rnncore.optim.clip_grad_value_`.

On the compiled kernels, :meth:`MinCharRNN.train_step` runs the whole step
(forward, loss, backpropagation, clip, Adagrad) as one Rust call that updates
the model, ``model.grads`` and the optimizer's state in place, with the result
of the step through the layers (to rounding); any other set-up (another
optimizer setting, the NumPy reference backend) takes the layers' path.

Names map as ``Wxh -> rnn.weight_ih_l0 (H, V)``, ``Whh -> rnn.weight_hh_l0 (H, H)``,
``bh -> rnn.bias_ih_l0 (H,)``, ``Why -> head.weight (V, H)``, ``by -> head.bias (V,)``.
The RNN has a second bias, ``rnn.bias_hh_l0``: it stays zero and is left out of
the optimizer, so that ``bias_ih_l0`` follows ``bh`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore import _validate, decode
from rnncore._native import kernels
from rnncore.errors import ArgumentError, NonFiniteError
from rnncore.models.char_lm import CharLM, LMConfig
from rnncore.nn._base import Array
from rnncore.optim import Adagrad, clip_grad_value_

__all__ = ["FROZEN", "MinCharRNN", "fused_train_step", "min_char_rnn"]

FROZEN = ("rnn.bias_hh_l0",)  # held at zero: min-char-rnn has a single hidden bias
# The arrays of the one-call step, in the order it takes them.
FUSED_ORDER = (
    "rnn.weight_ih_l0",
    "rnn.weight_hh_l0",
    "rnn.bias_ih_l0",
    "rnn.bias_hh_l0",
    "head.weight",
    "head.bias",
)


@dataclass
class MinCharRNN:
    """The min-char-rnn training set-up: model, optimizer, chunk length and clip value."""

    model: CharLM  # one-layer tanh RNN on one-hot input, with a linear head
    optimizer: Adagrad  # lr 0.1, eps 1e-8 inside the square root; bias_hh_l0 frozen
    seq_length: int = 25  # T: characters per chunk
    clip: float = 5.0  # every gradient entry is clipped to [-clip, clip]
    fused: bool = True  # the one-call step when the set-up allows it (same result)

    def initial_state(self) -> Array:
        """``hprev`` of zeros, shape ``(1, 1, H)`` (layers, batch, hidden)."""
        return self.model.initial_state(1)

    def train_step(self, inputs: Any, targets: Any, h_prev: Array) -> tuple[float, Array]:
        """One chunk: min-char-rnn's ``lossFun`` followed by its Adagrad update.

        ``inputs`` and ``targets`` are ``(T,)`` character indices (targets are the
        inputs shifted by one), ``h_prev (1, 1, H)`` the state after the previous
        chunk. Returns the loss summed over the ``T`` steps and the next state.
        """
        m = self.model
        x, y = np.asarray(inputs), np.asarray(targets)
        if x.ndim != 1 or y.ndim != 1:
            raise ArgumentError(
                f"inputs and targets must be 1-D (T,), got shapes {x.shape} and {y.shape}"
            )
        fused = None
        if self.fused:
            fused = fused_train_step(m, self.optimizer, x[None, :], y[None, :], h_prev, self.clip)
        if fused is not None:
            loss, h, updated = fused
            if not updated:
                if _validate.first_non_finite(m.grads) is not None:
                    self.optimizer.step(m.grads)  # raises like the layers, naming the gradient
                raise NonFiniteError(  # finite gradients: an update that could overflow
                    f"learning rate {self.optimizer.lr:g}: the Adagrad update could leave a "
                    "weight non-finite; nothing was changed (lower the learning rate)"
                )
            return loss, h
        m.zero_grad()
        loss, h = m.loss(x[None, :], y[None, :], h_prev, reduction="sum")  # batch of one
        m.backward()
        clip_grad_value_(m.grads, self.clip)
        self.optimizer.step(m.grads)
        return loss, h

    def sample(self, h: Array, seed_ix: int, n: int, rng: np.random.Generator) -> list[int]:
        """``n`` indices drawn one by one from the model, starting after ``seed_ix``
        from the state ``h (1, 1, H)``: :func:`rnncore.decode.sample` (min-char-rnn's
        ``np.random.choice`` is the same inverse-CDF draw, one uniform from ``rng``
        per symbol); the model's own generator is not touched."""
        n = _validate.positive_int("n", n)
        if not isinstance(rng, np.random.Generator):
            raise ArgumentError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return decode.sample(self.model, prime_ids=[seed_ix], length=n, rng=rng, state=h)[0]


def fused_arrays(model: Any, optimizer: Any) -> tuple[list, list, list] | None:
    """``(params, grads, sums)``, the live arrays the one-call step updates, or
    None when ``model`` and ``optimizer`` are not plain min-char-rnn on the
    compiled kernels: a one-layer tanh :class:`CharLM` on one-hot input, and
    :class:`Adagrad` with ``eps`` inside the square root, no decay, over every
    parameter but the frozen ``rnn.bias_hh_l0``."""
    c = getattr(model, "config", None)
    if (
        not isinstance(model, CharLM)
        or c is None
        or not getattr(model, "decodes_compiled", False)
        or (c.cell, c.num_layers, c.embedding_dim) != ("rnn_tanh", 1, None)
        or not isinstance(optimizer, Adagrad)
        or (optimizer.lr_decay, optimizer.weight_decay, optimizer.eps_inside_sqrt) != (0, 0, True)
    ):
        return None
    live = dict(model.named_parameters())
    params = [live[n] for n in FUSED_ORDER]
    trained = [(n, p) for n, p in zip(FUSED_ORDER, params) if n not in FROZEN]
    opt_params = optimizer.params
    if len(opt_params) != len(trained) or any(opt_params.get(n) is not p for n, p in trained):
        return None
    sums = optimizer.state["sum"]
    return params, [model.grads[n] for n in FUSED_ORDER], [sums[n] for n, _ in trained]


def fused_train_step(
    model: Any, optimizer: Any, inputs: Any, targets: Any, state: Any, clip: float
) -> tuple[float, Array, bool] | None:
    """One min-char-rnn training step in one Rust call, or None when the set-up
    does not allow it (see :func:`fused_arrays`; also ``inputs`` not one row).

    ``inputs``, ``targets`` ``(1, T)`` ids, ``state`` ``(1, 1, H)`` or None.
    Computes the summed cross-entropy, its gradients, clips every entry to
    ``[-clip, clip]`` and takes the Adagrad step, in place: ``model.grads`` end
    as the clipped gradients. Returns ``(summed loss, next state (1, 1, H),
    updated)``; ``updated`` is False when the loss or a gradient was not finite
    (the gradients are then NaN) or when the update could leave a weight
    non-finite (a learning rate near the float's limit; the gradients are the
    clipped ones): either way nothing changed. Used by
    :meth:`MinCharRNN.train_step` and by the :class:`~rnncore.train.Trainer`.
    """
    x, y = np.asarray(inputs), np.asarray(targets)
    arrays = fused_arrays(model, optimizer)
    if arrays is None or x.ndim != 2 or x.shape[0] != 1 or y.shape != x.shape:
        return None
    h = model._check_state(state, 1)
    h = model.initial_state(1) if h is None else h  # (1, 1, H)
    model._cache = None  # no loss() to backpropagate again
    loss, h_next, updated = kernels().min_char_rnn_step(
        x[0], y[0], np.ascontiguousarray(h[0, 0]), *arrays, optimizer.lr, optimizer.eps, clip
    )
    if updated:
        optimizer.steps += 1
    return loss, h_next, updated


def min_char_rnn(
    vocab_size: int,
    hidden_size: int = 100,
    seq_length: int = 25,
    learning_rate: float = 0.1,
    clip: float = 5.0,
    *,
    dtype: str = "float64",
    seed: int | None = 0,
) -> MinCharRNN:
    """The min-char-rnn set-up for ``vocab_size`` characters (its defaults are the original's).

    Weights are drawn from ``N(0, 0.01^2)`` in the original's order (Wxh, Whh, Why)
    from the model's generator; biases are zero. float64 like the NumPy original.
    """
    seq_length = _validate.positive_int("seq_length", seq_length)
    config = LMConfig(
        vocab_size=vocab_size,
        cell="rnn_tanh",
        hidden_size=hidden_size,
        num_layers=1,
        dropout=0.0,
        embedding_dim=None,
        dtype=dtype,
        seed=seed,
    )
    model = CharLM(config)
    rng = model.rng
    weights = {}
    for name in ("rnn.weight_ih_l0", "rnn.weight_hh_l0", "head.weight"):  # Wxh, Whh, Why
        shape = dict(model.named_parameters())[name].shape
        weights[name] = rng.standard_normal(shape) * 0.01
    for name, p in model.named_parameters():
        weights.setdefault(name, np.zeros(p.shape))  # bh, by (and the frozen bias_hh)
    model.load_state_dict(weights)
    params = {k: p for k, p in model.named_parameters() if k not in FROZEN}
    optimizer = Adagrad(params, lr=learning_rate, eps=1e-8, eps_inside_sqrt=True)
    return MinCharRNN(model, optimizer, seq_length, float(clip))
