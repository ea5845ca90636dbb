"""Compiled kernels of rnncore (Rust). Private: use :mod:`rnncore.nn`.

Conventions (PyTorch's): ``T`` steps, ``N`` batch, ``D`` input size, ``H`` hidden
size, ``G`` gates (``rnn_*`` 1, ``lstm`` 4 in order i,f,g,o, ``gru`` and
``gru_reset_before`` 3 in order r,z,n, ``lstm_cifg`` 3 in order f,g,o,
``lstm_peephole`` 4 in order i,f,g,o; ``mut1``, ``mut2``, ``mut3`` 3 in order z,r,n,
with fewer weight rows: MUT1 ``w_ih (2H, D)`` = W_xz|W_xr, ``w_hh (2H, H)`` =
W_hr|W_hh; MUT2 ``w_ih (2H, D)`` = W_xz|W_xh, ``w_hh (3H, H)`` = W_hz|W_hr|W_hh;
MUT3 ``w_ih (3H, D)`` = W_xz|W_xr|W_xh, ``w_hh (3H, H)`` = W_hz|W_hr|W_hh; each bias
has its matrix's rows, and MUT1 and MUT2 need ``D == H``). Every float array of one
call has the same dtype, float32 or float64: that of its input weights (``w_ih``;
``weight_ih_l0`` of the first layer), which every other array must match. Arrays that are not
C-contiguous are copied; inputs are never modified.
"""

from typing import Any, Literal, final, overload

import numpy as np
from numpy.typing import NDArray

_Mode = Literal[
    "rnn_tanh",
    "rnn_relu",
    "lstm",
    "gru",
    "gru_reset_before",
    "lstm_cifg",
    "lstm_peephole",
    "lstm_ln",
    "gru_ln",
    "mut1",
    "mut2",
    "mut3",
]
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

__all__ = [
    "AttentionDecoderCache",
    "Decoder",
    "DecoderPrepared",
    "__version__",
    "adam_step",
    "backward",
    "clear_weight_cache",
    "cross_entropy",
    "decoder_backward",
    "decoder_forward",
    "decoder_keys",
    "decoder_prepare",
    "embedding_backward",
    "forward",
    "gate_count",
    "get_num_threads",
    "matmul",
    "min_char_rnn_step",
    "set_num_threads",
    "set_weight_cache_limit",
    "simd_level",
    "sum_squares",
    "weight_cache_stats",
]

__version__: str

def set_num_threads(n: int | None = None) -> None:
    """Use ``n >= 1`` threads for the kernels; ``None`` restores the default
    (``RNNCORE_NUM_THREADS``, else every core). Results are bitwise the same at
    any thread count."""

def get_num_threads() -> int:
    """The number of threads the kernels use."""

def weight_cache_stats() -> tuple[int, int, int, int, int]:
    """The cache of packed weights: ``(entries, bytes, limit, hits, misses)``."""

def set_weight_cache_limit(bytes: int) -> None:
    """Let the cache of packed weights hold ``bytes`` (0: nothing), dropping the
    least recently used entries to fit."""

def clear_weight_cache() -> None:
    """Empty the cache of packed weights and reset its counters."""

def simd_level() -> str:
    """The SIMD instruction set the pointwise kernels use here: ``"avx512"``,
    ``"avx2+fma"`` or ``"scalar"``."""

def gate_count(mode: _Mode) -> int:
    """Number of gates ``G`` of a cell mode (1, 4 or 3)."""

