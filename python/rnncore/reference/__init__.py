"""NumPy reference of the rnncore kernels: the float64 oracle they are tested against.

This package computes exactly what the compiled kernels in :mod:`rnncore._rnncore`
compute, with the same functions, argument names and return values, so a test can
run ``impl.forward(...)`` and ``impl.backward(...)`` for ``impl`` in (reference,
compiled) and compare. It is written to be read, not to be fast: every step is a
few lines of NumPy, always in float64 whatever dtype comes in, and its own tests
check every gradient against central finite differences.

- :mod:`.cells`: one time step of each cell (``rnn_tanh``, ``rnn_relu``, ``lstm``,
  ``gru``, with PyTorch's equations and gate order; ``gru_reset_before``, the GRU
  with the reset gate applied before ``W_hn``; ``lstm_cifg``, the LSTM with a coupled
  input-forget gate; ``lstm_peephole``, the LSTM with peephole connections), each
  backward right under its forward.
- :mod:`.mut_cells`: one step of the MUT1, MUT2 and MUT3 cells (Jozefowicz et al.
  2015), which take ``x`` itself and weights with fewer rows than ``G*H``.
- :mod:`.sequence`: :func:`forward` and :func:`backward` over a whole sequence, with
  variable lengths and the reverse direction (PyTorch's packed-sequence semantics).
- :mod:`.attention`: Bahdanau (additive) and Luong (general, dot) attention over
  encoder outputs, with a source mask from lengths.
- :mod:`.decoder`: the attention decoder with input feeding, teacher-forced or with
  scheduled sampling (:func:`sampling_flips` draws its coin flips), forward
  and backpropagation through time.

Conventions: ``T`` steps, ``N`` batch, ``D`` input size, ``H`` hidden size, ``G``
gates; ``x (T, N, D)``, ``h0 (N, H)``, ``w_ih (G*H, D)``, ``w_hh (G*H, H)``,
biases ``(G*H,)``.
"""

from __future__ import annotations

from rnncore.reference.attention import attention_backward, attention_forward
from rnncore.reference.cells import (
    gate_count,
    gru_reset_before_step,
    gru_reset_before_step_backward,
    gru_step,
    gru_step_backward,
    lstm_cifg_step,
    lstm_cifg_step_backward,
    lstm_peephole_step,
    lstm_peephole_step_backward,
    lstm_step,
    lstm_step_backward,
    rnn_step,
    rnn_step_backward,
)
from rnncore.reference.decoder import (
    decoder_backward,
    decoder_forward,
    decoder_keys,
    sampling_flips,
)
from rnncore.reference.mut_cells import mut_step, mut_step_backward
from rnncore.reference.sequence import backward, forward

__all__ = [
    "attention_backward",
    "attention_forward",
    "backward",
    "decoder_backward",
    "decoder_forward",
    "decoder_keys",
    "forward",
    "gate_count",
    "gru_reset_before_step",
    "gru_reset_before_step_backward",
    "gru_step",
    "gru_step_backward",
    "lstm_cifg_step",
    "lstm_cifg_step_backward",
    "lstm_peephole_step",
    "lstm_peephole_step_backward",
    "lstm_step",
    "lstm_step_backward",
    "mut_step",
    "mut_step_backward",
    "rnn_step",
    "rnn_step_backward",
    "sampling_flips",
]
