"""Fixtures shared by the test suite.

``backend`` runs a test once per kernel module: the NumPy reference and the
compiled kernels. A missing compiled module is a failure, not a skip: the package
is not working without it (select the reference alone with ``-k reference``).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
from hypothesis import settings

# CI runs the property tests derandomized: the same examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

BACKENDS = {"reference": "rnncore.reference", "rust": "rnncore._rnncore"}


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    """The kernel module under test: ``rnncore.reference`` or ``rnncore._rnncore``."""
    return importlib.import_module(BACKENDS[request.param])


@pytest.fixture
def rng():
    """A fresh, seeded generator: every test draws the same numbers on every run."""
    return np.random.default_rng(20240601)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs for the tests that need one (skipped
    without Ray). Its files live in a fresh temporary directory; at the end Ray
    is shut down, every process started under that directory must be gone
    within 30 s, and the directory is removed."""
    import shutil
    import tempfile
    import time

    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.fail("Ray is already running in the test process")
    root = tempfile.mkdtemp(prefix="rnr-")  # short: Ray's socket paths must fit in 107 bytes
    context = ray.init(
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=root,
        object_store_memory=128 << 20,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield context
    finally:
        ray.shutdown()
        deadline = time.monotonic() + 30
        while (left := _processes_using(root)) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
        assert not left, f"Ray left processes behind: {left}"


def _processes_using(root: str) -> list[int]:
    """Pids of live processes whose command line mentions ``root``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[-1].split()[0] == b"Z"
        except OSError:
            continue
        if root.encode() in cmdline and not zombie:
            pids.append(int(entry))
    return pids
