#!/usr/bin/env bash
# `mpirun -np 2 attend train` end to end: two ranks log the losses of one process accumulating
# two batches (within 1e-5 relative); a two-rank run resumed on two ranks continues bit for bit;
# a two-rank checkpoint resumes on one process (the global
# batch kept by train.accumulate, set automatically) and continues with the same losses; ranks
# that disagree on the configuration stop with the first differing key; a global batch that
# cannot be split over the ranks is a clear error.
set -euo pipefail
ATTEND=$1
MPIRUN=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mpi=("$MPIRUN" --allow-run-as-root --oversubscribe)
common=(--data.generate numbers-en --data.generate_train 1500 --data.generate_valid 40
        --model.preset tiny --model.d_model 32 --model.ffn 64 --model.heads 4
        --model.encoder_layers 2 --model.decoder_layers 2 --model.dropout 0.1
        --vocab.size 100 --vocab.split_digits true --train.max_tokens 300 --train.threads 1
        --train.log_every 1 --train.valid_every 10 --train.save_every 10
        --train.schedule inverse_sqrt --train.lr 0.002 --train.warmup 10 --train.clip_norm 1.0)

# step loss pairs of a run's train.jsonl
losses() { grep '"grad_norm"' "$1/train.jsonl" | sed -E 's/.*"step":([0-9]+).*"last_loss":([-0-9.e+]+).*/\1 \2/'; }
# same steps, losses within 1e-5 relative
same() {
  paste <(losses "$1") <(losses "$2") | awk -v a="$1" -v b="$2" '
    { if ($1 != $3) { print "step mismatch " $1 " vs " $3; bad = 1; exit }
      d = $2 - $4; if (d < 0) d = -d; r = d / ($4 < 0 ? -$4 : $4);
      if (r > 1e-5) { print "step " $1 ": " $2 " vs " $4 " (" a " vs " b ")"; bad = 1 } n++ }
    END { if (bad || n == 0) exit 1; print n " steps agree" }'
}

"${mpi[@]}" -np 2 "$ATTEND" train "${common[@]}" --train.max_steps 20 --train.out "$dir/two" \
  > "$dir/two.log" 2>&1 || { cat "$dir/two.log"; exit 1; }
grep -q "data parallel: 2 ranks" "$dir/two.log"
"$ATTEND" train "${common[@]}" --train.max_steps 20 --train.accumulate 2 --train.out "$dir/one" \
  > "$dir/one.log"
same "$dir/two" "$dir/one"
test "$(losses "$dir/two" | wc -l)" -eq 20

# Two ranks to step 10, then one process continues to step 20.
"${mpi[@]}" -np 2 "$ATTEND" train "${common[@]}" --train.max_steps 10 --train.out "$dir/mix" \
  > "$dir/mix.log" 2>&1 || { cat "$dir/mix.log"; exit 1; }
"$ATTEND" train "${common[@]}" --train.max_steps 20 --train.out "$dir/mix" --resume > "$dir/mix2.log"
grep -q "train.accumulate 2 keeps the checkpoint's 2 batches per step" "$dir/mix2.log"
same "$dir/mix" "$dir/one"

# Two ranks to step 10, resumed on two ranks: the same records as the uninterrupted two-rank run,
# bit for bit (wall-clock fields aside).
"${mpi[@]}" -np 2 "$ATTEND" train "${common[@]}" --train.max_steps 10 --train.out "$dir/re" \
  > "$dir/re.log" 2>&1 || { cat "$dir/re.log"; exit 1; }
"${mpi[@]}" -np 2 "$ATTEND" train "${common[@]}" --train.max_steps 20 --train.out "$dir/re" \
  --resume > "$dir/re2.log" 2>&1 || { cat "$dir/re2.log"; exit 1; }
strip() { sed -E 's/,"tgt_tokens_per_s".*$//' "$1/train.jsonl"; }
diff <(strip "$dir/re") <(strip "$dir/two") || { echo "two-rank resume differs"; exit 1; }
cmp "$dir/re/checkpoints/step-00000020/model.safetensors" \
    "$dir/two/checkpoints/step-00000020/model.safetensors"

# Ranks with different configurations: one error naming the key, no hang.
if "${mpi[@]}" -np 1 "$ATTEND" train "${common[@]}" --train.max_steps 5 --train.out "$dir/bad" \
     : -np 1 "$ATTEND" train "${common[@]}" --train.max_steps 5 --train.out "$dir/bad" \
     --train.seed 7 > "$dir/bad.log" 2>&1; then
  echo "ranks with different configs did not fail"; exit 1
fi
grep -q "the ranks run different configurations: train.seed is 1 on rank 0 but 7 on rank 1" "$dir/bad.log" \
  || { cat "$dir/bad.log"; exit 1; }

# A global batch of 2 cannot continue on 1 rank with an explicit train.accumulate 3.
if "$ATTEND" train "${common[@]}" --train.max_steps 30 --train.out "$dir/mix" --resume \
     --train.accumulate 3 > "$dir/acc.log" 2>&1; then
  echo "a mismatched train.accumulate was accepted"; exit 1
fi
grep -q "set --train.accumulate 2 to continue the same run" "$dir/acc.log" || { cat "$dir/acc.log"; exit 1; }
echo "data parallel CLI: ok"
