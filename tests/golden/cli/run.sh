#!/usr/bin/env bash
# The golden outputs of the command line: run.sh ATTEND MODELS OUT writes, into OUT, what
# `translate`, `generate`, `eval-lm`, `fill-mask` and `score` print for the inputs beside this
# script, with the small models in MODELS (tests/golden/models: mt, lm, mlm). The files in
# expected/ were written by the binary before the one-engine refactoring (commit c82c15d);
# tests/app/golden.sh compares a build's outputs against them (compare.py).
set -euo pipefail
A=$1
M=$2
O=$3
here=$(cd "$(dirname "$0")" && pwd)
src=$here/numbers.src
mkdir -p "$O"
export ATTEND_NUM_THREADS=2
$A translate -m "$M/mt" -i "$src" >"$O/t-beam4.txt"
$A translate -m "$M/mt" -i "$src" --beam 1 >"$O/t-greedy.txt"
$A translate -m "$M/mt" -i "$src" --beam 5 --n-best 3 >"$O/t-nbest.txt"
$A translate -m "$M/mt" -i "$src" --sample --top-p 0.9 --seed 3 >"$O/t-sample.txt"
$A translate -m "$M/mt" -i "$src" --beam 4 --min-length 12 --max-extra 5 >"$O/t-minlen.txt"
$A generate -m "$M/lm" -i "$here/prompts.txt" --max-new 60 --temperature 0 -o "$O/g-greedy.jsonl" 2>/dev/null
$A generate -m "$M/lm" -i "$here/prompts.txt" --max-new 60 --seed 7 --top-k 20 -o "$O/g-sample.jsonl" 2>/dev/null
$A generate -m "$M/lm" -i "$here/prompts.txt" --max-new 60 --seed 7 --top-p 0.8 --temperature 0.7 \
  -o "$O/g-topp.jsonl" 2>/dev/null
$A generate -m "$M/lm" -i "$here/prompts.txt" --max-new 40 --beam 4 -o "$O/g-beam.jsonl" 2>/dev/null
$A generate -m "$M/lm" --prompt "ROMEO:" --max-new 80 --seed 1 >"$O/g-stream.txt" 2>/dev/null
$A eval-lm -m "$M/lm" -i "$here/prompts.txt" --block 32 2>&1 | sed "s|^.*prompts.txt|prompts.txt|" >"$O/evallm.txt"
while IFS= read -r line; do
  $A fill-mask -m "$M/mlm" --top-k 5 "$line"
done <"$here/masked.txt" >"$O/fill-mask.txt"
$A translate -m "$M/mt" -i "$src" --beam 1 >"$O/hyp.txt"
$A score -r "$here/numbers.ref" -i "$O/hyp.txt" -m bleu chrf >"$O/score.txt"
rm "$O/hyp.txt"
