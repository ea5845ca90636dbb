"""PyTorch modules that run on rnncore's kernels: change one import, train faster.

``rnncore.torch.LSTM`` (and ``GRU``, ``RNN``, ``LSTMCell``, ``GRUCell``,
``RNNCell``) is a subclass of its ``torch.nn`` namesake with the same
constructor, parameters, state dict, inputs (``PackedSequence``, unbatched,
``batch_first``, ``h0``/``(h0, c0)``) and outputs; its forward and backward are
rnncore's Rust kernels under torch's autograd::

    from rnncore.torch import LSTM        # instead of torch.nn.LSTM
    lstm = LSTM(512, 512, num_layers=2, dropout=0.2)
    output, (h_n, c_n) = lstm(x)          # x (T, N, 512), float32 on the CPU
    output.sum().backward()               # gradients of x, h0, c0 and every parameter

Limits, each refused with a clear error: CPU tensors only (use ``torch.nn``
modules on CUDA or MPS), float32 or float64, one backward
(no double backward), no TorchScript (``torch.compile`` works: it runs these
modules eagerly). As with rnncore's layers, an input, initial state or weight
holding NaN or infinity is refused with ``rnncore.NonFiniteError`` (a
``ValueError``) naming it, where torch would return NaN.

Needs PyTorch: ``pip install rnncore[torch]``.
"""

from __future__ import annotations

try:
    import torch as _torch  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without torch only
    raise ImportError(
        "rnncore.torch needs PyTorch, which is not installed; install it with "
        "`pip install rnncore[torch]` (or `pip install torch`). The NumPy layers in "
        "rnncore.nn need no torch."
    ) from err

from rnncore.torch.cells import GRUCell, LSTMCell, RNNCell
from rnncore.torch.recurrent import GRU, LSTM, RNN

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]
