#!/usr/bin/env bash
# Exact resume: a run killed with SIGKILL (and one stopped with SIGINT) and then resumed with
# --resume logs the same per-step losses, learning rates, gradient norms and validation
# scores as an uninterrupted run, bit for bit (same thread count on the CPU), and ends with the
# same weights. Further arguments are added to every run's keys (e.g. --train.ema_decay 0.9).
set -euo pipefail
ATTEND=$1
shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common=(--data.generate numbers-en --data.generate_train 1500 --data.generate_valid 40
        --model.preset tiny --model.d_model 32 --model.ffn 64 --model.heads 4
        --model.encoder_layers 2 --model.decoder_layers 2 --model.dropout 0.1
        --vocab.size 100 --vocab.split_digits true --train.max_tokens 400 --train.threads 2
        --train.log_every 1 --train.valid_every 10 --train.save_every 5 --train.max_steps 30
        --train.schedule inverse_sqrt --train.lr 0.002 --train.warmup 10 --train.clip_norm 1.0 "$@")

# Records without wall-clock fields.
strip() { sed -E 's/,"tgt_tokens_per_s".*$//' "$1"; }

wait_for_step() {  # file step pid
  for _ in $(seq 1 600); do
    if grep -q "\"step\":$2," "$1" 2>/dev/null; then return 0; fi
    if ! kill -0 "$3" 2>/dev/null; then echo "run ended before step $2"; return 1; fi
    sleep 0.02
  done
  echo "timed out waiting for step $2"; return 1
}

"$ATTEND" train "${common[@]}" --train.out "$dir/a" > "$dir/a.log"

# Starts run $1, sends signal $2 once step $3 is logged and waits for it; the tiny run is fast,
# so when it had logged step $4 before the signal landed, it is started again (up to 5 times).
interrupt() {  # run signal step too_late -> sets $status
  local pid
  for _ in 1 2 3 4 5; do
    rm -rf "${dir:?}/$1"
    "$ATTEND" train "${common[@]}" --train.out "$dir/$1" > "$dir/${1}1.log" &
    pid=$!
    wait_for_step "$dir/$1/train.jsonl" "$3" $pid
    kill "-$2" $pid
    status=0; wait $pid || status=$?
    grep -q "\"step\":$4," "$dir/$1/train.jsonl" || return 0
    echo "run $1 finished before the $2 signal; again"
  done
  echo "run $1 always finished before the $2 signal"; exit 1
}

# SIGKILL after step 12, before step 20 (the last checkpoint is step 10 or 15), then resume.
interrupt b KILL 12 20
"$ATTEND" train --resume --train.out "$dir/b" > "$dir/b2.log"
grep -q "resume: .*step-0000001[05]" "$dir/b2.log" || { echo "did not resume from a checkpoint"; cat "$dir/b2.log"; exit 1; }

# SIGINT after step 17: a checkpoint at the current step, exit status 130, then resume.
interrupt c INT 17 30
[[ $status -eq 130 ]] || { echo "SIGINT exit status $status, expected 130"; cat "$dir/c1.log"; exit 1; }
grep -q "checkpoint saved at step" "$dir/c1.log" || { echo "no checkpoint message"; exit 1; }
"$ATTEND" train --resume --train.out "$dir/c" > "$dir/c2.log"

for run in b c; do
  if ! diff <(strip "$dir/a/train.jsonl") <(strip "$dir/$run/train.jsonl") > "$dir/diff"; then
    echo "run $run differs from the uninterrupted run:"; head -20 "$dir/diff"; exit 1
  fi
done
final=checkpoints/step-00000030
weights=(model.safetensors optimizer.safetensors)
[[ -f "$dir/a/$final/train_weights.safetensors" ]] && weights+=(train_weights.safetensors)
for run in b c; do
  for f in "${weights[@]}"; do
    cmp -s "$dir/a/$final/$f" "$dir/$run/$final/$f" || { echo "run $run: $final/$f differs"; exit 1; }
  done
done
n=$(grep -c '"loss"' "$dir/a/train.jsonl")
[[ $n -eq 30 ]] || { echo "expected 30 step records, got $n"; exit 1; }
echo "resume_exact: SIGKILL and SIGINT runs match the uninterrupted run at all 30 steps" \
     "and in ${weights[*]}"
