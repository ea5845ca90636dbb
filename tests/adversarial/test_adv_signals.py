"""Signal probes: Ctrl-C or SIGTERM saves the step in progress, a second stops at once.

The run ends after the step it is in, writes ``latest/`` atomically, prints
one line saying how to continue, and exits with status 130; resuming from that
checkpoint is exact. Checked on a real process with real signals.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from rnncore.checkpoint import load_checkpoint
from rnncore.train.interrupt import StopRequest, stop_requests
from rnncore.train.metrics import read_metrics

from .conftest import TINY, run_cli
from .test_adv_paths import tree


def last_logged_step(path):
    try:
        rows = read_metrics(path)
    except (OSError, ValueError, KeyError):
        return -1  # not written yet
    return rows[-1]["step"] if rows else -1


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_latest_and_exits_130(tiny_run, tmp_path, signum):
    (tmp_path / "text.txt").write_text((tiny_run.parent / "text.txt").read_text())
    args = ["--data", "text.txt", *TINY, "--max-steps", "1000000", "--checkpoint-every", "100000"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "rnncore", "train", *args, "--out", "run"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 90
    while last_logged_step(metrics) < 30 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    seen = last_logged_step(metrics)
    assert seen >= 30
    assert not (tmp_path / "run" / "latest").exists()  # nothing saved on schedule yet
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--init-from" in err
    saved = load_checkpoint(tmp_path / "run" / "latest")
    at = saved.state["trainer"]["step"]
    assert at >= seen  # every step trained before the signal is kept
    assert f"stopped at step {at} " in out
    resumed = run_cli(
        "train", "--init-from", "run", "--data", "text.txt", "--max-steps", at + 3, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "run" / "latest").state["trainer"]["step"] == at + 3


def test_the_second_signal_stops_at_once():
    before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
    with stop_requests() as request:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between bytecodes of this thread
        assert request.reason == "interrupted" and request.signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1.0)
    assert [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)] == before  # put back


def test_outside_the_main_thread_nothing_is_installed():
    seen, before = [], signal.getsignal(signal.SIGINT)

    def run():
        request = StopRequest()
        request.install()
        seen.append(signal.getsignal(signal.SIGINT))
        request.restore()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [before]


def test_an_interrupted_python_fit_returns_and_saves(tmp_path):
    """Trainer.fit itself: a SIGINT during the loop ends it with "interrupted"."""
    import numpy as np

    from rnncore.data import CharVocab, StreamBatcher
    from rnncore.models import CharLM, LMConfig
    from rnncore.optim import create
    from rnncore.train import TrainConfig, Trainer

    text = "hello world, " * 400
    vocab = CharVocab.from_text(text)
    model = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=8, seed=0))
    batcher = StreamBatcher(np.asarray(vocab.encode(text)), 4, 8, (0.9, 0.1, 0.0))
    config = TrainConfig(max_steps=10**6, eval_every=0, out_dir=str(tmp_path), progress=False)
    trainer = Trainer(
        model, create("adam", dict(model.named_parameters()), 1e-3), batcher, config, vocab=vocab
    )
    step = trainer.train_step

    def train_step():
        if trainer.step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return step()

    trainer.train_step = train_step
    result = trainer.fit()
    assert result.stop_reason == "interrupted" and result.final_val_loss is None
    assert 8 <= result.steps <= 9
    assert load_checkpoint(tmp_path / "latest").state["trainer"]["step"] == result.steps
    assert ".rnncore-run" in tree(tmp_path)


@pytest.mark.parametrize("during", ["final validation", "scheduled validation"])
def test_a_signal_during_a_validation_pass_ends_the_run(tmp_path, during):
    """A stop requested while the model reads the validation part (which can
    take long on a large corpus) ends the run there, latest/ saved."""
    import numpy as np

    from rnncore.data import CharVocab, StreamBatcher
    from rnncore.models import CharLM, LMConfig
    from rnncore.optim import create
    from rnncore.train import TrainConfig, Trainer

    text = "hello world, " * 400
    vocab = CharVocab.from_text(text)
    model = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=8, seed=0))
    batcher = StreamBatcher(np.asarray(vocab.encode(text)), 2, 4, (0.4, 0.3, 0.3))
    every = 3 if during == "scheduled validation" else 0
    config = TrainConfig(max_steps=6, eval_every=every, out_dir=str(tmp_path), progress=False)
    optimizer = create("adam", dict(model.named_parameters()), 1e-3)
    trainer = Trainer(model, optimizer, batcher, config, vocab=vocab)
    chunk, calls = batcher.chunk, []

    def chunk_then_signal(split, k):
        if split != "train":  # (training batches are cut here too)
            calls.append(split)
            if len(calls) == 2:  # inside the first validation pass
                os.kill(os.getpid(), signal.SIGINT)
        return chunk(split, k)

    batcher.chunk = chunk_then_signal
    result = trainer.fit()
    assert result.stop_reason == "interrupted" and result.test_loss is None
    assert "test" not in calls and len(calls) < batcher.num_chunks("val")
    assert result.steps == (3 if every else 6)
    assert load_checkpoint(tmp_path / "latest").state["trainer"]["step"] == result.steps
