#!/usr/bin/env bash
# The benchmark programs' flags (bench/args.h): --help prints the usage and exits 0; an
# unknown flag, a missing value, a flag given twice or a malformed number exits 2 naming the
# flag, before any timing starts. usage: bench_args.sh BENCH_DIR
set -uo pipefail
B=$1
fails=0
expect() {  # expect STATUS "substring" command...
  local want_status=$1 want=$2; shift 2
  local out status
  out=$(timeout 60 "$@" 2>&1); status=$?
  if [[ $status -ne $want_status || "$out" != *"$want"* ]]; then
    echo "FAIL (status $status, wanted $want_status): $*"; echo "  wanted: $want"
    echo "$out" | head -3 | sed 's/^/  got: /'; fails=$((fails + 1)); return
  fi
  echo "ok: $*"
}
for prog in attention_scaling decode_throughput train_throughput; do
  expect 0 "usage: $prog" "$B/$prog" --help
  expect 2 "$prog: unknown argument '--sentencs'" "$B/$prog" --sentencs 3
  expect 2 "$prog: missing value after --threads" "$B/$prog" --threads
  expect 2 "$prog: --threads needs a whole number in [0, 1024], got '2x'" "$B/$prog" --threads 2x
  expect 2 "$prog: --threads given twice" "$B/$prog" --threads 1 --threads 2
done
expect 2 "attention_scaling: --max-n needs a whole number in [256, inf], got '100'" \
  "$B/attention_scaling" --max-n 100
expect 2 "decode_throughput: --beam needs a whole number in [1, inf], got '0'" \
  "$B/decode_throughput" --beam 0
expect 2 "train_throughput: --dropout needs a number in [0, 0.99], got 'high'" \
  "$B/train_throughput" --dropout high
expect 0 "usage: serve_load" "$B/serve_load" --help
expect 2 "serve_load: --port is required" "$B/serve_load" --input /dev/null
expect 2 "serve_load: --bad needs a number in [0, 1], got '2'" "$B/serve_load" --port 1 --input /dev/null --bad 2
if [[ -x "$B/http_libs" ]]; then
  expect 2 "http_libs: --lib must be beast or httplib, got 'nginx'" "$B/http_libs" --lib nginx
fi
# A good flag set still runs: one tiny decode, one JSON object out.
expect 0 '"sentences_per_s"' "$B/decode_throughput" --preset tiny --vocab 64 --len 4 --out-len 4 \
  --sentences 2 --warmup 0 --threads 1
[[ $fails -eq 0 ]] || { echo "$fails case(s) failed"; exit 1; }
