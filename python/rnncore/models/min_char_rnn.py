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

from rnncore import _validate
from rnncore.errors import ArgumentError
from rnncore.models.char_lm import CharLM, LMConfig
from rnncore.nn._base import Array
from rnncore.optim import Adagrad, clip_grad_value_

__all__ = ["FROZEN", "MinCharRNN", "min_char_rnn"]

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
        fused = self._fused_arrays()
        if fused is not None:
            return self._fused_step(x, y, h_prev, *fused)
        m.zero_grad()
        loss, h = m.loss(x[None, :], y[None, :], h_prev, reduction="sum")  # batch of one
        m.backward()
        clip_grad_value_(m.grads, self.clip)
        self.optimizer.step(m.grads)
        return loss, h

    def _fused_arrays(self) -> tuple[list[Array], list[Array], list[Array]] | None:
        """``(params, grads, sums)`` for the one-call step, or None when this set-up
        is not plain min-char-rnn on the compiled kernels (then the step runs
        through the layers, the optimizer and the clip, with the same result)."""
        m, opt = self.model, self.optimizer
        c = m.config
        if (
            not getattr(m, "decodes_compiled", False)
            or (c.cell, c.num_layers, c.embedding_dim) != ("rnn_tanh", 1, None)
            or not isinstance(opt, Adagrad)
            or (opt.lr_decay, opt.weight_decay, opt.eps_inside_sqrt) != (0, 0, True)
        ):
            return None
        layers = {"rnn": m.rnn._params, "head": m.head._params}  # the live arrays
        params = [layers[n.split(".")[0]][n.split(".")[1]] for n in FUSED_ORDER]
        trained = [(n, p) for n, p in zip(FUSED_ORDER, params) if n not in FROZEN]
        if len(opt.params) != len(trained) or any(opt.params.get(n) is not p for n, p in trained):
            return None
        return (
            params,
            [m.grads[n] for n in FUSED_ORDER],
            [opt.state["sum"][n] for n, _ in trained],
        )

    def _fused_step(
        self, x: Array, y: Array, h_prev: Array, params: list, grads: list, sums: list
    ) -> tuple[float, Array]:
        """:meth:`train_step` in one Rust call: forward, loss, backward, clip and the
        Adagrad update, in place (``model.grads`` ends as the clipped gradients)."""
        from rnncore import _rnncore

        m, opt = self.model, self.optimizer
        h = m._check_state(h_prev, 1)
        h = m.initial_state(1) if h is None else h  # (1, 1, H)
        m._cache = None  # no loss() to backpropagate again
        loss, h_next, updated = _rnncore.min_char_rnn_step(
            x, y, np.ascontiguousarray(h[0, 0]), params, grads, sums, opt.lr, opt.eps, self.clip
        )
        if not updated:
            opt.step(m.grads)  # non-finite gradients: raises as the unfused step would
        opt.steps += 1
        return loss, h_next

    def sample(self, h: Array, seed_ix: int, n: int, rng: np.random.Generator) -> list[int]:
        """``n`` indices drawn one by one from the model, starting after ``seed_ix``.

        ``rng`` draws the characters (min-char-rnn uses ``np.random.choice``); the
        model's own generator is not touched.
        """
        n = _validate.positive_int("n", n)
        if not isinstance(rng, np.random.Generator):
            raise ArgumentError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        ix, out = int(seed_ix), []
        for _ in range(n):
            log_p, h = self.model.step(np.array([ix]), h)  # (1, V)
            p = np.exp(log_p[0].astype(np.float64))
            ix = int(rng.choice(p.size, p=p / p.sum()))
            out.append(ix)
        return out


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
