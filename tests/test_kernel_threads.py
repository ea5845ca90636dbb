"""The kernels release the GIL, and concurrent calls give the sequential results."""

from __future__ import annotations

import sys
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
    """While one thread is inside a kernel call, Python code runs in another:
    the main thread stamps the clock in a loop, and some stamp must fall
    strictly between a call's start and end. With the GIL held during the call
    none could (the switch interval is raised so that the worker is not made to
    yield between a stamp of its own and the call). Calls repeat until a stamp
    lands inside one, so a loaded machine only makes the test slower."""
    case = make_case("lstm", 400, 64, 128, 128, seed=1)
    spans: list[tuple[float, float]] = []
    stamps: list[float] = []
    stop = threading.Event()

    def run() -> None:
        for _ in range(50):
            t0 = time.perf_counter()
            case.forward(_rnncore)
            spans.append((t0, time.perf_counter()))
            if stop.is_set():
                break
        stop.set()

    def inside() -> bool:
        return any(a < s < b for a, b in list(spans) for s in stamps)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        worker = threading.Thread(target=run)
        worker.start()
        while not stop.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.0005)  # lets the worker take the GIL back after a call
            if len(spans) > 1 and inside():
                stop.set()
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert inside(), f"no Python step ran during any of {len(spans)} kernel calls"
