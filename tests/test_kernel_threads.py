"""The kernels release the GIL, and concurrent calls give the sequential results."""

from __future__ import annotations

import threading
import time

import numpy as np
from kernel_cases import make_case

from rnncore import _rnncore


def test_two_threads_run_kernels_at_once_with_sequential_results():
    cases = [make_case(m, 40, 8, 32, 48, lengths=[40, 3, 17, 40, 1, 9, 22, 40], seed=s)
             for s, m in enumerate(["lstm", "gru", "rnn_tanh", "lstm"])]  # fmt: skip
    want = [c.run(_rnncore) for c in cases]
    results: dict[tuple[int, int], tuple] = {}

    def work(worker: int) -> None:
        for rep in range(5):
            for i, c in enumerate(cases):
                results[(worker, rep * len(cases) + i)] = (i, c.run(_rnncore))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 * 5 * len(cases)
    for i, got in results.values():
        for g, w in zip(got, want[i]):
            if w is not None:
                np.testing.assert_array_equal(g, w)


def test_gil_is_released_during_a_kernel():
    """While one thread is inside a long kernel call, Python code keeps running
    in another: with the GIL held it could not run at all."""
    case = make_case("lstm", 400, 64, 128, 128, seed=1)
    in_kernel = threading.Event()
    done = threading.Event()

    def run() -> None:
        in_kernel.set()
        for _ in range(3):
            case.forward(_rnncore)
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    in_kernel.wait()
    time.sleep(0.01)  # let the worker enter the kernel
    ticks = 0
    while not done.is_set():
        ticks += 1
    worker.join()
    assert ticks > 1000, f"main thread advanced only {ticks} times during the kernel"
