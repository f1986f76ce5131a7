#!/usr/bin/env bash
# Language models end to end. Decoder-only (`model.arch decoder_only`): a character model
# trains on a text file (the loss falls), resumes bit for bit, `attend eval-lm` on the held-out
# text gives the loss validation logged, `attend generate` streams one prompt and writes a file
# of prompts as JSON lines in input order with the same text as each prompt in another batch;
# `--beam` is deterministic and batch-independent; `--precision bf16` runs; `--precision int8` equals the `attend quantize` model. Encoder-only (`encoder_only`): masked-LM training, fill-mask, masked accuracy. Bad input (a
# model of the wrong family, a prompt past the context, invalid UTF-8, a window past the
# context, a text without one [MASK]) is one clear error.
set -euo pipefail
ATTEND=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A text with structure to learn: 600 lines drawn from a few patterns.
awk 'BEGIN { srand(3); split("cat dog fox owl hen", a, " "); split("sat ran hid ate", v, " ");
             split("mat log box den", o, " ");
             for (i = 0; i < 600; i++) printf "the %s %s on the %s.\n", a[int(rand()*5)+1],
                                              v[int(rand()*4)+1], o[int(rand()*4)+1] }' > "$dir/text.txt"
common=(--model.preset gpt-tiny --model.d_model 64 --model.ffn 128 --model.heads 4
        --model.decoder_layers 2 --model.max_positions 64 --model.dropout 0.1
        --data.train_text "$dir/text.txt" --data.block 48 --vocab.type char
        --train.max_tokens 1536 --train.schedule inverse_sqrt --train.lr 0.003 --train.warmup 20
        --train.label_smoothing 0 --train.clip_norm 1 --train.threads 2 --train.log_every 5
        --train.valid_every 20 --train.save_every 20)
"$ATTEND" train "${common[@]}" --train.max_steps 60 --train.out "$dir/a" > "$dir/a.log" ||
  { cat "$dir/a.log"; fail "training"; }
grep -q "model: decoder-only, 2 layers" "$dir/a.log" || fail "no decoder-only model line"
first=$(grep -m1 '"grad_norm"' "$dir/a/train.jsonl" | sed -E 's/.*"loss":([-0-9.e+]+).*/\1/')
last=$(grep '"grad_norm"' "$dir/a/train.jsonl" | tail -1 | sed -E 's/.*"loss":([-0-9.e+]+).*/\1/')
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < 0.6 * f) }' ||
  fail "the loss did not fall: $first -> $last"
echo "ok: character LM loss $first -> $last over 60 steps"

# Resume: 40 steps, then to 60, equal to the uninterrupted run.
"$ATTEND" train "${common[@]}" --train.max_steps 40 --train.out "$dir/b" > /dev/null
"$ATTEND" train --resume --train.max_steps 60 --train.out "$dir/b" > "$dir/b2.log"
strip() { sed -E 's/,"tgt_tokens_per_s".*$//' "$1/train.jsonl"; }
diff <(strip "$dir/a") <(strip "$dir/b") > /dev/null || fail "resumed records differ"
cmp -s "$dir/a/checkpoints/step-00000060/model.safetensors" \
       "$dir/b/checkpoints/step-00000060/model.safetensors" || fail "resumed weights differ"
echo "ok: resumed language model bit-identical"

# eval-lm on the held-out tenth equals the validation loss of the final checkpoint.
valid=$(grep '"valid_loss"' "$dir/a/train.jsonl" | tail -1 | sed -E 's/.*"valid_loss":([-0-9.e+]+).*/\1/')
# the text is ASCII: the last 10% of its characters are its last 10% of bytes
n=$(wc -c < "$dir/text.txt")
tail -c +$(awk -v n="$n" 'BEGIN { printf "%d", int(n * (1 - 0.1)) + 1 }') "$dir/text.txt" > "$dir/valid.txt"
got=$("$ATTEND" eval-lm -m "$dir/a/checkpoints/step-00000060" -i "$dir/valid.txt" --block 48 --json)
loss=$(echo "$got" | sed -E 's/.*"loss":([-0-9.e+]+).*/\1/')
awk -v a="$loss" -v b="$valid" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-4 * b) }' ||
  fail "eval-lm loss $loss != validation loss $valid ($got)"
echo "$got" | grep -q '"bpc"' || fail "no bits per character for a character model"
echo "ok: eval-lm loss $loss = validation loss $valid"