def forward(
    mode: _Mode,
    x: _FloatArray,
    h0: _FloatArray,
    c0: _FloatArray | None,
    w_ih: _FloatArray,
    w_hh: _FloatArray,
    b_ih: _FloatArray | None,
    b_hh: _FloatArray | None,
    lengths: NDArray[np.integer] | None = None,
    reverse: bool = False,
    *,
    w_peep: _FloatArray | None = None,
    w_hr: _FloatArray | None = None,
    w_ln: _FloatArray | None = None,
    b_ln: _FloatArray | None = None,
    recurrent_mask: _FloatArray | None = None,
    zoneout_h: _FloatArray | None = None,
    zoneout_c: _FloatArray | None = None,
    keep: bool = True,
) -> tuple[_FloatArray, _FloatArray, _FloatArray | None, dict[str, _FloatArray] | None]:
    """One direction of one recurrent layer over a whole sequence.

    Args:
        x: ``(T, N, D)`` inputs.
        h0: ``(N, H)`` initial hidden state.
        c0: ``(N, H)`` initial cell state for ``lstm``, ``lstm_cifg`` and
            ``lstm_peephole``; ``None`` otherwise.
        w_ih: ``(G*H, D)`` input weights, gates stacked as in PyTorch.
        w_hh: ``(G*H, H)`` recurrent weights.
        b_ih, b_hh: ``(G*H,)`` biases, or both ``None`` for a layer without bias.
        lengths: ``(N,)`` integers in ``1..T``, or ``None`` (every sequence has T
            steps). Need not be sorted.
        reverse: run from each sequence's own last step down to step 0.
        w_peep: ``(3*H,)`` peephole weights ``p_i|p_f|p_o`` for ``lstm_peephole``
            (``i = sigmoid(a_i + p_i * c)``, ``f = sigmoid(a_f + p_f * c)``,
            ``o = sigmoid(a_o + p_o * c')``), required there and ``None`` for every
            other mode.
        w_hr: ``(P, H)`` projection of an LSTM with projections (``lstm`` only,
            ``1 <= P < H``, torch's ``weight_hr_l0``): each step's hidden state is
            ``h = W_hr (o * tanh(c))``, so ``h0``, ``h_n`` and the output have ``P``
            features, ``w_hh`` is ``(4*H, P)`` and ``c0``, ``c_n`` keep ``H``.
            ``None`` (default) for no projection.
        w_ln, b_ln: gains and shifts of the layer normalisations, ``(9*H,)`` for
            ``lstm_ln`` (input term ``4H``, recurrent term ``4H``, cell state
            ``H``) and ``(6*H,)`` for ``gru_ln`` (``3H`` each term), required there
            and ``None`` for every other mode; the cache then holds ``ln_x``,
            ``ln_h (T, N, G*H)``, ``ln_c (T, N, H)`` (lstm_ln; the normalised
            values) and ``ln_rstd (3, T, N)``.
        recurrent_mask: ``(N, H)`` variational dropout mask of the state the
            recurrent products read (``h * mask``; the state a GRU carries is not
            masked), or ``None``. Not for the MUTs.
        zoneout_h: ``(T, N, H)`` zoneout of the hidden state, ``h_t = z * h_{t-1}
            + (1 - z) * h~_t``, values in ``[0, 1]``, or ``None``.
        zoneout_c: ``(T, N, H)`` the same for the cell state (the lstm modes); the
            cache then holds ``cells_new (T, N, H)``, the cell's own update.
        keep: ``False`` for a call no backward follows (inference): the same
            results, bit for bit, from buffers one step deep that each step
            reuses, and ``cache`` is ``None``.

    Returns:
        ``(output, h_n, c_n, cache)``: output ``(T, N, H)`` (zero at steps
        ``t >= lengths[n]``), final hidden state ``(N, H)`` (each sequence's state
        after its own last step), final cell state ``(N, H)`` or ``None``, and the
        cache that :func:`backward` needs (``gates (T, N, G*H)`` holds the activated
        gates, ``states (T+1, N, H)`` the hidden states, plus ``cells (T+1, N, H)``
        for the lstm modes, ``hn (T, N, H)`` = ``W_hn h + b_hn`` for gru and
        ``r * h`` for gru_reset_before and the MUTs; with ``w_hr``, ``states`` is
        ``(T+1, N, P)`` and ``proj (T, N, H)`` holds ``o * tanh(c)``).
    """

