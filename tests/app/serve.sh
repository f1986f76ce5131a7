#!/usr/bin/env bash
# `attend serve` as a user runs it: a tiny model trained for a few steps is served on a free
# loopback port; curl's replies equal `attend translate` on the same lines and options; the
# API key, a bad model directory, a port in use and a bad flag give one clear error; SIGTERM
# during a request lets it finish and the server exits 0.
set -euo pipefail
ATTEND=$1
# shellcheck source=serve_common.sh
source "$(dirname "$0")/serve_common.sh"
train_numbers run

# A long timeout: the drain test below must not turn into a 504 on a busy machine.
start -m numbers="$dir/run" --threads 2 --timeout 600
curl -sf "$(url /health)" | grep -q '"status":"ok"' || fail "/health"
curl -sf "$(url /v1/models)" | grep -q '"id":"numbers"' || fail "/v1/models"

# Replies equal translate's, for beam search and for sampling.
printf 'one two three\nforty five\nseven hundred and six\n' > "$dir/in.txt"
for opts in "--beam 4" "--beam 1" "--sample --seed 3"; do
  "$ATTEND" translate -m "$dir/run" -i "$dir/in.txt" $opts > "$dir/want.txt"
  json='{"text": ["one two three", "forty five", "seven hundred and six"]'
  case "$opts" in
    "--beam 4") json+=', "beam": 4}' ;;
    "--beam 1") json+=', "beam": 1}' ;;
    *) json+=', "sample": true, "seed": 3}' ;;
  esac
  curl -sf -H 'Content-Type: application/json' -d "$json" "$(url /v1/translate)" > "$dir/reply.json" ||
    fail "translate ($opts)"
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print("\n".join(t[0]["text"] for t in r["translations"]))' "$dir/reply.json" > "$dir/got.txt"
  diff "$dir/want.txt" "$dir/got.txt" > /dev/null || fail "reply differs from translate ($opts)"
done

# Errors are JSON with the right status.
code=$(curl -s -o "$dir/err.json" -w '%{http_code}' -d '{"text": "a", "beam": 0}' "$(url /v1/translate)")
[[ $code == 400 ]] && grep -q '"code":"bad_request"' "$dir/err.json" || fail "bad beam gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"text": "a", "model": "x"}' "$(url /v1/translate)")
[[ $code == 404 ]] || fail "unknown model gave $code"

# SIGTERM while a request decodes: the request is answered, the server exits 0.
long='{"text": ['$(for i in $(seq 1 40); do printf '"one two three %d",' $i; done)'"four"],'
long+=' "beam": 8, "min_length": 150, "max_extra": 200}'
curl -s -o "$dir/late.json" -w '%{http_code}' -d "$long" \
  "$(url /v1/translate)" > "$dir/late.code" &
curl_pid=$!
seen=0
for _ in $(seq 1 200); do
  if curl -s "$(url /metrics)" | grep -q '^attend_batch_sentences{model="numbers"} [1-9]'; then
    seen=1; break
  fi
  sleep 0.01
done
[[ $seen -eq 1 ]] || fail "the long request never showed in the batch"
kill -TERM "$server_pid"
status=0; wait "$server_pid" || status=$?
server_pid=""
wait $curl_pid || true
[[ $status -eq 0 ]] || fail "serve exited $status after SIGTERM"
[[ $(cat "$dir/late.code") == 200 ]] || fail "in-flight request got $(cat "$dir/late.code")"
grep -q SIGTERM "$dir/serve.log" || fail "no SIGTERM message"

# API key.
printf 'k3y-%s\n' "$RANDOM" > "$dir/key"
start -m "$dir/run" --api-key-file "$dir/key"
code=$(curl -s -o /dev/null -w '%{http_code}' -d '{"text": "one"}' "$(url /v1/translate)")
[[ $code == 401 ]] || fail "no key gave $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$dir/key")" \
  -d '{"text": "one"}' "$(url /v1/translate)")
[[ $code == 200 ]] || fail "the key gave $code"

# A port in use, a bad model directory, a bad flag: one clear error each, exit status 1 or 2.
status=0; "$ATTEND" serve -m "$dir/run" --port "$port" 2> "$dir/inuse.log" || status=$?
[[ $status -eq 1 ]] && grep -q "cannot listen on 127.0.0.1:$port" "$dir/inuse.log" ||
  fail "port in use: status $status"
kill -TERM "$server_pid"; wait "$server_pid" || true; server_pid=""

mkdir -p "$dir/bad" && echo '{}' > "$dir/bad/config.json" && touch "$dir/bad/model.safetensors"
status=0; "$ATTEND" serve -m broken="$dir/bad" 2> "$dir/bad.log" || status=$?
[[ $status -eq 1 ]] && grep -q "model 'broken'" "$dir/bad.log" || fail "bad model dir: status $status"
[[ $(wc -l < "$dir/bad.log") -eq 1 ]] || fail "bad model dir: more than one line"
status=0; "$ATTEND" serve -m "$dir/run" --port 70000 2> "$dir/flag.log" || status=$?
[[ $status -eq 2 ]] && grep -q -- "--port" "$dir/flag.log" || fail "bad port flag: status $status"
echo "serve: all checks passed"
