"""The page of ``rnncore inspect`` in a real headless browser (Debian's ``chromium``).

Chromium loads the page from disk, runs its script and prints the DOM
(``--dump-dom``); the test checks that the text is there as one coloured span
per character, and that choosing another unit (the ``#cell=`` fragment sets
the selector and fires its change event, as a click would) changes the
colours. It also takes a screenshot. Skipped when chromium is missing, except
in CI (``RNNCORE_REQUIRE_BROWSER=1``, set by ``scripts/test.sh``, which
installs it).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess

import pytest

from rnncore.data.vocab import CharVocab
from rnncore.diagnostics.report import write_report
from rnncore.models import CharLM, LMConfig

TEXT = 'He said "to be, or not to be" (twice) at 10 o\'clock;\n  # and then "left"\n' * 12


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("RNNCORE_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required here (bash scripts/install-browser.sh installs it)")
        pytest.skip("chromium is not installed (bash scripts/install-browser.sh)")
    return exe


def run_browser(exe, profile, *args):
    cmd = [
        exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args,
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def text_spans(dom):
    """``[(character, background colour)]`` of the spans in ``<div id="text">``."""
    box = re.search(r'<div id="text"[^>]*>(.*?)</div>', dom, re.S)
    assert box, "no text box in the DOM"
    spans = re.findall(
        r'<span data-t="\d+" style="background-color: ([^"]+);">(.*?)</span>', box[1], re.S
    )
    return [(html.unescape(ch), colour) for colour, ch in spans]


def test_page_in_a_real_browser(tmp_path):
    exe = chromium()
    vocab = CharVocab.from_text(TEXT)
    model = CharLM(LMConfig(vocab_size=len(vocab), hidden_size=10, num_layers=2, seed=0))
    write_report(model, vocab, TEXT, tmp_path / "page", page_chars=400)
    url = (tmp_path / "page" / "index.html").as_uri()
    profile = tmp_path / "profile"

    first = run_browser(exe, profile, "--dump-dom", url + "#cell=tanh(c):0:3")
    spans = text_spans(first)
    shown = TEXT[len(TEXT) // 2 :][:400]
    assert "".join(c for c, _ in spans) == shown  # every character, in order
    assert len({c for _, c in spans}) > 10  # coloured by value, not all alike
    assert re.search(r'<code id="current">tanh\(c\):0:3</code>', first)

    second = run_browser(exe, profile, "--dump-dom", url + "#cell=h:1:7")
    assert re.search(r'<code id="current">h:1:7</code>', second)
    other = text_spans(second)
    assert [c for c, _ in other] == [c for c, _ in spans]
    assert [c for _, c in other] != [c for _, c in spans]  # the selector changed the colours

    shot = tmp_path / "shot.png"
    run_browser(exe, profile, "--window-size=1200,900", f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
