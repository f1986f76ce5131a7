#!/usr/bin/env bash
# attend quantize and --precision int8 end to end: a trained model quantized into a new model
# directory (smaller, config.json says int8) translates exactly as the fp32 model quantized at
# load does (translate --precision int8), in attend translate and through attend serve; bad
# input is one clear message and writes nothing (an existing output, an int8 model given to
# quantize, to average, or to translate with another precision, an unknown precision).
set -euo pipefail
ATTEND=$1
source "$(dirname "$0")/serve_common.sh"

train_numbers run
model="$dir/run/best"
[[ -f "$model/model.safetensors" ]] || model="$dir/run"
"$ATTEND" quantize -m "$model" -o "$dir/q8" > "$dir/quantize.log" 2>&1 || fail "quantize"
grep -q "int8 linear layers" "$dir/quantize.log" || fail "quantize did not report"
grep -q '"weights": "int8"' "$dir/q8/config.json" || fail "config.json does not say int8"
[[ ! -e "$dir/q8.tmp" ]] || fail "a temporary directory was left"
fp32_bytes=$(stat -c %s "$dir/run/best/model.safetensors" 2>/dev/null ||
             stat -c %s "$(ls -d "$dir"/run/checkpoints/step-* | tail -1)/model.safetensors")
int8_bytes=$(stat -c %s "$dir/q8/model.safetensors")
(( int8_bytes < fp32_bytes )) || fail "the int8 model ($int8_bytes bytes) is not smaller ($fp32_bytes)"

printf '12\n7 3\n450\n1 2 3\n' > "$dir/src.txt"
"$ATTEND" translate -m "$dir/run" --precision int8 --beam 4 -i "$dir/src.txt" -o "$dir/at_load.txt" \
  2> "$dir/t1.log" || fail "translate --precision int8"
"$ATTEND" translate -m "$dir/q8" --beam 4 -i "$dir/src.txt" -o "$dir/stored.txt" \
  2> "$dir/t2.log" || fail "translate the int8 model"
cmp -s "$dir/at_load.txt" "$dir/stored.txt" || fail "the stored int8 model translates differently"
[[ $(wc -l < "$dir/stored.txt") -eq 4 ]] || fail "expected 4 translations"

# The server runs the stored int8 model and says so.
start -m "q8=$dir/q8"
curl -sf "$(url /v1/models)" | grep -q '"precision":"int8"' || fail "/v1/models precision"
got=$(curl -sf -H 'Content-Type: application/json' -d '{"text": "7 3", "beam": 4}' \
  "$(url /v1/translate)" | sed -nE 's/.*"text":"([^"]*)".*/\1/p')
[[ "$got" == "$(sed -n 2p "$dir/stored.txt")" ]] || fail "serve gave '$got'"
kill "$server_pid"; wait "$server_pid" || true; server_pid=""

expect() {  # expect "substring" command...
  local want=$1; shift
  local out status
  out=$("$@" 2>&1) && status=0 || status=$?
  [[ $status -ne 0 && $status -le 128 ]] || fail "status $status: $*: $out"
  [[ "$out" == *"$want"* ]] || fail "$*: wanted '$want', got: $out"
  echo "ok: $want"
}
sum_before=$(cat "$dir"/q8/* | md5sum)
expect "-o $dir/q8: already exists" "$ATTEND" quantize -m "$model" -o "$dir/q8"
[[ "$(cat "$dir"/q8/* | md5sum)" == "$sum_before" ]] || fail "an existing output was changed"
expect "is already an int8 model" "$ATTEND" quantize -m "$dir/q8" -o "$dir/q8again"
[[ ! -e "$dir/q8again" ]] || fail "a refused quantize wrote its output"
expect "--precision fp32: $dir/q8 is an int8 model" \
  "$ATTEND" translate -m "$dir/q8" --precision fp32 -i "$dir/src.txt"
expect "--precision" "$ATTEND" translate -m "$model" --precision fp16 -i "$dir/src.txt"
expect "--precision" "$ATTEND" quantize -m "$model" -o "$dir/q4" --precision int4
expect "is an int8 model" "$ATTEND" average -o "$dir/avg" "$dir/q8" "$model"
# The reverse: config.json says int8, the weights are fp32 (copied without the checksums).
mkdir "$dir/fake8"
cp "$model/model.safetensors" "$model/tokenizer.model" "$dir/fake8/"
sed 's/^{/{\n  "weights": "int8",/' "$model/config.json" > "$dir/fake8/config.json"
expect "holds fp32 weights, but the directory's config.json says its weights are int8" "$ATTEND" translate -m "$dir/fake8" -i "$dir/src.txt"
sed 's/^{/{\n  "weights": "int4",/' "$model/config.json" > "$dir/fake8/config.json"
expect "\"weights\" must be \"fp32\" or \"int8\"" "$ATTEND" translate -m "$dir/fake8" -i "$dir/src.txt"
echo "quantize: all checks passed"
