"""Recurrent layers and cells on NumPy arrays, drop-ins for their torch.nn namesakes.

``RNN``, ``LSTM`` and ``GRU`` (and ``MUT1``, ``MUT2``, ``MUT3``, the architectures of
Jozefowicz et al. 2015) run whole (optionally stacked, bidirectional,
variable-length) sequences; ``RNNCell``, ``LSTMCell``, ``GRUCell`` and ``MUT1Cell``, ...
``MUT3Cell`` run one step.
Parameters have PyTorch's names, shapes and gate layout, so state dicts move both
ways unchanged. Every layer and cell has an explicit ``backward`` that adds the
parameter gradients to ``grads``.

``Embedding``, ``Linear`` and ``Dropout`` follow the same conventions, and
``SoftmaxCrossEntropy`` (or :func:`rnncore.nn.functional.softmax_cross_entropy`)
returns a loss together with its gradient; ``AttentionDecoder`` runs a cell with
attention over encoder outputs over a whole target sequence; :mod:`rnncore.nn.init`
holds the orthogonal, identity (IRNN) and forget-bias initialisations; models in
:mod:`rnncore.models` are
built from these pieces.
"""

from __future__ import annotations

from rnncore.nn import functional, init
from rnncore.nn.attention import AttentionDecoder, ScheduledSampling
from rnncore.nn.cells import GRUCell, LSTMCell, RNNCell
from rnncore.nn.dropout import Dropout
from rnncore.nn.embedding import Embedding
from rnncore.nn.linear import Linear
from rnncore.nn.loss import SoftmaxCrossEntropy
from rnncore.nn.mut import MUT1, MUT2, MUT3, MUT1Cell, MUT2Cell, MUT3Cell
from rnncore.nn.recurrent import GRU, LSTM, RNN

__all__ = [
    "GRU",
    "LSTM",
    "MUT1",
    "MUT2",
    "MUT3",
    "RNN",
    "AttentionDecoder",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "Linear",
    "MUT1Cell",
    "MUT2Cell",
    "MUT3Cell",
    "RNNCell",
    "ScheduledSampling",
    "SoftmaxCrossEntropy",
    "functional",
    "init",
]
