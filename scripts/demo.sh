#!/usr/bin/env bash
# The main job, from a fresh machine: set up and build (scripts/setup.sh), train
# a character-level LSTM for a few minutes on the English help text that ships
# with every CPython (no download), sample from it, then write the page of what
# its cells do (runs/demo/inspect/index.html, `rnncore inspect`).
#
#   bash scripts/demo.sh                 # about 3 minutes of training
#   MINUTES=10 bash scripts/demo.sh      # longer
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. .venv/bin/activate
OUT=runs/demo
rm -rf "$OUT"
rnncore train --model lstm --rnn-size 256 --num-layers 2 --embedding-size 64 --dropout 0.1 \
    --minutes "${MINUTES:-3}" --eval-every 250 --seed 0 --out "$OUT"
echo
echo "== a sample (temperature 0.7), from $OUT/best"
rnncore sample --checkpoint "$OUT" --length 600 --temperature 0.7 --prime "The " --seed 1
echo
echo "== what the cells do, on the last 46,000 characters of the text (not trained on)"
python -c "from rnncore.corpus import default_corpus; print(default_corpus()[-46000:], end='')" \
    > "$OUT/heldout.txt"
rnncore inspect --checkpoint "$OUT/latest" --file "$OUT/heldout.txt" --out "$OUT/inspect"
