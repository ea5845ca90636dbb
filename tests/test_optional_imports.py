"""Without torch, onnx or onnxruntime: rnncore and its command line work, and the
optional parts fail with an ImportError that says what to install."""

from __future__ import annotations

import subprocess
import sys

BLOCK = "import sys; sys.modules.update(torch=None, onnx=None, onnxruntime=None); "


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=120
    )


def test_rnncore_and_its_cli_import_without_the_optional_packages():
    done = run("import rnncore, rnncore.cli, rnncore.export; print('ok')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_rnncore_torch_without_torch_says_what_to_install():
    done = run("import rnncore.torch")
    assert done.returncode != 0
    assert "ImportError: rnncore.torch needs PyTorch" in done.stderr
    assert "pip install rnncore[torch]" in done.stderr


def test_onnx_export_without_onnx_says_what_to_install():
    code = "from rnncore import nn; from rnncore.export import to_onnx; to_onnx(nn.GRU(2, 3), 'x')"
    done = run(code)
    assert done.returncode != 0
    assert "pip install rnncore[onnx]" in done.stderr
