#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: set up, lint, build, test.
# With --optional, also install torch, onnx and onnxruntime (one pip call,
# scripts/requirements-optional.txt) so the tests that need them run, not skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
if [[ "${1:-}" == "--optional" ]]; then
    echo "== optional packages (torch, onnx, onnxruntime)"
    python -m pip install -q -r scripts/requirements-optional.txt
fi

echo "== cargo fmt / clippy"
cargo fmt --check
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --all-targets --no-default-features -- -D warnings
echo "== cargo test (kernels alone, without Python)"
cargo test --quiet --no-default-features
echo "== ruff"
ruff check python tests benches scripts
ruff format --check python tests benches scripts
echo "== type stub matches the compiled module"
python -m mypy.stubtest rnncore._rnncore
echo "== pytest (against the installed wheel)"
HYPOTHESIS_PROFILE=ci python -m pytest -q -p no:cacheprovider
