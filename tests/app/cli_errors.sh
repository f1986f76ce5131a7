#!/usr/bin/env bash
# Bad input to the CLI: each case must exit non-zero with one clear message naming the culprit
# (file, line, key or count), and never crash.
set -uo pipefail
ATTEND=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
expect() {  # expect "substring" command...
  local want=$1; shift
  local out status
  out=$("$@" 2>&1); status=$?
  if [[ $status -eq 0 || $status -gt 128 ]]; then
    echo "FAIL (status $status): $*"; echo "$out" | tail -3; fails=$((fails + 1)); return
  fi
  if [[ "$out" != *"$want"* ]]; then
    echo "FAIL (message): $*"; echo "  wanted: $want"; echo "  got: $out"; fails=$((fails + 1)); return
  fi
  echo "ok: $want"
}
printf 'one\ntwo\nthree\n' > "$dir/s.txt"
printf 'eins\nzwei\n' > "$dir/t.txt"
printf 'eins\nzw\xc3\x28ei\ndrei\n' > "$dir/bad.txt"
printf 'model:\n  d_modle: 4\n' > "$dir/typo.yaml"
expect "has 3 lines but $dir/t.txt has 2 lines" \
  "$ATTEND" train --data.train_src "$dir/s.txt" --data.train_tgt "$dir/t.txt" --train.out "$dir/r"
expect "$dir/bad.txt:2: invalid UTF-8" \
  "$ATTEND" train --data.train_src "$dir/s.txt" --data.train_tgt "$dir/bad.txt" --train.out "$dir/r"
expect "$dir/missing.en: cannot open" \
  "$ATTEND" train --data.train_src "$dir/missing.en" --data.train_tgt "$dir/t.txt" --train.out "$dir/r"
expect "$dir/typo.yaml:2: unknown config key 'model.d_modle'" "$ATTEND" train "$dir/typo.yaml"
expect "key 'model.heads' expects an integer" "$ATTEND" train --model.heads four
expect "unknown option or key '--model.depth'" "$ATTEND" train --model.depth 3
expect "model.preset: unknown preset 'huge'" "$ATTEND" train --model.preset huge --data.generate numbers-en --data.generate_train 50 --train.out "$dir/r"
expect "--resume: $dir/none holds no checkpoint" "$ATTEND" train --resume --train.out "$dir/none"
expect "$dir/nomodel: no such model directory" "$ATTEND" translate -m "$dir/nomodel"
mkdir -p "$dir/partial" && : > "$dir/partial/model.safetensors"
expect "$dir/partial: missing config.json" "$ATTEND" translate -m "$dir/partial"
expect "average: no checkpoints given" "$ATTEND" average -o "$dir/avg"
expect "unknown command 'trian'" "$ATTEND" trian
tiny=(--data.generate numbers-en --data.generate_train 60 --data.generate_valid 5 --model.preset tiny
      --model.d_model 16 --model.ffn 16 --model.encoder_layers 1 --model.decoder_layers 1
      --vocab.size 40 --train.max_steps 1 --train.out "$dir/run")
"$ATTEND" train "${tiny[@]}" > /dev/null || { echo "FAIL: tiny run"; fails=$((fails + 1)); }
expect "$dir/run already holds a run (continue it with --resume" "$ATTEND" train "${tiny[@]}"
printf 'garbage' > "$dir/run/best/model.safetensors"
expect "$dir/run/best: model.safetensors is corrupt" "$ATTEND" translate -m "$dir/run"
printf 'the cat is on the mat\nhello , world !\n' > "$dir/ref.txt"
expect "score: $dir/ref.txt has 2 lines but the hypotheses (<stdin>) have 1 lines" \
  bash -c "echo one | '$ATTEND' score -r '$dir/ref.txt'"
got=$(printf 'the cat sat on the mat\nhello , world !\n' | "$ATTEND" score -r "$dir/ref.txt" --tokenize none --json)
[[ "$got" == '{"bleu": '* ]] || { echo "FAIL: score --json printed: $got"; fails=$((fails + 1)); }
[[ $fails -eq 0 ]] || { echo "$fails case(s) failed"; exit 1; }
