#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: set up, lint, build, test.
# It also installs the optional packages (torch, onnx, onnxruntime, ray: one pip
# call, scripts/requirements-optional.txt) so the tests that need them run
# here instead of skipping; a user's `pip install rnncore` needs none of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
echo "== optional packages, so their tests run (scripts/requirements-optional.txt)"
python -m pip install -q -r scripts/requirements-optional.txt

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --no-default-features -- -D warnings
echo "== cargo test (kernels alone, without Python), at every SIMD level"
cargo test --quiet --no-default-features
for level in avx2 scalar; do  # the fallbacks too, on a CPU that has more
    echo "== cargo test, RNNCORE_SIMD=$level"
    RNNCORE_SIMD=$level cargo test --quiet --no-default-features
done
echo "== ruff"
ruff check python tests benches scripts examples
ruff format --check python tests benches scripts examples
echo "== type stub matches the compiled module"
python -m mypy.stubtest rnncore._rnncore
echo "== chromium for the page test (installed only when missing)"
bash scripts/install-browser.sh
echo "== pytest (against the installed wheel)"
RNNCORE_REQUIRE_BROWSER=1 HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider
for level in avx2 scalar; do
    echo "== pytest, kernel tests at RNNCORE_SIMD=$level"
    RNNCORE_SIMD=$level HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider \
        tests/test_kernels.py tests/test_seq2seq_kernel.py tests/test_decode_compiled.py \
        tests/test_min_char_rnn_fused.py tests/test_kernel_threads.py
done
