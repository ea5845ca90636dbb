"""Train a character-level LSTM language model and sample from it.

The corpus is the English documentation text that ships with every CPython
(``pydoc_data.topics``: the language reference topics of ``help()``), so this
runs on any machine with no download. min-char-rnn in spirit: one-hot inputs,
an ``rnncore.nn.LSTM``, a softmax readout, truncated backprop through time with
the state carried across chunks, Adam, gradient clipping.

    python examples/char_lstm.py --seconds 120
"""

from __future__ import annotations

import argparse
import pydoc_data.topics
import time

import numpy as np

from rnncore import decode
from rnncore.nn import LSTM
from rnncore.nn.functional import log_softmax


def load_corpus() -> tuple[np.ndarray, list[str]]:
    """The corpus as symbol ids ``(L,)`` and the vocabulary (sorted characters)."""
    text = "\n\n".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics))
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], dtype=np.int64), chars


def one_hot(ids: np.ndarray, V: int) -> np.ndarray:
    """``ids (...)`` -> ``(..., V)`` float32."""
    out = np.zeros((*ids.shape, V), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


class Model:
    """One-hot -> LSTM -> linear -> softmax, with its own forward and backward."""

    def __init__(self, V: int, H: int, num_layers: int, rng: np.random.Generator) -> None:
        self.V = V
        self.lstm = LSTM(V, H, num_layers=num_layers, rng=rng)
        k = 1.0 / np.sqrt(H)
        self.w_out = rng.uniform(-k, k, (V, H)).astype(np.float32)  # (V, H)
        self.b_out = np.zeros(V, dtype=np.float32)  # (V,)

    def params(self) -> dict[str, np.ndarray]:
        return {**dict(self.lstm.named_parameters()), "w_out": self.w_out, "b_out": self.b_out}

    def loss_and_grads(self, inputs, targets, hx):
        """Mean cross-entropy over ``inputs, targets (T, N)``; returns the loss,
        the gradients by parameter name and the final state (for the next chunk)."""
        self.lstm.zero_grad()
        out, hx = self.lstm(one_hot(inputs, self.V), hx)  # (T, N, H)
        T, N, H = out.shape
        logits = out.reshape(T * N, H) @ self.w_out.T + self.b_out  # (T*N, V)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(T * N)
        flat_targets = targets.reshape(-1)
        loss = float(-np.log(p[rows, flat_targets] + 1e-12).mean())
        dlogits = p
        dlogits[rows, flat_targets] -= 1.0
        dlogits /= T * N  # (T*N, V)
        grads = {
            "w_out": dlogits.T @ out.reshape(T * N, H),
            "b_out": dlogits.sum(axis=0),
        }
        d_out = (dlogits @ self.w_out).reshape(T, N, H)
        self.lstm.backward(d_out)
        grads.update(self.lstm.grads)
        return loss, grads, hx

    # What rnncore.decode asks of a model: a vocabulary size, initial_state, step.
    @property
    def vocab_size(self) -> int:
        return self.V

    def initial_state(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(h, c)``, each ``(layers, n, H)`` zeros."""
        h = np.zeros((self.lstm.num_layers, n, self.lstm.hidden_size), dtype=np.float32)
        return h, h.copy()

    def step(self, ids: np.ndarray, hx) -> tuple[np.ndarray, tuple]:
        """``ids (n,)`` -> next-symbol log-probabilities ``(n, V)`` and the state."""
        out, hx = self.lstm(one_hot(np.asarray(ids)[None, :], self.V), hx)  # (1, n, H)
        return log_softmax(out[0] @ self.w_out.T + self.b_out), hx  # (n, V)


class Adam:
    """Adam with global-norm gradient clipping."""

    def __init__(self, params: dict[str, np.ndarray], lr: float, clip: float) -> None:
        self.params, self.lr, self.clip, self.t = params, lr, clip, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
        scale = min(1.0, self.clip / (norm + 1e-6))
        self.t += 1
        for k, p in self.params.items():
            g = grads[k] * scale
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            m_hat = self.m[k] / (1 - 0.9**self.t)
            v_hat = self.v[k] / (1 - 0.999**self.t)
            p -= (self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(p.dtype)  # in place


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="training time budget")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32, help="parallel streams N")
    ap.add_argument("--seq", type=int, default=64, help="steps per chunk T")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    ids, chars = load_corpus()
    V, N, T = len(chars), args.batch, args.seq
    print(f"corpus: {len(ids):,} characters, {V} symbols (pydoc_data.topics)")
    streams = ids[: (len(ids) // N) * N].reshape(N, -1).T  # (L/N, N): N parallel streams
    model = Model(V, args.hidden, args.layers, rng)
    opt = Adam(model.params(), args.lr, clip=5.0)

    hx, pos, step, smooth = None, 0, 0, None
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        if pos + T + 1 > len(streams):
            hx, pos = None, 0  # new epoch: start the streams over
        chunk = streams[pos : pos + T + 1]  # (T+1, N)
        loss, grads, hx = model.loss_and_grads(chunk[:-1], chunk[1:], hx)
        opt.step(grads)
        pos += T
        step += 1
        smooth = loss if smooth is None else 0.95 * smooth + 0.05 * loss
        if step % 25 == 0:
            elapsed = time.perf_counter() - start
            print(f"step {step:5d}  loss {smooth:.3f} nats/char  "
                  f"{step * N * T / elapsed:,.0f} chars/s")  # fmt: skip

    prime = "The "
    index = {c: i for i, c in enumerate(chars)}
    prime_ids = [index[c] for c in prime]
    drawn = decode.sample(
        model, prime_ids=prime_ids, length=400, temperature=args.temperature, rng=rng
    )[0]
    print(f"\nafter {step} steps, loss {smooth:.3f}; a sample:\n")
    print(prime + "".join(chars[i] for i in drawn))


if __name__ == "__main__":
    main()
