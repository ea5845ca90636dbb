"""Random problems for the kernel tests: one direction of one layer, with
PyTorch-style uniform weights, in a given dtype."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnncore.reference.cells import LAYER_NORM, weight_rows

MODES = (
    "rnn_tanh", "rnn_relu", "lstm", "gru", "gru_reset_before", "lstm_cifg", "lstm_peephole",
    "lstm_ln", "gru_ln", "mut1", "mut2", "mut3",
)  # fmt: skip
SQUARE_INPUT = ("mut1", "mut2")  # the modes that add x itself: D is forced to H


@dataclass
class Case:
    """All arguments of a forward/backward call, plus upstream gradients."""

    mode: str
    x: np.ndarray  # (T, N, D)
    h0: np.ndarray  # (N, H); (N, P) with a projection, as every h below
    c0: np.ndarray | None  # (N, H), lstm only
    w_ih: np.ndarray  # (G*H, D); the MUTs (IH, D)
    w_hh: np.ndarray  # (G*H, H); the MUTs (HH, H); (4H, P) with a projection
    b_ih: np.ndarray | None  # (G*H,) or (IH,)
    b_hh: np.ndarray | None  # (G*H,) or (HH,)
    lengths: np.ndarray | None  # (N,)
    reverse: bool
    d_output: np.ndarray  # (T, N, H)
    d_h_n: np.ndarray  # (N, H)
    d_c_n: np.ndarray | None  # (N, H), lstm only
    w_peep: np.ndarray | None = None  # (3H,), lstm_peephole only
    w_hr: np.ndarray | None = None  # (P, H), the LSTM with projections only
    w_ln: np.ndarray | None = None  # (B*H,), lstm_ln and gru_ln only
    b_ln: np.ndarray | None = None  # (B*H,), lstm_ln and gru_ln only

    def extra(self) -> dict[str, np.ndarray]:
        """The keywords of the mode's extra parameters (none for most modes)."""
        kw = {"w_peep": self.w_peep, "w_hr": self.w_hr, "w_ln": self.w_ln, "b_ln": self.b_ln}
        return {k: v for k, v in kw.items() if v is not None}

    def forward(self, impl):
        return impl.forward(
            self.mode, self.x, self.h0, self.c0, self.w_ih, self.w_hh, self.b_ih, self.b_hh,
            self.lengths, self.reverse, **self.extra(),
        )  # fmt: skip

    def backward(self, impl, cache):
        return impl.backward(
            self.mode, self.x, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.lengths,
            self.reverse, cache, self.d_output, self.d_h_n, self.d_c_n, **self.extra(),
        )  # fmt: skip

    def run(self, impl):
        """``(output, h_n, c_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_peep,
        dw_hr, d_ln)``: ``dw_peep`` None unless lstm_peephole, ``dw_hr`` None without
        a projection, ``d_ln`` (``dw_ln`` and ``db_ln`` end to end) None without
        layer normalisation; their backwards alone return more than 7 arrays."""
        output, h_n, c_n, cache = self.forward(impl)
        grads = self.backward(impl, cache)
        extra = self.extra()
        assert len(grads) == 7 + len(extra)
        named = dict(zip(extra, grads[7:]))
        d_ln = np.concatenate([named["w_ln"], named["b_ln"]]) if "w_ln" in named else None
        return (output, h_n, c_n, *grads[:7], named.get("w_peep"), named.get("w_hr"), d_ln)


RESULT_NAMES = (
    "output", "h_n", "c_n", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db_ih", "db_hh", "dw_peep",
    "dw_hr", "d_ln",
)  # fmt: skip


def make_case(
    mode: str,
    T: int,
    N: int,
    D: int,
    H: int,
    *,
    dtype=np.float64,
    lengths: list[int] | None = None,
    reverse: bool = False,
    bias: bool = True,
    seed: int = 0,
    proj: int = 0,
) -> Case:
    """A random problem; for mut1 and mut2 (which add x itself) ``D`` is set to ``H``.
    ``proj = P > 0`` (lstm only) makes it an LSTM with projections: ``w_hr (P, H)``,
    and every ``h`` (h0, d_output, d_h_n) and ``w_hh``'s columns have ``P``."""
    rng = np.random.default_rng(seed)
    D = H if mode in SQUARE_INPUT else D
    IH, HH = weight_rows(mode, H)
    k = 1.0 / np.sqrt(H)
    HS = proj if proj else H  # width of h

    def u(*shape, scale=k):
        return rng.uniform(-scale, scale, shape).astype(dtype)

    lstm = mode in ("lstm", "lstm_cifg", "lstm_peephole", "lstm_ln")  # with a cell state
    return Case(
        mode=mode,
        x=u(T, N, D, scale=1.0),
        h0=u(N, HS, scale=0.5),
        c0=u(N, H, scale=0.5) if lstm else None,
        w_ih=u(IH, D),
        w_hh=u(HH, HS),
        b_ih=u(IH) if bias else None,
        b_hh=u(HH) if bias else None,
        lengths=None if lengths is None else np.asarray(lengths, dtype=np.int64),
        reverse=reverse,
        d_output=u(T, N, HS, scale=1.0),
        d_h_n=u(N, HS, scale=1.0),
        d_c_n=u(N, H, scale=1.0) if lstm else None,
        w_peep=u(3 * H, scale=1.0) if mode == "lstm_peephole" else None,
        w_hr=u(proj, H) if proj else None,
        w_ln=1.0 + u(LAYER_NORM[mode] * H, scale=0.3) if mode in LAYER_NORM else None,
        b_ln=u(LAYER_NORM[mode] * H, scale=0.3) if mode in LAYER_NORM else None,
    )


def max_rel_error(got, want) -> float:
    """Largest ``|got - want|`` relative to the scale of ``want`` (at least 1)."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    return float(np.abs(np.asarray(got, dtype=np.float64) - want).max()) / scale
