#!/usr/bin/env bash
# Everything CI checks, from a fresh machine: set up, lint, build, test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
# Ray, for the tests of rnncore.distributed (the `ray` extra); from pip's cache after the first run.
python -m pip install -q "ray>=2.9"

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
