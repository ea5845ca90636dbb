"""Peak memory of a training step (benches/README.md, item 7).

The char-rnn config (embedding 65->64, 2-layer LSTM H=512, N=50, T=50, softmax
readout, Adam) trains for a few steps in a fresh process per contender
(rnncore, and torch when it is installed). Each process reports its resident
set after building the model and optimizer (the baseline: interpreter,
libraries, weights) and its peak resident set over the steps; the difference
is what the training step itself needs. It is printed next to the theoretical
need: gradients and Adam's two moments (three times the weights) plus the
activations kept for the backward pass.

    python benches/bench_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys

V, E, H, N, T, STEPS = 65, 64, 512, 50, 50, 4

RNNCORE = f"""
import numpy as np
from rnncore.models import CharLM, LMConfig
from rnncore.optim import create
ids = np.random.default_rng(0).integers(0, {V}, size=({N}, {T} + 1))
x, y = ids[:, :-1], ids[:, 1:]
model = CharLM(LMConfig(vocab_size={V}, cell="lstm", hidden_size={H}, num_layers=2,
                        embedding_dim={E}, seed=0))
opt = create("adam", dict(model.named_parameters()), lr=2e-3)
def step():
    model.zero_grad()
    model.loss(x, y)
    model.backward()
    opt.step(model.grads)
"""

TORCH = f"""
import numpy as np, torch
tnn = torch.nn
class Net(tnn.Module):
    def __init__(self):
        super().__init__()
        self.emb = tnn.Embedding({V}, {E})
        self.rnn = tnn.LSTM({E}, {H}, num_layers=2, batch_first=True)
        self.head = tnn.Linear({H}, {V})
    def forward(self, ids):
        return self.head(self.rnn(self.emb(ids))[0])
net = Net()
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
ids = torch.from_numpy(np.random.default_rng(0).integers(0, {V}, size=({N}, {T} + 1)))
x, y = ids[:, :-1], ids[:, 1:]
def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(net(x).reshape(-1, {V}), y.reshape(-1))
    loss.backward()
    opt.step()
"""

MEASURE = f"""
import json
def status_mib(key):
    # VmRSS: now; VmHWM: the peak of this process image. (getrusage's ru_maxrss
    # would also count the parent's memory at the fork that started us.)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
base = status_mib("VmRSS")
for _ in range({STEPS}):
    step()
print(json.dumps({{"base": base, "peak": status_mib("VmHWM")}}))
"""


def measure(setup: str) -> dict[str, float]:
    """Baseline and peak resident set (MiB) of ``setup`` then STEPS steps, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", setup + MEASURE], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def theoretical_mib() -> tuple[float, float]:
    """(gradients + Adam moments, saved activations) of one step, float32, in MiB."""
    params = V * E + 4 * H * (E + H + 2) + 4 * H * (H + H + 2) + V * H + V
    optimizer = 3 * params * 4  # gradients and two moments
    per_layer = T * N * 4 * H + 2 * (T + 1) * N * H + T * N * H  # gates, states, cells, output
    activations = (2 * per_layer + 3 * T * N * V + T * N * E) * 4  # + logits, their gradient
    return optimizer / 2**20, activations / 2**20


def main() -> None:
    opt_mib, act_mib = theoretical_mib()
    print(f"char-rnn config, {STEPS} training steps per process (peak RSS, MiB)")
    print(f"theoretical need of a step: gradients + Adam {opt_mib:.1f}, activations "
          f"{act_mib:.1f}: {opt_mib + act_mib:.1f} MiB")  # fmt: skip
    rows = [("rnncore", RNNCORE)]
    try:
        import torch  # noqa: F401

        rows.append(("torch", TORCH))
    except ImportError:
        print("(torch not installed: its row is left out)")
    for name, setup in rows:
        m = measure(setup)
        step = m["peak"] - m["base"]
        print(f"  {name:8} baseline {m['base']:7.1f}  peak {m['peak']:7.1f}  "
              f"step {step:6.1f} MiB ({step / (opt_mib + act_mib):.2f}x the need)")  # fmt: skip


if __name__ == "__main__":
    main()
