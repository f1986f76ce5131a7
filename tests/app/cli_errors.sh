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
expect "train.device cuda: this build has no CUDA backend" "$ATTEND" train --train.device cuda \
  --data.generate numbers-en --data.generate_train 50 --train.out "$dir/r"
expect "train.device: expected cpu, cuda or cuda:N, got 'tpu'" "$ATTEND" train --train.device tpu \
  --data.generate numbers-en --data.generate_train 50 --train.out "$dir/r"
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
printf 'the cat is on the mat\nhello , world \xff\n' > "$dir/badref.txt"
expect "score: $dir/badref.txt:2: invalid UTF-8" \
  bash -c "printf 'a\nb\n' | '$ATTEND' score -r '$dir/badref.txt'"
expect "score: --metrics: ter not in {bleu,chrf}" "$ATTEND" score -r "$dir/ref.txt" --metrics ter
got=$(printf 'the cat sat on the mat\nhello , world !\n' | "$ATTEND" score -r "$dir/ref.txt" --metrics bleu chrf --json)
[[ "$got" == '{"bleu": '*'"chrf": '* ]] || { echo "FAIL: score --metrics bleu chrf --json printed: $got"; fails=$((fails + 1)); }
expect "train.valid_beam: expected >= 1, got 0" "$ATTEND" train "${tiny[@]}" --train.valid_beam 0
expect "train.ema_decay: expected a value in [0, 1), got 1" "$ATTEND" train "${tiny[@]}" --train.ema_decay 1
# --threads is common to every command; for train it is the key train.threads.
expect "train: --threads: expected 1..1024, got 0" "$ATTEND" train "${tiny[@]}" --threads 0
expect "score: --threads: expected an integer, got 'two'" "$ATTEND" score -r "$dir/ref.txt" --threads two
got=$("$ATTEND" info --threads 3 | grep '^threads:')
[[ "$got" == "threads: 3" ]] || { echo "FAIL: info --threads 3 printed '$got'"; fails=$((fails + 1)); }
# Without openmpi-bin on PATH, info says what to install to start ranks.
got=$(PATH=/nonexistent "$(realpath "$ATTEND")" info | grep '^mpirun:')
[[ "$got" == "mpirun: not found on PATH: install openmpi-bin"* ]] ||
  { echo "FAIL: info without mpirun printed '$got'"; fails=$((fails + 1)); }
got=$("$ATTEND" info | grep -c '^nccl: ')
[[ "$got" == 1 ]] || { echo "FAIL: info printed no nccl line"; fails=$((fails + 1)); }
# The CPU's extensions, each named on the side it belongs to, and the precisions they make
# native: the AVX-512 answer agrees with /proc/cpuinfo's flags.
got=$("$ATTEND" info | grep '^cpu features: ')
for name in avx2 avx512f avx512bw avx512_bf16 avx512_vnni amx_bf16 amx_int8; do
  [[ " $got " == *" $name"[\ \;]* ]] || { echo "FAIL: info does not name $name: '$got'"; fails=$((fails + 1)); }
done
got=$("$ATTEND" info | grep '^precisions: ')
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then want=yes; else want=no; fi
[[ "$got" == "precisions: fp32; bf16 weights (generate --precision bf16): $want"* ]] ||
  { echo "FAIL: info printed '$got' (avx512f: $want)"; fails=$((fails + 1)); }
# bf16 products are native where oneDNN runs them on AMX (when the OS grants the tile state,
# which every kernel since 5.16 does) or AVX-512 BF16.
if grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo 2>/dev/null; then want=yes; else want=no; fi
[[ "$got" == *"; bf16 products (train.precision bf16): $want"* ]] ||
  { echo "FAIL: info printed '$got' (bf16 products: $want)"; fails=$((fails + 1)); }
# int8 products run everywhere: our AVX2 kernel (or the scalar one), oneDNN's above 48 rows
# where VNNI or AMX-INT8 make its sums exact.
got=$("$ATTEND" info | grep '^int8 products ')
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then want="avx2 kernel"; else want="scalar kernel"; fi
if grep -qwE 'avx512_vnni|amx_int8' /proc/cpuinfo 2>/dev/null; then want2="oneDNN above 48 rows"; else want2="oneDNN: no"; fi
[[ "$got" == "int8 products (--precision int8, attend quantize): yes: $want"*"; $want2"* ]] ||
  { echo "FAIL: info printed '$got' (int8: $want; $want2)"; fails=$((fails + 1)); }
