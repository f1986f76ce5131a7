#!/usr/bin/env bash
# Crash safety: `attend train` is killed with SIGKILL at random moments -- half of them aimed at
# a checkpoint write in progress -- and resumed each time, as a user would, until the run ends.
#   - after every kill, every checkpoint on disk (checkpoints/step-*, best/) must load and pass
#     its checksums (`attend translate -m DIR` on empty input verifies and loads it);
#   - every restart must succeed (`--resume` when a checkpoint exists, else a fresh start);
#   - the finished run's records (losses, learning rates, gradient norms, validation scores) and
#     final weights and optimizer state equal an uninterrupted run's, bit for bit.
# Done for a single process and for two ranks under mpirun (a random rank killed, rank 0 when
# the kill is aimed at a checkpoint write; the job must end within 30 s after a kill, and the
# two-rank run must also match its own uninterrupted run bit for bit).
#
#   kill_resume.sh ATTEND MPIRUN [--kills N] [--rank-kills M] [--seed S]
# Defaults (CI-sized): 8 single-process kills, 4 two-rank kills. The full run of
# docs/scaling.md: --kills 35 --rank-kills 15 (50 kill points). MPIRUN may be "none": the
# two-rank part is then skipped with a message.
set -euo pipefail
ATTEND=$(realpath "$1")
MPIRUN=$2
shift 2
kills=8 rank_kills=4 seed=$$
while (($#)); do
  case $1 in
    --kills) kills=$2; shift 2 ;;
    --rank-kills) rank_kills=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    *) echo "kill_resume.sh: unknown option $1"; exit 2 ;;
  esac
done
RANDOM=$seed
echo "kill_resume: seed $seed, $kills single-process kills, $rank_kills two-rank kills"
dir=$(mktemp -d)
trap 'pkill -KILL -P $$ 2>/dev/null || true; rm -rf "$dir"' EXIT
common=(--data.generate numbers-en --data.generate_train 1500 --data.generate_valid 40
        --model.preset tiny --model.d_model 32 --model.ffn 64 --model.heads 4
        --model.encoder_layers 2 --model.decoder_layers 2 --model.dropout 0.1
        --vocab.size 100 --vocab.split_digits true --train.max_tokens 400 --train.threads 1
        --train.log_every 1 --train.valid_every 15 --train.valid_beam 1 --train.save_every 3
        --train.keep_checkpoints 3 --train.max_steps 150 --train.schedule inverse_sqrt
        --train.lr 0.002 --train.warmup 10 --train.clip_norm 1.0)
mpi=()
if [[ $MPIRUN != none ]]; then mpi=("$MPIRUN" --allow-run-as-root --oversubscribe -np 2); fi

strip() { sed -E 's/,"tgt_tokens_per_s".*$//' "$1/train.jsonl"; }
now_ms() { date +%s%3N; }

# Every checkpoint directory that exists must be whole: files present, checksums right, loadable.
check_checkpoints() {  # run_dir
  local d n=0
  for d in "$1"/checkpoints/step-* "$1/best"; do
    [[ -d $d && $d != *.tmp ]] || continue
    if ! "$ATTEND" translate -m "$d" < /dev/null > "$dir/check.log" 2>&1; then
      echo "corrupt checkpoint after a kill: $d"; cat "$dir/check.log"; exit 1
    fi
    n=$((n + 1))
  done
  checked=$((checked + n))
}

# Starts (or resumes) the run in $1 in the background with launcher prefix ${launch[@]}: sets pid.
start() {  # run_dir log
  local how=()
  if [[ -f $1/checkpoints/last ]]; then how=(--resume); resumes=$((resumes + 1)); fi
  # in a subshell of its own, so that the shell reports no killed job
  ( "${launch[@]}" "$ATTEND" train "${common[@]}" --train.out "$1" "${how[@]}" >> "$2" 2>&1
    exit $? ) 2>/dev/null &
  pid=$!
}