# generate: one prompt streams; a file of prompts gives the same texts in input order.
model="$dir/a"
"$ATTEND" generate -m "$model" --prompt "the cat" --max-new 30 --seed 5 > "$dir/one.txt"
[[ $(wc -c < "$dir/one.txt") -ge 20 ]] || fail "generate printed too little: $(cat "$dir/one.txt")"
printf 'the dog\nthe cat\n\nthe owl hid\n' > "$dir/prompts.txt"
"$ATTEND" generate -m "$model" -i "$dir/prompts.txt" --max-new 30 --seed 5 -o "$dir/out.jsonl"
[[ $(wc -l < "$dir/out.jsonl") -eq 4 ]] || fail "expected 4 JSON lines"
sed -n 2p "$dir/out.jsonl" | grep -q '"line":2,"prompt":"the cat"' || fail "output order"
# prompt 2 of the batch draws from stream 1 of seed 5: the same as generating it in a batch at
# the same index (a file whose second line it is)
printf 'x\nthe cat\n' > "$dir/p2.txt"
"$ATTEND" generate -m "$model" -i "$dir/p2.txt" --max-new 30 --seed 5 > "$dir/p2.jsonl"
[[ "$(sed -n 2p "$dir/p2.jsonl" | sed -E 's/.*"text":("[^"]*").*/\1/')" == \
   "$(sed -n 2p "$dir/out.jsonl" | sed -E 's/.*"text":("[^"]*").*/\1/')" ]] ||
  fail "the same prompt and stream gave different text in another batch"
echo "ok: generate streams, batches in input order, same text whatever the batch"
# --beam: deterministic (the seed is unused), the same text alone as in the batch
"$ATTEND" generate -m "$model" -i "$dir/prompts.txt" --max-new 20 --beam 3 > "$dir/beam.jsonl"
printf 'the cat\n' > "$dir/p3.txt"
"$ATTEND" generate -m "$model" -i "$dir/p3.txt" --max-new 20 --beam 3 --seed 9 > "$dir/beam1.jsonl"
text_of() { sed -E 's/.*"text":("[^"]*").*/\1/'; }
[[ "$(sed -n 2p "$dir/beam.jsonl" | text_of)" == "$(text_of < "$dir/beam1.jsonl")" &&
   "$(text_of < "$dir/beam1.jsonl")" != '""' ]] ||
  fail "beam search gave $(cat "$dir/beam1.jsonl") alone but $(sed -n 2p "$dir/beam.jsonl") in the batch"
echo "ok: generate --beam is deterministic and batch-independent"

