"""Resource probes: sizes a user controls never abort the interpreter.

A buffer too large for the machine is :class:`OutOfMemoryError` (a
``MemoryError``), from Python's checks or from the kernels' fallible
allocations; a product of sizes that overflows is the same error, never a
wrapped index or "internal error". The real out-of-memory cases run in a
subprocess under an address-space limit (``RLIMIT_AS``).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnncore.decode import CompiledLM, beam_search, greedy, sample
from rnncore.errors import OutOfMemoryError
from rnncore.models import CharLM, LMConfig

from .conftest import run_cli

LIMIT = 4_000_000_000  # bytes of address space for the subprocesses


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def run_limited(args, cwd):
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=180, preexec_fn=limited
    )


@pytest.fixture(scope="module")
def model():
    return CharLM(LMConfig(vocab_size=7, hidden_size=8, num_layers=2, cell="lstm", seed=1))


huge = st.integers(2**61, 2**80)


@settings(max_examples=25, deadline=None)
@given(length=huge, n=st.integers(1, 3))
def test_huge_sample_lengths_are_out_of_memory(model, length, n):
    for temperature in (0.0, 1.0):
        with pytest.raises(OutOfMemoryError, match="length"):
            sample(model, length=length, num_samples=n, temperature=temperature, seed=0)
    with pytest.raises(OutOfMemoryError, match="length"):
        sample(model, length=2, num_samples=length, seed=0)
    with pytest.raises(OutOfMemoryError, match="length"):
        greedy(model, length=length)


@settings(max_examples=25, deadline=None)
@given(beam=huge, max_length=st.integers(1, 2**70))
def test_huge_beams_are_out_of_memory(model, beam, max_length):
    with pytest.raises(OutOfMemoryError, match="beam_size"):
        beam_search(model, beam_size=beam, max_length=max_length)
    with pytest.raises(OutOfMemoryError, match="max_length"):
        beam_search(model, beam_size=2, max_length=beam)


@settings(max_examples=25, deadline=None)
@given(length=st.integers(2**62, 2**64 - 1), n=st.integers(2, 4))
def test_the_kernel_checks_its_own_products(model, length, n):
    """The compiled loop, called past the Python checks: a named MemoryError (or,
    beyond 64 bits, an OverflowError from the conversion), never a panic."""
    fast = CompiledLM(model)
    log_probs = np.full((n, 7), -np.log(7.0))
    h, c = fast.initial_state(n)
    args = (log_probs, h, c, np.zeros(0), length, 0.0, None, None, None)
    with pytest.raises(MemoryError, match="length"):
        fast._decoder.sample(*args, top_p_slack=1e-9)
    with pytest.raises(OutOfMemoryError, match="length"):
        fast.sample_loop(
            log_probs,
            (h, c),
            np.zeros(0),
            length=length,
            temperature=0.0,
            top_k=None,
            top_p=None,
            stop_id=None,
            top_p_slack=1e-9,
        )


def test_gathering_ten_million_rows_is_a_memory_error(tmp_path):
    """The decoder's gather of ``rows``, under a memory limit, in a subprocess."""
    code = textwrap.dedent(
        """
        import numpy as np
        from rnncore.decode import CompiledLM
        from rnncore.models import CharLM, LMConfig
        m = CharLM(LMConfig(vocab_size=5, hidden_size=64, num_layers=2, cell="lstm"))
        fast = CompiledLM(m)
        state = fast.initial_state(1)
        rows = np.zeros(10**7, dtype=np.int64)
        ids = np.zeros(10**7, dtype=np.int64)
        try:
            fast.step(ids, state, rows=rows)
        except MemoryError as err:
            print(type(err).__name__, err)
        """
    )
    done = run_limited([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("OutOfMemoryError"), done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--length", "10", "--beam", "100000000"),
        ("--length", "1000000000"),
        ("--length", "1000000", "--num-samples", "10000"),
    ],
)
def test_cli_out_of_memory_is_one_line_and_status_2(tiny_run, args):
    cmd = [sys.executable, "-m", "rnncore", "sample", "--checkpoint", str(tiny_run), *args]
    done = run_limited(cmd, tiny_run.parent)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1
    assert done.stderr.startswith("rnncore: error:") and "memory" in done.stderr


def test_huge_length_on_the_command_line(tiny_run):
    done = run_cli("sample", "--checkpoint", tiny_run, "--length", 2**70, cwd=tiny_run.parent)
    assert done.returncode == 2 and "length" in done.stderr and "Traceback" not in done.stderr


@settings(max_examples=20, deadline=None)
@given(big=st.integers(2**45, 2**70), small=st.integers(1, 8))  # beyond any address space
def test_layers_and_states_too_large_for_memory_are_named(big, small):
    """Constructors and initial states: OutOfMemoryError naming the parameter or
    argument, whether the size overflows or merely exceeds the machine."""
    from rnncore import nn

    cases = [
        (lambda: nn.LSTM(small, big), "weight_ih_l0"),
        (lambda: nn.GRU(big, small), "weight_ih_l0"),
        (lambda: nn.RNNCell(small, big), "weight_ih"),
        (lambda: nn.Linear(big, big), "weight"),
        (lambda: nn.Embedding(big, small), "weight"),
        (lambda: CharLM(LMConfig(vocab_size=5, hidden_size=8)).initial_state(big), "N"),
        (lambda: CompiledLM(CharLM(LMConfig(vocab_size=5, hidden_size=8))).initial_state(big), "N"),
    ]
    for make, name in cases:
        with pytest.raises(OutOfMemoryError, match=name):
            make()


def test_attention_keys_too_large_for_memory_are_a_memory_error(tmp_path):
    """The key projection (N, S, A) of a small memory and a wide attention."""
    code = textwrap.dedent(
        """
        import numpy as np
        from rnncore import nn
        dec = nn.AttentionDecoder(1, 1, 1, mode="gru", attention_size=2_000_000)
        y, memory = np.zeros((1, 100, 1), np.float32), np.zeros((100, 5000, 1), np.float32)
        try:
            dec(y, memory)
        except MemoryError as err:
            print(type(err).__name__, err)
        """
    )
    done = run_limited([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("OutOfMemoryError keys"), done.stdout


def test_int_arrays_too_large_for_memory_are_a_memory_error(tmp_path):
    """The binding's integer reader (ids, rows) under a 1 GB limit, and a
    broadcast int array whose int64 copy cannot be made: MemoryError, named."""
    code = textwrap.dedent(
        """
        import numpy as np
        from rnncore.decode import CompiledLM
        from rnncore.models import CharLM, LMConfig
        fast = CompiledLM(CharLM(LMConfig(vocab_size=5, hidden_size=8)))
        n = 30_000_000
        for ids, rows in (
            (np.zeros(n, np.int64), np.zeros(n, np.int64)),
            (np.broadcast_to(np.int32(0), (10**9,)), np.broadcast_to(np.int32(0), (10**9,))),
        ):
            try:
                fast.step(ids, fast.initial_state(1), rows=rows)
            except MemoryError as err:
                print(type(err).__name__, str(err)[:40])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("OutOfMemoryError") for line in lines), lines
