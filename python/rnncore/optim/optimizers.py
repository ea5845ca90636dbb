"""SGD, Adagrad, RMSprop, Adam and AdamW with torch.optim's update formulas.

Each ``_update`` is the single-tensor code path of its torch namesake written in
NumPy, operation for operation, on a parameter ``p`` (updated in place), its
gradient ``g`` and its buffers; hyperparameters have torch's names and defaults.
Step ``t`` counts from 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnncore import _native, _validate
from rnncore.errors import ArgumentError
from rnncore.optim._base import Array, Optimizer, fraction, lerp_, non_negative


class SGD(Optimizer):
    r"""Stochastic gradient descent with optional momentum, as :class:`torch.optim.SGD`.

    .. math::
        g \leftarrow g + \lambda p;\quad
        b \leftarrow \begin{cases} g & t = 1 \\ \mu b + (1 - \tau) g & t > 1 \end{cases};\quad
        p \leftarrow p - \eta\,(g + \mu b \text{ if nesterov else } b)

    (``b`` only with momentum ``mu > 0``; ``lambda`` = weight_decay, ``tau`` = dampening.)
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )

    def _check_hyperparameters(self, **hp: Any) -> dict[str, Any]:
        out = {
            "momentum": fraction("momentum", hp["momentum"]),
            "dampening": non_negative("dampening", hp["dampening"]),
            "weight_decay": non_negative("weight_decay", hp["weight_decay"]),
            "nesterov": _validate.flag("nesterov", hp["nesterov"]),
        }
        if out["nesterov"] and (out["momentum"] == 0 or out["dampening"] != 0):
            raise ArgumentError("nesterov needs momentum > 0 and dampening = 0")
        return out

    def _buffer_names(self) -> tuple[str, ...]:
        return ("momentum_buffer",) if self.momentum > 0 else ()

    def _update(self, name: str, p: Array, g: Array) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        if self.momentum > 0:
            buf = self.state["momentum_buffer"][name]
            if self.steps == 1:
                np.copyto(buf, g)
            else:
                buf *= self.momentum
                buf += (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p -= self.lr * g


class Adagrad(Optimizer):
    r"""Adagrad, as :class:`torch.optim.Adagrad`.

    .. math::
        g \leftarrow g + \lambda p;\quad s \leftarrow s + g^2;\quad
        p \leftarrow p - \frac{\eta}{1 + (t - 1)\,\delta}\,\frac{g}{\sqrt{s} + \epsilon}

    (``lambda`` = weight_decay, ``delta`` = lr_decay, ``s`` starts at
    ``initial_accumulator_value``.) With ``eps_inside_sqrt=True`` the denominator
    is ``sqrt(s + eps)`` instead: min-char-rnn's ``mem += g*g;
    p -= lr * g / np.sqrt(mem + 1e-8)``.
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        eps_inside_sqrt: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            eps_inside_sqrt=eps_inside_sqrt,
        )
        for s in self.state["sum"].values():
            s.fill(self.initial_accumulator_value)

    def _check_hyperparameters(self, **hp: Any) -> dict[str, Any]:
        return {
            "lr_decay": non_negative("lr_decay", hp["lr_decay"]),
            "weight_decay": non_negative("weight_decay", hp["weight_decay"]),
            "initial_accumulator_value": non_negative(
                "initial_accumulator_value", hp["initial_accumulator_value"]
            ),
            "eps": non_negative("eps", hp["eps"]),
            "eps_inside_sqrt": _validate.flag("eps_inside_sqrt", hp["eps_inside_sqrt"]),
        }

    def _buffer_names(self) -> tuple[str, ...]:
        return ("sum",)

    def _update(self, name: str, p: Array, g: Array) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        clr = self.lr / (1 + (self.steps - 1) * self.lr_decay)
        s = self.state["sum"][name]
        s += g * g
        std = np.sqrt(s + self.eps) if self.eps_inside_sqrt else np.sqrt(s) + self.eps
        p -= clr * g / std


class RMSprop(Optimizer):
    r"""RMSprop, as :class:`torch.optim.RMSprop`.

    .. math::
        g \leftarrow g + \lambda p;\quad v \leftarrow \alpha v + (1 - \alpha) g^2;\quad
        d = \sqrt{v - \bar g^2} + \epsilon \text{ (centered) or } \sqrt{v} + \epsilon

    then ``p -= lr * g / d``, or with momentum ``mu > 0``: ``b = mu * b + g / d;
    p -= lr * b``. Centered keeps ``g_bar``, a running mean of ``g`` (rate ``alpha``).
    """

    def __init__(
        self,
        params: Mapping[str, Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )

    def _check_hyperparameters(self, **hp: Any) -> dict[str, Any]:
        return {
            "alpha": fraction("alpha", hp["alpha"]),
            "eps": non_negative("eps", hp["eps"]),
            "weight_decay": non_negative("weight_decay", hp["weight_decay"]),
            "momentum": fraction("momentum", hp["momentum"]),
            "centered": _validate.flag("centered", hp["centered"]),
        }

    def _buffer_names(self) -> tuple[str, ...]:
        names = ("square_avg",)
        names += ("momentum_buffer",) if self.momentum > 0 else ()
        return names + (("grad_avg",) if self.centered else ())

    def _update(self, name: str, p: Array, g: Array) -> None:
        if self.weight_decay != 0:
            g = g + self.weight_decay * p
        v = self.state["square_avg"][name]
        v *= self.alpha
        v += (1 - self.alpha) * (g * g)
        if self.centered:
            g_bar = self.state["grad_avg"][name]
            lerp_(g_bar, g, 1 - self.alpha)
            avg = np.sqrt(v - g_bar * g_bar)
        else:
            avg = np.sqrt(v)
        avg += self.eps
        if self.momentum > 0:
            buf = self.state["momentum_buffer"][name]
            buf *= self.momentum
            buf += g / avg
            p -= self.lr * buf
        else:
            p -= self.lr * g / avg


class Adam(Optimizer):
    r"""Adam, as :class:`torch.optim.Adam` (``amsgrad=False``).

    .. math::
        g \leftarrow g + \lambda p;\quad m \leftarrow m + (1 - \beta_1)(g - m);\quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2;\quad
        p \leftarrow p - \frac{\eta}{1 - \beta_1^t}
            \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^t} + \epsilon}

    ``weight_decay`` (``lambda``) is added to the gradient (L2 penalty); for
    decoupled decay use :class:`AdamW`.
    """

    _decoupled = False

    def __init__(
        self,
        params: Mapping[str, Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _check_hyperparameters(self, **hp: Any) -> dict[str, Any]:
        betas = hp["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ArgumentError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        return {
            "betas": (fraction("betas[0]", betas[0]), fraction("betas[1]", betas[1])),
            "eps": non_negative("eps", hp["eps"]),
            "weight_decay": non_negative("weight_decay", hp["weight_decay"]),
        }

    def _buffer_names(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq")

    def step(self, grads: Mapping[str, Any]) -> None:
        """As :meth:`Optimizer.step`. Every parameter is updated in one compiled
        call (``rust/src/optim.rs``: one pass per element, in parallel) with
        bitwise the result of :meth:`_update`, which runs instead when the
        extension is not built or a parameter is not an array of its own
        (a view, non-contiguous, read-only, or sharing memory with a gradient)."""
        checked = self._check_grads(grads)
        self.steps += 1
        if not self._step_fused(checked):
            for name, p in self.params.items():
                self._update(name, p, checked[name])

    def _step_fused(self, grads: dict[str, Array]) -> bool:
        """The step in one kernel call; False (nothing done) where it cannot run."""
        kernels = _native.kernels_if_built()
        if kernels is None:
            return False
        names = list(self.params)
        params = [self.params[n] for n in names]
        m = [self.state["exp_avg"][n] for n in names]
        v = [self.state["exp_avg_sq"][n] for n in names]
        g = [grads[n] for n in names]
        owned = all(a.flags.owndata and _native.writable_in_place(a) for a in (*params, *m, *v))
        if not owned or len({id(a) for a in (*params, *m, *v)}) != 3 * len(params):
            return False
        if {p.dtype for p in params} not in ({np.dtype(np.float32)}, {np.dtype(np.float64)}):
            return False  # one call takes one float dtype
        if any(np.may_share_memory(gi, a) for gi in g for a in (*params, *m, *v)):
            return False
        beta1, beta2 = self.betas
        step_size, bias_correction2_sqrt = self._corrections()
        kernels.adam_step(
            params,
            g,
            m,
            v,
            step_size=step_size,
            bias_correction2_sqrt=bias_correction2_sqrt,
            lr=self.lr,
            beta1=beta1,
            beta2=beta2,
            eps=self.eps,
            weight_decay=self.weight_decay,
            decoupled=self._decoupled,
        )
        return True

    def _corrections(self) -> tuple[float, float]:
        """This step's ``lr / (1 - beta1**t)`` and ``sqrt(1 - beta2**t)``."""
        beta1, beta2 = self.betas
        return self.lr / (1 - beta1**self.steps), math.sqrt(1 - beta2**self.steps)

    def _update(self, name: str, p: Array, g: Array) -> None:
        beta1, beta2 = self.betas
        if self.weight_decay != 0:
            if self._decoupled:
                p *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p
        m, v = self.state["exp_avg"][name], self.state["exp_avg_sq"][name]
        lerp_(m, g, 1 - beta1)
        v *= beta2
        v += (1 - beta2) * (g * g)
        step_size, bias_correction2_sqrt = self._corrections()
        denom = np.sqrt(v) / bias_correction2_sqrt
        denom += self.eps
        p -= step_size * m / denom


class AdamW(Adam):
    r"""Adam with decoupled weight decay, as :class:`torch.optim.AdamW`.

    Before the Adam step, ``p <- p * (1 - lr * weight_decay)``; the gradient itself
    is not changed. Torch's default ``weight_decay`` is 0.01.
    """

    _decoupled = True

    def __init__(
        self,
        params: Mapping[str, Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)
