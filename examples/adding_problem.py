"""The vanishing-gradient demonstration: the adding problem (Hochreiter & Schmidhuber 1997).

Each sequence has ``T`` steps of two inputs: a value drawn from U(0, 1) and a
marker that is 1 at exactly two steps (one in each half of the sequence) and 0
elsewhere. The target is the sum of the two marked values, read by a linear
head from the last hidden state and scored by the mean squared error. Always
predicting the mean (1.0) scores 1/6 = 0.167; the task counts as solved below
0.01. A vanilla RNN has to carry the first value over ``T/2`` steps or more,
and its gradients vanish over that distance; LSTM and GRU keep them. The cells:
``rnn`` (tanh), ``irnn`` (ReLU with ``W_hh = I`` and zero biases, Le et al. 2015),
``lstm`` and ``gru``, and their layer-normalised forms ``lstm_ln`` and ``gru_ln``.

Every cell gets the same budget (steps, batch, hidden size, optimizer). The
script prints a table of the final test MSE and draws, for the longest ``T``,
``||dL_T/dh_t||`` against ``T - t`` for the cells before and after
training (:func:`rnncore.diagnostics.layer_gradient_flow`).

    python examples/adding_problem.py --lengths 50 100 200 --steps 1500 --out adding
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rnncore import diagnostics, nn
from rnncore.diagnostics.plots import gradient_flow_png
from rnncore.errors import NonFiniteError
from rnncore.optim import clip_grad_norm_, create

CELLS = {  # name -> (layer class, its keyword arguments)
    "rnn": (nn.RNN, {}),
    "irnn": (nn.RNN, {"nonlinearity": "relu"}),  # ReLU with W_hh = I (Le et al. 2015)
    "lstm": (nn.LSTM, {}),
    "lstm_ln": (nn.LSTM, {"layer_norm": True}),
    "gru": (nn.GRU, {}),
    "gru_ln": (nn.GRU, {"layer_norm": True}),
}


def batch(T: int, N: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x (T, N, 2)`` (value, marker) and targets ``y (N,)``."""
    x = np.zeros((T, N, 2), np.float32)
    x[:, :, 0] = rng.random((T, N))
    first = rng.integers(0, T // 2, size=N)
    second = rng.integers(T // 2, T, size=N)
    cols = np.arange(N)
    x[first, cols, 1] = 1.0
    x[second, cols, 1] = 1.0
    return x, x[first, cols, 0] + x[second, cols, 0]


class Adder:
    """A recurrent layer and a linear head on its last state."""

    def __init__(self, cell: str, H: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        layer, kw = CELLS[cell]
        self.rnn = layer(2, H, rng=rng, **kw)
        self.head = nn.Linear(H, 1, rng=rng)
        if cell == "irnn":  # Le et al.: W_hh = I, zero biases, input weights N(0, 0.001^2)
            nn.init.identity_hh_(self.rnn)
            self.rnn.weight_ih_l0 = rng.normal(0.0, 1e-3, self.rnn.weight_ih_l0.shape)
        if cell.startswith("lstm"):
            nn.init.forget_bias_(self.rnn, 1.0)  # forget gate open at the start
        self.params = {**self._named("rnn"), **self._named("head")}

    def _named(self, part: str) -> dict[str, np.ndarray]:
        return {f"{part}.{k}": v for k, v in getattr(self, part).named_parameters()}

    def grads(self) -> dict[str, np.ndarray]:
        return {f"rnn.{k}": g for k, g in self.rnn.grads.items()} | {
            f"head.{k}": g for k, g in self.head.grads.items()
        }

    def predict(self, x: np.ndarray) -> np.ndarray:
        out, _ = self.rnn(x)  # (T, N, H)
        return self.head(out[-1])[:, 0]  # (N,)

    def loss_and_backward(self, x: np.ndarray, y: np.ndarray) -> float:
        """MSE of a batch; fills the gradients."""
        self.rnn.zero_grad()
        self.head.zero_grad()
        err = self.predict(x) - y  # (N,)
        d_y = (2.0 / err.size) * err[:, None].astype(np.float32)  # (N, 1)
        d_last = self.head.backward(d_y)  # (N, H)
        d_out = np.zeros((x.shape[0], *d_last.shape), np.float32)  # (T, N, H)
        d_out[-1] = d_last
        self.rnn.backward(d_out)
        return float(np.mean(err**2))

    def flow(self, x: np.ndarray, y: np.ndarray) -> diagnostics.GradientFlow:
        """Gradient flow of the loss on ``x``: ``d_last = W^T dL/dy``."""
        err = self.predict(x) - y
        d_last = (2.0 / err.size) * err[:, None] * self.head.weight  # (N, H)
        return diagnostics.layer_gradient_flow(self.rnn, x, d_last.astype(np.float32))


def train(cell: str, T: int, args: argparse.Namespace) -> tuple[Adder, float, float, float]:
    """``(model, test MSE before, test MSE after, seconds)``."""
    model = Adder(cell, args.hidden, args.seed)
    opt = create("adam", model.params, args.lr)
    rng = np.random.default_rng(args.seed + 1)
    test_x, test_y = batch(T, 1000, np.random.default_rng(12345))
    before = float(np.mean((model.predict(test_x) - test_y) ** 2))
    start = time.perf_counter()
    try:
        for _ in range(args.steps):
            x, y = batch(T, args.batch, rng)
            model.loss_and_backward(x, y)
            grads = model.grads()
            clip_grad_norm_(grads, 1.0)
            opt.step(grads)
    except NonFiniteError:  # the state overflowed (an unbounded ReLU RNN can)
        return model, before, float("inf"), time.perf_counter() - start
    seconds = time.perf_counter() - start
    after = float(np.mean((model.predict(test_x) - test_y) ** 2))
    return model, before, after, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200])
    p.add_argument("--cells", nargs="+", choices=sorted(CELLS), default=["rnn", "lstm", "gru"])
    p.add_argument("--steps", type=int, default=1500, help="training steps per cell and T")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="adding", help="directory for gradient_flow.png")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"| T | {' | '.join(args.cells)} |")
    print(f"|---|{'---|' * len(args.cells)}")
    curves = {}
    for T in args.lengths:
        row = []
        for cell in args.cells:
            fresh = Adder(cell, args.hidden, args.seed)
            model, before, after, seconds = train(cell, T, args)
            mark = " (solved)" if after < 0.01 else " (diverged)" if not np.isfinite(after) else ""
            row.append(f"{after:.4f}{mark}")
            print(
                f"  {cell} T={T}: test MSE {before:.3f} -> {after:.4f} in {seconds:.0f} s",
                flush=True,
            )
            if T == max(args.lengths) and np.isfinite(after):
                x, y = batch(T, 16, np.random.default_rng(7))
                for label, m in (("before", fresh), ("after", model)):
                    f = m.flow(x, y)
                    curves[f"{cell}, {label} training"] = (f.distance, f.norm[0])
        print(f"| {T} | {' | '.join(row)} |", flush=True)
    png = gradient_flow_png(curves, f"adding problem, T = {max(args.lengths)}")
    if png is not None:
        (out / "gradient_flow.png").write_bytes(png)
        print(f"wrote {out / 'gradient_flow.png'}")


if __name__ == "__main__":
    main()
