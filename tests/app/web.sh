#!/usr/bin/env bash
# The web page in a real browser: a tiny numbers model and a tiny character language model are
# trained for a few steps and served; tests/web/page.py drives Debian's headless Chromium through
# Debian's python3-selenium and chromium-driver to translate a sentence (the page must show what
# `attend translate` gives, and draw the attention heatmap) and to stream a greedy generation
# (equal to `attend generate`). Usage: web.sh ATTEND [SCREENSHOT.png]
# Without chromium, chromium-driver or selenium the test skips with a message, except under CI
# (CI=true), where they are installed (scripts/install-deps.sh) and their absence is a failure.
set -euo pipefail
ATTEND=$1
here=$(cd "$(dirname "$0")/../web" && pwd)
# shellcheck source=serve_common.sh
source "$(dirname "$0")/serve_common.sh"
shot=${2:-$dir/page.png}
# The project's virtual environment (scripts/install-deps.sh) when there is one; Debian's python
# otherwise (selenium is Debian's package either way).
python=$here/../../build/venv/bin/python
[[ -x $python ]] || python=/usr/bin/python3
missing=""
"$python" -c 'import selenium' 2> /dev/null || missing="selenium (apt-get install python3-selenium)"
[[ -x ${CHROMEDRIVER:-/usr/bin/chromedriver} ]] || missing="chromedriver (apt-get install chromium-driver)"
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || missing="chromium (apt-get install chromium)"
if [[ -n "$missing" ]]; then
  [[ "${CI:-}" == "true" ]] && fail "missing $missing"
  echo "SKIP: the browser test needs $missing"
  exit 0
fi

train_numbers numbers
for i in $(seq 1 200); do echo "the cat sat on the mat. the dog ran to the log."; done > "$dir/text.txt"
"$ATTEND" train --model.arch decoder_only --model.preset gpt-tiny --model.d_model 32 \
  --model.ffn 64 --model.heads 4 --model.decoder_layers 2 --model.max_positions 64 \
  --data.train_text "$dir/text.txt" --data.block 48 --vocab.type char --train.max_tokens 768 \
  --train.threads 2 --train.max_steps 20 --train.valid_every 20 --train.save_every 20 \
  --train.out "$dir/lm" > "$dir/train-lm.log" 2>&1 || fail "training the language model"

echo "427015" > "$dir/in.txt"
want=$("$ATTEND" translate -m "$dir/numbers" -i "$dir/in.txt")
printf 'the d\n' > "$dir/prompts.txt"
"$ATTEND" generate -m "$dir/lm" -i "$dir/prompts.txt" --max-new 40 --temperature 0 \
  -o "$dir/gen.jsonl" 2> "$dir/generate.log" || fail "attend generate"
completion=$("$python" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["text"], end="")' "$dir/gen.jsonl")

start -m numbers="$dir/numbers" -m shakespeare="$dir/lm" --threads 2
SENTENCE=427015 timeout 120 "$python" "$here/page.py" "http://127.0.0.1:$port/" "$shot" "$want" \
  "the d" "$completion" || fail "the page (see above)"
