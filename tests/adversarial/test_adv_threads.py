"""Concurrency probes: thread counts a user can ask for.

A thread count the pool cannot start must never hang a call: the count is
capped (``rnncore.MAX_THREADS``), a failed pool is remembered and the work runs
on the caller's thread, and a non-integer count is refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import rnncore
from rnncore.errors import ArgumentError, DTypeError

LAYER_CALL = """
import numpy as np, rnncore
from rnncore import nn
layer = nn.LSTM(5, 300, dtype="float64", seed=0)
x = np.random.default_rng(0).standard_normal((6, 40, 5))
y, _ = layer(x)
np.save(OUT, y)
print(rnncore.get_num_threads())
"""


def run_layer(tmp_path, env_threads: str | None, prelude: str = "") -> tuple[np.ndarray, str]:
    out = tmp_path / f"y{env_threads}{len(prelude)}.npy"
    env = {k: v for k, v in os.environ.items() if k != "RNNCORE_NUM_THREADS"}
    if env_threads is not None:
        env["RNNCORE_NUM_THREADS"] = env_threads
    code = f"OUT = {str(out)!r}\n" + textwrap.dedent(prelude) + LAYER_CALL
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return np.load(out), done.stdout.strip()


def test_a_huge_thread_count_from_the_environment_is_capped_and_does_not_hang(tmp_path):
    want, threads = run_layer(tmp_path, "1")
    assert threads == "1"
    got, threads = run_layer(tmp_path, "100000")
    assert int(threads) == rnncore.MAX_THREADS
    np.testing.assert_array_equal(got, want)


def test_a_pool_that_cannot_start_is_remembered(tmp_path):
    # Under an address-space limit just above what the process holds, the pool
    # cannot map its threads' stacks: every call must then run on the caller's
    # thread (not retry at each parallel section), with the same numbers. The
    # threads that did start are joined before the call goes on, so the room
    # their stacks took is back: without that, the call's own allocations
    # failed whenever those threads were slow to exit (a loaded machine).
    want, _ = run_layer(tmp_path, "1")
    prelude = """
    import resource, rnncore, numpy as np
    from rnncore import nn
    nn.LSTM(5, 300, dtype="float64", seed=0)(np.zeros((6, 40, 5)))  # warm: load, allocate
    size = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (size + (96 << 20), resource.RLIM_INFINITY))
    rnncore.set_num_threads(1000)
    """
    got, threads = run_layer(tmp_path, None, prelude)
    assert threads == "1000"
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n", [0, -1, rnncore.MAX_THREADS + 1, 10**6, 10**30])
def test_out_of_range_thread_counts_are_refused(n):
    before = rnncore.get_num_threads()
    with pytest.raises(ArgumentError, match=r"n must lie in 1\.\.1024"):
        rnncore.set_num_threads(n)
    assert rnncore.get_num_threads() == before


@pytest.mark.parametrize("n", [True, False, 2.0, "2", np.float64(3)])
def test_non_integer_thread_counts_are_refused(n):
    with pytest.raises(DTypeError, match="n must be an integer"):
        rnncore.set_num_threads(n)


def test_numpy_integers_and_none_are_taken():
    before = rnncore.get_num_threads()
    try:
        rnncore.set_num_threads(np.int64(2))
        assert rnncore.get_num_threads() == 2
    finally:
        rnncore.set_num_threads(None)
    assert rnncore.get_num_threads() == before
