"""Recurrent layers and cells on NumPy arrays, drop-ins for their torch.nn namesakes.

``RNN``, ``LSTM`` and ``GRU`` run whole (optionally stacked, bidirectional,
variable-length) sequences; ``RNNCell``, ``LSTMCell`` and ``GRUCell`` run one step.
Parameters have PyTorch's names, shapes and gate layout, so state dicts move both
ways unchanged. Every layer and cell has an explicit ``backward`` that adds the
parameter gradients to ``grads``.
"""

from __future__ import annotations

from rnncore.nn.cells import GRUCell, LSTMCell, RNNCell
from rnncore.nn.recurrent import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]
