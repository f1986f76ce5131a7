# Shared by tests/app/serve.sh and tests/app/web.sh (sourced, after ATTEND is set): a scratch
# directory removed at exit together with any server left running, fail (prints the logs),
# a tiny numbers model trained for a few steps, and a server started on a free loopback port.
dir=$(mktemp -d)
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; for f in "$dir"/*.log; do echo "== $f"; cat "$f"; done; exit 1; }

# Trains a tiny digits-to-words translation model for 20 steps into $dir/$1.
train_numbers() {
  "$ATTEND" train --data.generate numbers-en --data.generate_train 800 --data.generate_valid 20 \
    --model.preset tiny --model.d_model 32 --model.ffn 64 --model.heads 4 \
    --model.encoder_layers 2 --model.decoder_layers 2 --vocab.size 100 \
    --vocab.split_digits true --train.max_tokens 400 --train.threads 2 --train.max_steps 20 \
    --train.valid_every 20 --train.save_every 20 --train.out "$dir/$1" > "$dir/train.log" 2>&1 ||
    fail "training"
}

# Starts `attend serve ARGS...` in the background on a free port; sets server_pid and port.
start() {
  # The files exist before the server starts: the redirections below happen in the background
  # child, and a sed that ran first would fail on a missing file (and end the script, set -e).
  : > "$dir/serve.out"
  : > "$dir/serve.log"
  "$ATTEND" serve --port 0 "$@" > "$dir/serve.out" 2> "$dir/serve.log" &
  server_pid=$!
  for _ in $(seq 1 200); do
    port=$(sed -nE 's#^listening on http://127\.0\.0\.1:([0-9]+)$#\1#p' "$dir/serve.out")
    [[ -n "$port" ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || fail "serve exited at start"
    sleep 0.05
  done
  fail "serve did not say where it listens"
}
url() { echo "http://127.0.0.1:$port$1"; }
