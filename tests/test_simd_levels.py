"""RNNCORE_SIMD caps the kernels' SIMD level: each fallback runs on a CPU with
more, gives the reference's numbers, and a bad value is a named error.
(scripts/test.sh also runs the kernel tests under every level.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rnncore

PROBE = """
import numpy as np, rnncore
from rnncore import nn, reference
rng = np.random.default_rng(0)
x = rng.standard_normal((5, 3, 7))
for cls in (nn.LSTM, nn.GRU, nn.RNN):
    fast = cls(7, 9, num_layers=2, dtype=np.float64, seed=1)
    slow = cls(7, 9, num_layers=2, dtype=np.float64, seed=1, backend=reference)
    a, b = fast(x)[0], slow(x)[0]
    assert np.abs(a - b).max() < 1e-10, (cls, np.abs(a - b).max())
print(rnncore.simd_level())
"""

ORDER = ["scalar", "avx2+fma", "avx512"]


def _run(level: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RNNCORE_SIMD"}
    if level is not None:
        env["RNNCORE_SIMD"] = level
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("level", ["scalar", "avx2", "avx512"])
def test_each_level_runs_and_matches_the_reference(level):
    best = _run(None).stdout.strip()
    done = _run(level)
    assert done.returncode == 0, done.stderr
    want = "avx2+fma" if level == "avx2" else level
    # capped at the level asked for, never above what the CPU has
    assert done.stdout.strip() == ORDER[min(ORDER.index(want), ORDER.index(best))]


def test_a_bad_level_is_a_named_error():
    done = _run("sse9")
    assert done.returncode != 0
    assert "RNNCORE_SIMD='sse9' is not a SIMD level; use avx512, avx2 or scalar" in done.stderr


def test_the_default_is_the_best_level():
    assert _run(None).stdout.strip() == rnncore.simd_level()
