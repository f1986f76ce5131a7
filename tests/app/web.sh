#!/usr/bin/env bash
# The web page in a real browser: a tiny numbers model and a tiny character language model are
# trained for a few steps and served; tests/web/page.mjs drives Debian's headless Chromium through
# puppeteer-core (tests/web/node_modules, from `npm ci`) to translate a sentence (the page must show
# what `attend translate` gives, and draw the attention heatmap) and to stream a greedy generation
# (equal to `attend generate`). Usage: web.sh ATTEND [SCREENSHOT.png]
# Without chromium or the node modules the test skips with a message, except under CI (CI=true),
# where they are installed (scripts/install-deps.sh) and their absence is a failure.
set -euo pipefail
ATTEND=$1
here=$(cd "$(dirname "$0")/../web" && pwd)
dir=$(mktemp -d)
shot=${2:-$dir/page.png}
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }
missing=""
command -v node > /dev/null || missing="node (apt-get install nodejs)"
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || missing="chromium (apt-get install chromium)"
[[ -d "$here/node_modules/puppeteer-core" ]] || missing="puppeteer-core (npm ci --prefix tests/web)"
if [[ -n "$missing" ]]; then
  [[ "${CI:-}" == "true" ]] && fail "missing $missing"
  echo "SKIP: the browser test needs $missing"
  exit 0
fi

"$ATTEND" train --data.generate numbers-en --data.generate_train 800 --data.generate_valid 20 \
  --model.preset tiny --model.d_model 32 --model.ffn 64 --model.heads 4 \
  --model.encoder_layers 2 --model.decoder_layers 2 --vocab.size 100 \
  --vocab.split_digits true --train.max_tokens 400 --train.threads 2 --train.max_steps 20 \
  --train.valid_every 20 --train.save_every 20 --train.out "$dir/numbers" > "$dir/train.log" 2>&1 ||
  fail "training the translation model"
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
completion=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["text"], end="")' "$dir/gen.jsonl")

"$ATTEND" serve --port 0 -m numbers="$dir/numbers" -m shakespeare="$dir/lm" --threads 2 \
  > "$dir/serve.out" 2> "$dir/serve.log" &
server_pid=$!
port=""
for _ in $(seq 1 200); do
  port=$(sed -nE 's#^listening on http://127\.0\.0\.1:([0-9]+)$#\1#p' "$dir/serve.out")
  [[ -n "$port" ]] && break
  kill -0 "$server_pid" 2>/dev/null || fail "serve exited at start"
  sleep 0.05
done
[[ -n "$port" ]] || fail "serve did not say where it listens"
SENTENCE=427015 timeout 120 node "$here/page.mjs" "http://127.0.0.1:$port/" "$shot" "$want" \
  "the d" "$completion" || fail "the page (see above)"