# The process to kill: the attend process, or under mpirun a random rank of the job (rank 0,
# the writer, when the kill is aimed at a checkpoint write).
victim() {
  local kids=() k parent=$pid want=1
  if ((${#launch[@]} > 0)); then
    want=2
    for _ in $(seq 1 500); do
      parent=$(pgrep -P "$pid" -x mpirun || true)
      [[ -n $parent ]] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.01
    done
  fi
  for _ in $(seq 1 500); do
    [[ -n $parent ]] || break
    mapfile -t kids < <(pgrep -P "$parent" -x attend || true)
    ((${#kids[@]} == want)) && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.01
  done
  ((${#kids[@]} > 0)) || { echo ""; return; }
  k=${kids[RANDOM % ${#kids[@]}]}
  if [[ $1 == write ]]; then  # rank 0, the one that writes checkpoints
    for k in "${kids[@]}"; do
      tr '\0' '\n' < "/proc/$k/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=0' && break
    done
  fi
  echo "$k"
}

# True while a temporary file or directory made since `stamp` exists: a checkpoint (or the
# "last" marker, or the log's truncation) is being written. Shell builtins only, so that the
# polling loop reacts within microseconds.
writing() {  # run_dir stamp
  local f
  for f in "$1"/*.tmp "$1"/checkpoints/*.tmp; do
    [[ -e $f && $f -nt $2 ]] && return 0
  done
  return 1
}

# One segment: start or resume, kill at a random moment (mode "time") or while a checkpoint is
# being written (mode "write"), then check what is on disk. Sets finished=1 when the run ended
# before it could be killed.
segment() {  # run_dir log mode budget_ms
  local out=$1 log=$2 mode=$3 budget=$4 t0 target v stamp waited rc
  stamp="$dir/stamp"; : > "$stamp"
  start "$out" "$log"
  t0=$(now_ms)
  target=$((t0 + 150 + RANDOM % budget))
  v=$(victim "$mode")  # chosen before the wait, so that the kill follows the moment without delay
  local hit=""
  while [[ -n $v ]] && kill -0 "$v" 2>/dev/null; do
    if [[ $mode == write ]]; then
      # the first temporary file or directory of this segment: a checkpoint (or the marker, or
      # the log's truncation) is being written right now
      if writing "$out" "$stamp"; then hit=1; break; fi
      (($(now_ms) > t0 + 20000)) && { hit=1; break; }
    else
      (($(now_ms) >= target)) && { hit=1; break; }
      sleep 0.005
    fi
  done
  if [[ -z $hit ]] || ! kill -KILL "$v" 2>/dev/null; then
    rc=0; { wait "$pid"; } 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] || { echo "run exited with status $rc without being killed"; tail -20 "$log"; exit 1; }
    finished=1; return
  fi
  local killed_at; killed_at=$(now_ms)
  rc=0; { wait "$pid"; } 2>/dev/null || rc=$?
  waited=$(( $(now_ms) - killed_at ))
  # Status 0: the signal reached a process that had already exited (it ended just before the
  # kill), so the run finished by itself.
  if [[ $rc -eq 0 ]]; then finished=1; return; fi
  if writing "$out" "$stamp"; then mid_write=$((mid_write + 1)); fi
  if ((${#launch[@]} > 0)); then
    ((waited <= 30000)) || { echo "the job took ${waited} ms to stop after a rank was killed"; exit 1; }
    ((waited > max_stop_ms)) && max_stop_ms=$waited
  fi
  kills_done=$((kills_done + 1))
  check_checkpoints "$out"
}

# The whole experiment for one launcher: uninterrupted run, then the killed-and-resumed run.
experiment() {  # name kills
  local name=$1 n=$2 ref="$dir/$1-ref" run="$dir/$1-run" t0 wall mode
  kills_done=0 mid_write=0 checked=0 max_stop_ms=0 finished=0 resumes=0
  t0=$(now_ms)
  "${launch[@]}" "$ATTEND" train "${common[@]}" --train.out "$ref" > "$dir/$name-ref.log" 2>&1 ||
    { cat "$dir/$name-ref.log"; exit 1; }
  wall=$(( $(now_ms) - t0 ))
  local restarts=0
  while ((kills_done < n)); do
    mode=time; ((kills_done % 2 == 1)) && mode=write
    finished=0
    segment "$run" "$dir/$name-run.log" "$mode" "$wall"
    restarts=$((restarts + 1))
    if ((finished)); then  # the run got to its end: start a new one in its place
      diff <(strip "$ref") <(strip "$run") > /dev/null ||
        { echo "$name: a run that ended by itself differs from the uninterrupted run"; exit 1; }
      rm -rf "$run"
    fi
    ((restarts < 20 * n + 20)) || { echo "$name: could not place $n kills"; exit 1; }
  done
  # the last resume runs to the end
  start "$run" "$dir/$name-run.log"
  wait "$pid" || { echo "$name: the final resume failed"; tail -20 "$dir/$name-run.log"; exit 1; }
  if ! diff <(strip "$ref") <(strip "$run") > "$dir/diff"; then
    echo "$name: the killed and resumed run differs from the uninterrupted run:"; head "$dir/diff"
    exit 1
  fi
  local last; last=$(cat "$ref/checkpoints/last")
  for f in model.safetensors optimizer.safetensors; do
    cmp -s "$ref/checkpoints/$last/$f" "$run/checkpoints/$last/$f" ||
      { echo "$name: $last/$f differs from the uninterrupted run"; exit 1; }
  done
  cmp -s "$ref/best/model.safetensors" "$run/best/model.safetensors" ||
    { echo "$name: best/model.safetensors differs from the uninterrupted run"; exit 1; }
  echo "kill_resume: $name: $kills_done kills ($mid_write during a checkpoint write), $resumes" \
       "resumes (none failed), $checked checkpoint checks, 0 corrupt; records and final weights equal the" \
       "uninterrupted run's$( ((${#launch[@]} > 0)) && echo "; the job stopped <= ${max_stop_ms} ms after a rank was killed")"
}

launch=()
experiment single "$kills"
if ((${#mpi[@]} == 0)); then
  echo "kill_resume: two-rank part skipped: no mpirun (install openmpi-bin)"
elif ((rank_kills > 0)); then
  launch=("${mpi[@]}")
  common+=(--train.max_steps 90)
  experiment two-ranks "$rank_kills"
fi