def backward(
    mode: _Mode,
    x: _FloatArray,
    w_ih: _FloatArray,
    w_hh: _FloatArray,
    b_ih: _FloatArray | None,
    b_hh: _FloatArray | None,
    lengths: NDArray[np.integer] | None,
    reverse: bool,
    cache: dict[str, _FloatArray],
    d_output: _FloatArray,
    d_h_n: _FloatArray | None = None,
    d_c_n: _FloatArray | None = None,
    *,
    w_peep: _FloatArray | None = None,
    w_hr: _FloatArray | None = None,
    w_ln: _FloatArray | None = None,
    b_ln: _FloatArray | None = None,
    recurrent_mask: _FloatArray | None = None,
    zoneout_h: _FloatArray | None = None,
    zoneout_c: _FloatArray | None = None,
) -> (
    tuple[
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray | None,
    ]
    | tuple[
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray | None,
        _FloatArray,
    ]
    | tuple[
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray,
        _FloatArray,
        _FloatArray | None,
        _FloatArray | None,
        _FloatArray,
        _FloatArray,
    ]
):
    """Backpropagation through time for one :func:`forward` call.

    Args:
        x, w_ih, w_hh, b_ih, b_hh, lengths, reverse, w_peep, w_hr, w_ln, b_ln,
        recurrent_mask, zoneout_h, zoneout_c: as given to :func:`forward`.
        cache: the cache :func:`forward` returned.
        d_output: ``(T, N, H)`` gradient of the output (ignored at padded steps).
        d_h_n: ``(N, H)`` gradient of the final hidden state, or ``None`` (zero).
        d_c_n: ``(N, H)`` gradient of the final cell state (the lstm modes), or
            ``None``.

    Returns:
        ``(dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh)`` with the shapes of
        ``x, h0, c0, w_ih, w_hh, b_ih, b_hh``; ``dc0`` is ``None`` unless an lstm
        mode, the bias gradients are ``None`` when the layer has no bias. For
        ``lstm_peephole`` (and only there) an eighth entry follows, ``dw_peep``
        ``(3*H,)``; ``dw_hr`` ``(P, H)`` when ``w_hr`` is given (``d_output`` is
        then ``(T, N, P)``, ``d_h_n`` and ``dh0`` ``(N, P)``); for ``lstm_ln`` and
        ``gru_ln`` an eighth and a ninth, ``dw_ln`` and ``db_ln``; the other
        modes' 7-tuple is unchanged.
    """

def min_char_rnn_step(
    inputs: NDArray[np.integer],
    targets: NDArray[np.integer],
    h0: _FloatArray,
    params: list[_FloatArray],
    grads: list[_FloatArray],
    sums: list[_FloatArray],
    lr: float,
    eps: float,
    clip: float,
) -> tuple[float, _FloatArray, bool]:
    """One min-char-rnn training step (tanh RNN on one-hot symbols, linear head,
    summed softmax cross-entropy, BPTT, gradients clipped to ``[-clip, clip]``,
    Adagrad ``s += g*g; p -= lr * g / sqrt(s + eps)``), in place.

    Args:
        inputs, targets: ``(T,)`` ids in ``0..V-1``, ``T >= 1``.
        h0: ``(H,)`` the state before the chunk.
        params: ``[weight_ih (H, V), weight_hh (H, H), bias_ih (H,), bias_hh (H,),
            head.weight (V, H), head.bias (V,)]``, updated in place except bias_hh.
        grads: six arrays of the same shapes: overwritten with the clipped
            gradients (NaN when the step was not finite).
        sums: Adagrad's accumulators of the five updated arrays (all but bias_hh).

    Every array written must be C-contiguous, writeable and passed once.

    Returns:
        ``(loss, h (1, 1, H), updated)``: the summed loss, the last state, and
        False when the loss or a gradient was not finite (then nothing but
        ``grads`` was written).
    """

_Layer = tuple[_FloatArray, _FloatArray, _FloatArray | None, _FloatArray | None]

