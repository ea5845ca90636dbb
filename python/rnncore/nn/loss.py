"""The softmax cross-entropy as a layer: :func:`~rnncore.nn.functional.softmax_cross_entropy`
with the gradient kept for :meth:`SoftmaxCrossEntropy.backward`."""

from __future__ import annotations

from typing import Any

from rnncore import _validate
from rnncore._threads import CallGuard
from rnncore.errors import StateError
from rnncore.nn._base import Array
from rnncore.nn.functional import REDUCTIONS, softmax_cross_entropy


class SoftmaxCrossEntropy(CallGuard):
    """Like :class:`torch.nn.CrossEntropyLoss` on ``(M, V)`` logits and ``(M,)`` targets.

    ``loss = ce(logits, targets, mask)`` returns a float; ``ce.backward()`` then
    returns ``dlogits (M, V)`` (times ``d_loss``, default 1). The gradient is
    computed with the loss, in the same pass over the logits.

    Args:
        ignore_index: a target value whose positions are not counted, or None.
        reduction: ``"mean"`` over counted positions or ``"sum"``.
    """

    def __init__(self, ignore_index: int | None = None, reduction: str = "mean") -> None:
        self.ignore_index = ignore_index
        self.reduction = _validate.choice("reduction", reduction, REDUCTIONS)
        self._dlogits: Array | None = None  # (M, V) gradient of the most recent call

    def __repr__(self) -> str:
        return (
            f"SoftmaxCrossEntropy(ignore_index={self.ignore_index}, reduction={self.reduction!r})"
        )

    def __call__(self, logits: Any, targets: Any, mask: Any = None) -> float:
        return self.forward(logits, targets, mask)

    def forward(self, logits: Any, targets: Any, mask: Any = None) -> float:
        """The loss of ``logits (M, V)`` against ``targets (M,)``; see ``softmax_cross_entropy``."""
        loss, self._dlogits = softmax_cross_entropy(
            logits,
            targets,
            mask=mask,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
        )
        return loss

    def backward(self, d_loss: float = 1.0) -> Array:
        """``dlogits (M, V)`` of the most recent call, scaled by ``d_loss``."""
        if self._dlogits is None:
            raise StateError("SoftmaxCrossEntropy.backward() needs a forward() call first")
        if d_loss == 1.0:
            return self._dlogits.copy()
        return self._dlogits * self._dlogits.dtype.type(d_loss)
