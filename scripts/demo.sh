#!/usr/bin/env bash
# The main job, from a fresh machine: set up, build, train a character-level
# LSTM on text that ships with Python, then sample from it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
python examples/char_lstm.py "$@"
