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
