#!/usr/bin/env bash
# Set up a fresh machine for rnncore: a virtual environment in .venv with the
# Python tools, and rnncore built from this checkout (release wheel) and
# installed into it. Safe to run again; it rebuilds the extension.
#
# Needs: python3 (>= 3.9) with venv, and a Rust toolchain (cargo >= 1.85 with
# rustfmt and clippy for the checks). Everything else comes from PyPI/crates.io.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; rnncore needs a Rust toolchain (1.85 or newer) to build" >&2
    exit 1
fi
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    echo "setup: python3 lacks venv/ensurepip; installing python3-venv" >&2
    apt-get update -qq && apt-get install -y -qq python3-venv
fi

python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -r scripts/requirements-dev.txt

rm -rf target/wheels
maturin build --release --quiet --out target/wheels
python -m pip install -q --force-reinstall --no-deps target/wheels/rnncore-*.whl
python -m pip install -q target/wheels/rnncore-*.whl  # its runtime dependencies
python -c "import rnncore, rnncore._rnncore as k; print('rnncore', k.__version__, 'installed in .venv')"
