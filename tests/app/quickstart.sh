#!/usr/bin/env bash
# The README's quick start, end to end: train on the generated numbers corpus with
# configs/quickstart.yaml, require >= 95% exact match on the held-out validation numbers
# (numbers that never occur in training), then translate those same held-out inputs through
# `attend translate` and require >= 95% of them to equal their spelling.
set -euo pipefail
ATTEND=$1
ROOT=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$ROOT"
start=$(date +%s)
"$ATTEND" train configs/quickstart.yaml --train.out "$dir/run" | grep -v "^step"
echo "training took $(( $(date +%s) - start )) s"
exact=$(grep '"valid_exact"' "$dir/run/train.jsonl" | tail -1 | sed -E 's/.*"valid_exact":([0-9.eE+-]+).*/\1/')
awk -v e="$exact" 'BEGIN { exit !(e >= 0.95) }' || { echo "held-out exact match $exact < 0.95"; exit 1; }
"$ATTEND" translate -m "$dir/run" -i "$dir/run/valid.src" -o "$dir/hyp.txt"
total=$(wc -l < "$dir/run/valid.ref")
same=$(paste -d '\t' "$dir/run/valid.ref" "$dir/hyp.txt" | awk -F '\t' '$1 == $2' | wc -l)
echo "attend translate: $same of $total held-out numbers exactly right"
(( total >= 100 )) || { echo "held-out set too small ($total)"; exit 1; }
(( same * 100 >= total * 95 )) || { echo "translate exact match below 95%"; exit 1; }
# (head on the inputs, not on the pipe: under pipefail an early-closing head fails paste)
paste -d '\t' <(head -5 "$dir/run/valid.src") <(head -5 "$dir/hyp.txt")