@final
class Decoder:
    """A stacked recurrent language model (embedding or one-hot input, ``L``
    layers, linear readout) checked and packed once for decoding.

    Args:
        mode: the cell of every layer.
        layers: ``L`` tuples ``(weight_ih, weight_hh, bias_ih, bias_hh)``:
            ``(G*H, K)``, ``(G*H, H)``, ``(G*H,)`` or None each; ``K`` is ``E``
            (or ``V`` without an embedding) for layer 0 and ``H`` above.
        head_weight: ``(V, H)`` readout weights.
        head_bias: ``(V,)`` or None.
        embedding: ``(V, E)`` input embedding; None: one-hot inputs (``K = V``).
        weights: how the weight matrices (``W_ih``, ``W_hh``, readout) are kept:
            ``"full"`` (the arrays' float type), ``"bfloat16"``, or ``"int8"``
            with one scale per row; widened to the float type in registers.

    States are ``h (L, N, H)`` and, for lstm, ``c (L, N, H)`` (else None).
    Every call releases the GIL.
    """

    def __new__(
        cls,
        mode: _Mode,
        layers: list[_Layer],
        head_weight: _FloatArray,
        head_bias: _FloatArray | None = None,
        embedding: _FloatArray | None = None,
        *,
        weights: str = "full",
    ) -> Decoder: ...
    @property
    def vocab_size(self) -> int:
        """``V``."""
    @property
    def weights(self) -> str:
        """``"full"``, ``"bfloat16"`` or ``"int8"``."""
    @property
    def weight_bytes(self) -> int:
        """Bytes of the packed weight matrices (with any scales)."""
    @property
    def hidden_size(self) -> int:
        """``H``."""
    @property
    def num_layers(self) -> int:
        """``L``."""
    @property
    def mode(self) -> str:
        """The cell mode."""
    @property
    def dtype(self) -> str:
        """``"float32"`` or ``"float64"``."""
    def step(
        self,
        ids: NDArray[np.integer],
        h: _FloatArray,
        c: _FloatArray | None = None,
        rows: NDArray[np.integer] | None = None,
    ) -> tuple[_FloatArray, _FloatArray, _FloatArray | None]:
        """One symbol per row: ``ids (N,)`` in ``0..V-1`` -> ``(log_probs (N, V), h, c)``.

        With ``rows (N,)``, ``h``/``c`` may hold any number ``M`` of rows
        ``(L, M, H)`` and row ``i`` continues their row ``rows[i]`` (repeats allowed).
        """
    def run(
        self, ids: NDArray[np.integer], h: _FloatArray, c: _FloatArray | None = None
    ) -> tuple[_FloatArray, _FloatArray, _FloatArray | None]:
        """``T`` symbols per row in one call: ``ids (N, T)`` -> ``(log_probs (N, T, V), h, c)``."""
    def sample(
        self,
        log_probs: NDArray[np.float64],
        h: _FloatArray,
        c: _FloatArray | None,
        uniforms: NDArray[np.float64],
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop_id: int | None = None,
        *,
        top_p_slack: float,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Draw up to ``length`` symbols per row without returning to Python.

        Args:
            log_probs: ``(N, V)`` float64 distribution of each row's first symbol.
            h, c: the state after the symbols before it.
            uniforms: ``(M,)`` float64 in ``[0, 1)``, ``M >= length * N`` unless
                ``temperature == 0`` (argmax); step ``t`` takes one per row still
                running, in row order, from where step ``t - 1`` stopped.
            temperature, top_k, top_p: as :func:`rnncore.decode.pick`.
            stop_id: a row ends after drawing it (the id is kept).
            top_p_slack: ``rnncore.decode.sampling.TOP_P_SLACK`` (the one
                definition of how near ``top_p`` a mass counts as reaching it).

        Returns:
            ``(ids (N, length) int64, ends (N,) int64)``: row ``n`` holds
            ``ends[n]`` drawn ids, then zeros.
        """

# --- Sequence to sequence: the teacher-forced attention decoder -------------------

_Attention = Literal["additive", "general", "dot"]

@final
class AttentionDecoderCache:
    """What :func:`decoder_forward` saved for :func:`decoder_backward`; opaque."""

@overload
def decoder_forward(
    mode: _Mode,
    attention: _Attention,
    y: _FloatArray,
    memory: _FloatArray,
    lengths: NDArray[np.integer] | None,
    h0: _FloatArray,
    c0: _FloatArray | None,
    weights: dict[str, _FloatArray],
    context0: _FloatArray | None = None,
    sampling: None = None,
    keys: _FloatArray | None = None,
    prepared: DecoderPrepared | None = None,
) -> tuple[_FloatArray, _FloatArray, _FloatArray, _FloatArray | None, AttentionDecoderCache]: ...
@overload
def decoder_forward(
    mode: _Mode,
    attention: _Attention,
    y: _FloatArray,
    memory: _FloatArray,
    lengths: NDArray[np.integer] | None,
    h0: _FloatArray,
    c0: _FloatArray | None,
    weights: dict[str, _FloatArray],
    context0: _FloatArray | None = None,
    *,
    sampling: dict[str, Any],
    keys: _FloatArray | None = None,
    prepared: DecoderPrepared | None = None,
) -> tuple[
    _FloatArray,
    _FloatArray,
    _FloatArray,
    _FloatArray | None,
    AttentionDecoderCache,
    NDArray[np.int64],
]:
    """The attention decoder over ``T`` steps, teacher-forced or with scheduled
    sampling (the equations of
    :func:`rnncore.reference.decoder_forward`): ``x_t = [y_t; context_{t-1}]``, the
    cell step, attention of ``h_t`` over ``memory``, ``output_t = [h_t; context_t]``.

    Args:
        mode: the cell; attention: the score (``"additive"`` Bahdanau, ``"general"``
            and ``"dot"`` Luong).
        y: ``(T, N, E)`` decoder inputs.
        memory: ``(N, S, M)`` encoder outputs.
        lengths: ``(N,)`` source lengths in ``1..S``, or ``None`` (all ``S``).
        h0: ``(N, H)``; c0: ``(N, H)`` for lstm, ``None`` otherwise.
        weights: ``w_ih (G*H, E + M)``, ``w_hh (G*H, H)``, optional ``b_ih``,
            ``b_hh (G*H,)``; additive: ``w_query (A, H)``, ``w_key (A, M)``,
            ``v (A,)``; general: ``w_key (H, M)``; dot (``M == H``): none.
        context0: ``(N, M)`` the context fed into step 0, or ``None`` (zero).
        sampling: ``None`` (teacher forcing), or scheduled sampling
            (:func:`rnncore.reference.decoder_forward`) by name: ``p`` in ``[0, 1]``,
            ``seed`` (``0..2**64-1``), ``ids (T, N)`` the teacher ids (``y`` must be
            ``embedding[ids]``), ``embedding (V, E)``, ``head_weight (V, H + M)``,
            ``head_bias (V,)`` or ``None``. At each step ``t >= 1`` each row, with
            probability ``p`` (flips of :func:`rnncore.reference.sampling_flips`),
            is fed ``embedding[argmax(head(output_{t-1}))]``; ``p = 0`` is teacher
            forcing, bitwise.
        keys: ``(N, S, A)`` :func:`decoder_keys` of ``memory`` with these weights,
            or ``None`` (projected in the call): a decoder run one step per call
            passes them to project the memory once, not at every step.
        prepared: :func:`decoder_prepare` of these weights, or ``None``: the
            per-step products then read weights packed once, not at every call.

    Returns:
        ``(output (T, N, H + M), attention weights (T, N, S), h_n (N, H),
        c_n (N, H) or None, cache)``; the weights are exactly 0 at padded source steps.
        With ``sampling``, also ``fed (T, N)`` int64, the ids fed at every step; the
        backward's ``y`` gradient is that of the inputs fed.
    """

@final
class DecoderPrepared:
    """A decoder's weights packed by :func:`decoder_prepare`; opaque."""

def decoder_prepare(
    mode: _Mode,
    attention: _Attention,
    weights: dict[str, _FloatArray],
    input_size: int,
    memory_size: int,
) -> DecoderPrepared:
    """The weights of :func:`decoder_forward` (``w_ih (G*H, E + M)``, ``w_hh``,
    biases) packed once for the per-step products of many calls of a few rows
    (a decoder stepped one symbol per call). Valid for these weights until they
    change: a later edit of the arrays is not seen through it."""

def matmul(
    a: _FloatArray, b: _FloatArray, transpose_a: bool = False, transpose_b: bool = False
) -> _FloatArray:
    """``op(a) @ op(b)`` (``op`` transposes when asked) for 2-D arrays of one float
    dtype, on the kernels' GEMM and thread pool: tiles of rows, so bitwise the
    same at any thread count. Returns a new ``(M, N)`` array."""

def adam_step(
    params: list[_FloatArray],
    grads: list[_FloatArray],
    exp_avg: list[_FloatArray],
    exp_avg_sq: list[_FloatArray],
    *,
    step_size: float,
    bias_correction2_sqrt: float,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """One Adam step (AdamW with ``decoupled``) over every parameter, in place:
    ``params[i]``, ``exp_avg[i]`` and ``exp_avg_sq[i]`` (C-contiguous, writeable,
    of one float dtype and the shape of ``grads[i]``). ``step_size`` is
    ``lr / (1 - beta1**t)`` and ``bias_correction2_sqrt`` is
    ``sqrt(1 - beta2**t)``. Bitwise ``rnncore.optim.Adam._update`` on each."""

def embedding_backward(grad: _FloatArray, ids: NDArray[np.integer], d_out: _FloatArray) -> None:
    """``grad[ids[m]] += d_out[m]`` for every ``m`` in order, in place: ``grad
    (V, E)`` C-contiguous and writeable, ``ids (M,)`` in ``0..V-1``, ``d_out
    (M, E)`` of ``grad``'s dtype. Bitwise ``numpy.add.at(grad, ids, d_out)``;
    blocks of columns run in parallel."""

def sum_squares(arrays: list[_FloatArray]) -> float:
    """``sum(x**2)`` over every element of every array (one float dtype; any
    layout), accumulated in float64 in pieces added in order: bitwise the same
    at any thread count."""

def cross_entropy(
    logits: _FloatArray,
    targets: NDArray[np.integer],
    weights: NDArray[np.float64] | None = None,
    scale: float = 1.0,
) -> float:
    """Softmax cross-entropy of ``logits (M, V)`` (C-contiguous, writeable;
    float32 or float64) against ``targets (M,)`` in ``0..V-1``, with optional
    ``weights (M,)`` (finite, >= 0): returns ``scale * sum_m w_m * nll_m``
    (summed in row order) and overwrites ``logits`` with that loss's gradient,
    ``w_m * scale * (softmax(logits[m]) - onehot(targets[m]))``. A row of weight
    0 becomes 0; a counted row with a NaN or an infinity becomes NaN, and so does
    the loss."""

def decoder_keys(
    attention: _Attention, memory: _FloatArray, weights: dict[str, _FloatArray]
) -> _FloatArray:
    """The keys ``(N, S, A)`` of ``memory (N, S, M)``: ``memory @ w_key^T``
    (additive, general), ``memory`` itself (dot), for ``decoder_forward(keys=...)``;
    ``weights`` as there (only ``w_key`` is read)."""

def decoder_backward(
    mode: _Mode,
    attention: _Attention,
    weights: dict[str, _FloatArray],
    cache: AttentionDecoderCache,
    d_output: _FloatArray,
    d_h_n: _FloatArray | None = None,
    d_c_n: _FloatArray | None = None,
    d_weights: _FloatArray | None = None,
) -> dict[str, _FloatArray | None]:
    """Backpropagation through time for one :func:`decoder_forward` call.

    Args:
        mode, attention, weights: as given to :func:`decoder_forward`.
        cache: what it returned.
        d_output: ``(T, N, H + M)``; d_h_n, d_c_n: ``(N, H)`` or ``None`` (zero);
        d_weights: ``(T, N, S)`` gradient of the attention weights, or ``None``.

    Returns:
        The gradients by name: ``y``, ``memory``, ``h0``, ``c0`` (lstm, else
        ``None``), ``context0`` and every weight name (``None`` for weights the call has not).
    """