# Bad input: one clear message each, non-zero exit.
expect() {  # expect "substring" command...
  local want=$1 out status; shift
  out=$("$@" 2>&1) && status=0 || status=$?
  [[ $status -ne 0 && $status -lt 128 ]] || fail "status $status: $*"
  [[ "$out" == *"$want"* ]] || fail "wanted '$want', got: $out"
  echo "ok: $want"
}
expect "--beam" "$ATTEND" generate -m "$model" --prompt "the" --beam 0
expect "--precision" "$ATTEND" generate -m "$model" --prompt "the" --precision fp16
# int8: quantized at load, or stored by attend quantize; both generate the same text.
out8=$("$ATTEND" generate -m "$model" --prompt "the cat" --max-new 20 --precision int8 --seed 5)
[[ ${#out8} -ge 10 ]] || fail "generate --precision int8 printed '$out8'"
"$ATTEND" quantize -m "$model" -o "$dir/lm-int8" > /dev/null || fail "quantize the language model"
[[ "$("$ATTEND" generate -m "$dir/lm-int8" --prompt "the cat" --max-new 20 --seed 5)" == "$out8" ]] ||
  fail "the stored int8 language model generates differently"
echo "ok: generate --precision int8 and a quantized language model"
if grep -q avx512f /proc/cpuinfo; then  # bf16 weights
  out=$("$ATTEND" generate -m "$model" --prompt "the cat" --max-new 20 --precision bf16 --seed 5)
  [[ ${#out} -ge 10 ]] || fail "generate --precision bf16 printed '$out'"
  echo "ok: generate --precision bf16"
fi
expect "this is a decoder_only model, but translate and score take encoder_decoder models (for this one: attend generate or attend eval-lm)" \
  "$ATTEND" translate -m "$model" <<< "the cat"
"$ATTEND" train --data.generate numbers-en --data.generate_train 200 --data.generate_valid 20 \
  --model.preset tiny --model.d_model 32 --model.ffn 64 --vocab.size 60 --train.max_steps 1 \
  --train.valid_every 0 --train.out "$dir/mt" > /dev/null
expect "this is an encoder_decoder model, but generate and eval-lm take decoder_only models (for this one: attend translate)" \
  "$ATTEND" generate -m "$dir/mt" --prompt "1"
long=$(printf 'the cat sat on the mat. %.0s' 1 2 3)
expect "the prompt has 72 tokens but the model's context is 64 (keep its last tokens with --truncate left)" \
  "$ATTEND" generate -m "$model" --prompt "$long"
out=$("$ATTEND" generate -m "$model" --prompt "$long" --truncate left --max-new 3 2>&1)
[[ "$out" == *"kept the last 64 of 72 prompt tokens"* ]] || fail "no truncation warning: $out"
# --max-new beyond the context: the tokens that fit, and a warning saying how many.
out=$("$ATTEND" generate -m "$model" --prompt "the cat" --max-new 500 --seed 5 2>&1 >/dev/null)
[[ "$out" == *"leave room for "*" of the 500 new tokens asked for (the model's context is 64)"* ]] ||
  fail "no warning for --max-new past the context: $out"
out=$("$ATTEND" generate -m "$model" --prompt "the cat" --max-new 20 --seed 5 2>&1 >/dev/null)
[[ -z "$out" ]] || fail "a warning for --max-new inside the context: $out"
printf 'ok\nbad \xff here\n' > "$dir/bad.txt"
expect "$dir/bad.txt:2: invalid UTF-8 in the prompt" "$ATTEND" generate -m "$model" -i "$dir/bad.txt"
"$ATTEND" generate -m "$model" -i "$dir/bad.txt" --bad-utf8 replace --max-new 2 > /dev/null ||
  fail "--bad-utf8 replace"
expect "data.block: expected 1..model.max_positions (64), got 65" \
  "$ATTEND" train "${common[@]}" --data.block 65 --train.out "$dir/x"
expect "model.arch decoder_only trains on text: set data.train_text" \
  "$ATTEND" train --model.preset gpt-tiny --train.out "$dir/y"
expect "$dir/bad.txt:2: invalid UTF-8 (set data.bad_utf8 skip" \
  "$ATTEND" train "${common[@]}" --data.train_text "$dir/bad.txt" --train.out "$dir/z"
# Encoder-only (masked-LM): trains on sentences (the loss falls), fill-mask ranks fillers,
# eval-lm reports masked-token accuracy, and a text without exactly one [MASK] is an error.
mlm=(--model.arch encoder_only --model.preset small --model.d_model 64 --model.ffn 128
     --model.heads 4 --model.encoder_layers 2 --model.max_positions 32 --model.norm pre
     --data.train_text "$dir/text.txt" --vocab.size 60 --train.max_tokens 1024
     --train.schedule inverse_sqrt --train.lr 0.003 --train.warmup 20 --train.label_smoothing 0
     --train.clip_norm 1 --train.threads 2 --train.log_every 10 --train.valid_every 100
     --train.save_every 100)
"$ATTEND" train "${mlm[@]}" --train.max_steps 100 --train.out "$dir/m" > "$dir/m.log" ||
  { cat "$dir/m.log"; fail "masked-LM training"; }
grep -q "model: encoder-only, 2 layers" "$dir/m.log" || fail "no encoder-only model line"
grep -q "masked accuracy" "$dir/m.log" || fail "no masked accuracy in validation"
first=$(grep -m1 '"grad_norm"' "$dir/m/train.jsonl" | sed -E 's/.*"loss":([-0-9.e+]+).*/\1/')
last=$(grep '"grad_norm"' "$dir/m/train.jsonl" | tail -1 | sed -E 's/.*"loss":([-0-9.e+]+).*/\1/')
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < 0.7 * f) }' ||
  fail "the masked-LM loss did not fall: $first -> $last"
"$ATTEND" fill-mask -m "$dir/m" "the cat sat on the [MASK]." --top-k 3 > "$dir/fill.txt"
[[ $(wc -l < "$dir/fill.txt") -eq 3 ]] || fail "fill-mask printed $(wc -l < "$dir/fill.txt") lines"
awk -F'\t' '{ if ($1 < 0 || $1 > 1 || $3 !~ /^the cat sat on the .*\.$/) bad = 1; s += $1 }
             END { exit bad || s > 1.0001 }' "$dir/fill.txt" || fail "fill-mask output: $(cat "$dir/fill.txt")"
acc=$("$ATTEND" eval-lm -m "$dir/m" -i "$dir/text.txt" --json)
echo "$acc" | grep -q '"masked_accuracy"' || fail "eval-lm on an encoder-only model: $acc"
echo "ok: masked-LM loss $first -> $last; fill-mask top 3: $(cut -f2 "$dir/fill.txt" | tr '\n' ' ')"
expect "fill-mask: the text must hold exactly one [MASK], it holds 0" \
  "$ATTEND" fill-mask -m "$dir/m" "the cat sat"
expect "fill-mask: the text must hold exactly one [MASK], it holds 2" \
  "$ATTEND" fill-mask -m "$dir/m" "[MASK] cat [MASK]"
expect "this is an encoder_only model, but generate and eval-lm take decoder_only models (for this one: attend fill-mask or attend eval-lm)" \
  "$ATTEND" generate -m "$dir/m" --prompt "the"
expect "this is a decoder_only model, but fill-mask, eval-lm and embed take encoder_only models" \
  "$ATTEND" fill-mask -m "$model" "the [MASK]"
expect "vocab.type char: masked-LM training (model.arch encoder_only) needs a subword vocabulary" \
  "$ATTEND" train "${mlm[@]}" --vocab.type char --train.out "$dir/mc"
echo "lm: all checks passed"