expect "train.precision: expected fp32 or bf16, got 'fp16'" "$ATTEND" train "${tiny[@]}" --train.precision fp16
if [[ $want == yes ]]; then
  got=$("$ATTEND" train "${tiny[@]}" --train.out "$dir/run-bf16" --train.precision bf16 | grep '^precision: ')
  [[ "$got" == "precision: bf16 products, f32 sums (oneDNN "*"); weights, gradients, Adam and checkpoints fp32" ]] ||
    { echo "FAIL: train --train.precision bf16 printed '$got'"; fails=$((fails + 1)); }
fi
got=$("$ATTEND" train "${tiny[@]}" --train.out "$dir/run1" --train.threads 2 --threads 1 | grep -o '[0-9]* threads')
[[ "$got" == "1 threads" ]] || { echo "FAIL: train --threads 1 ran with '$got'"; fails=$((fails + 1)); }
expect "translate: --model is required" "$ATTEND" translate
expect "translate: unknown option '--beams' (see attend translate --help)" "$ATTEND" translate -m "$dir/x" --beams 2
# Translation options and over-long input (the tiny run's checkpoint; its best/ is corrupt now).
ck="$dir/run/checkpoints/step-00000001"
expect "translate: --beam must be >= 1, got 0" "$ATTEND" translate -m "$ck" --beam 0
expect "translate: --n-best must be in [1, beam = 2], got 3" "$ATTEND" translate -m "$ck" --beam 2 --n-best 3
expect "translate: --top-p must be in (0, 1], got 1.5" "$ATTEND" translate -m "$ck" --sample --top-p 1.5
expect "translate: Could not convert: --alpha = x" "$ATTEND" translate -m "$ck" --alpha x
expect "--device: expected cpu, cuda or cuda:N, got 'gpu'" "$ATTEND" translate -m "$ck" --device gpu
expect "--device cuda: this build has no CUDA backend (configure with -DATTEND_CUDA=ON" \
  "$ATTEND" translate -m "$ck" --device cuda
expect "--device cuda:1: this build has no CUDA backend" "$ATTEND" translate -m "$ck" --device cuda:1
printf '12\n\n1 2 3 4 5 6 7 8 9 10 11 12\n' > "$dir/in.txt"
out=$("$ATTEND" translate -m "$ck" -i "$dir/in.txt" --max-input-tokens 4 --beam 2 2> "$dir/warn.txt"); st=$?
lines=$(printf '%s\n' "$out" | wc -l)
if [[ $st -ne 0 || $lines -ne 3 ]] || ! grep -q "$dir/in.txt:3 has .* subwords; translating the first 4" "$dir/warn.txt"; then
  echo "FAIL: over-long line (status $st, $lines lines): $(cat "$dir/warn.txt")"; fails=$((fails + 1))
else
  echo "ok: over-long line truncated with a warning naming it"
fi
nb=$("$ATTEND" translate -m "$ck" -i "$dir/in.txt" --beam 3 --n-best 3 --max-extra 2)
if [[ $(printf '%s\n' "$nb" | grep -c '^2 ||| ') -ne 3 || $(printf '%s\n' "$nb" | grep -c '^1 ||| ') -ne 1 ]]; then
  echo "FAIL: n-best output: $nb"; fails=$((fails + 1))
else
  echo "ok: n-best lines 'LINE ||| TEXT ||| SCORE'"
fi
# --prefix FILE: each translation starts with its line's text; an empty line forces nothing.
printf 'four hundred\n\nseven\n' > "$dir/prefix.txt"
plain=$("$ATTEND" translate -m "$ck" -i "$dir/in.txt" --beam 2 --max-extra 12)
forced=$("$ATTEND" translate -m "$ck" -i "$dir/in.txt" --beam 2 --max-extra 12 --prefix "$dir/prefix.txt")
p1=$(printf '%s\n' "$forced" | sed -n 1p); p2=$(printf '%s\n' "$forced" | sed -n 2p)
p3=$(printf '%s\n' "$forced" | sed -n 3p)
if [[ "$p1" != "four hundred"* || "$p3" != "seven"* || "$p2" != "$(printf '%s\n' "$plain" | sed -n 2p)" ]]; then
  echo "FAIL: --prefix: got '$p1' / '$p2' / '$p3'"; fails=$((fails + 1))
else
  echo "ok: --prefix forces each line's start ('$p1', '$p3')"
fi
printf 'four\n' > "$dir/prefix1.txt"
expect "translate: --prefix $dir/prefix1.txt has 1 lines but the input ($dir/in.txt) has 3" \
  "$ATTEND" translate -m "$ck" -i "$dir/in.txt" --prefix "$dir/prefix1.txt"
expect "$dir/in.txt:1: the prefix has" \
  "$ATTEND" translate -m "$ck" -i "$dir/in.txt" --max-extra 2 --prefix "$dir/prefix.txt"
[[ $fails -eq 0 ]] || { echo "$fails case(s) failed"; exit 1; }
