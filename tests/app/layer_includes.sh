#!/usr/bin/env bash
# The layer rule is enforced by the build: each library compiles against a folder of links to
# its own and lower layers only (CMakeLists.txt, attend_layers). This test compiles one-line
# files against those folders: an allowed include must compile, an upward one must fail.
#   layer_includes.sh CXX BUILD_DIR
set -uo pipefail
CXX=$1
LAYERS=$2/layers
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() {  # check allow|deny TARGET HEADER
  local want=$1 target=$2 header=$3
  printf '#include "%s"\nint main() { return 0; }\n' "$header" > "$dir/t.cpp"
  if "$CXX" -std=c++20 -fsyntax-only -I"$LAYERS/$target" "$dir/t.cpp" 2> "$dir/err"; then got=allow; else got=deny; fi
  if [[ $got != "$want" ]]; then
    echo "FAIL: $target including $header: wanted $want, got $got"; head -3 "$dir/err"; fails=$((fails + 1))
  else
    echo "ok: $target $want $header"
  fi
}
[[ -d "$LAYERS/attend_core" ]] || { echo "FAIL: no layer folders under $LAYERS"; exit 1; }
check allow attend_kernels kernels/common.h
check deny  attend_kernels ops/ops.h
check allow attend_ops     ops/ops.h
check deny  attend_ops     autograd/tape.h
check allow attend_nn      nn/transformer.h
check deny  attend_nn      kernels/cpu/cpu.h
check deny  attend_nn      data/tokenizer.h
check deny  attend_nn      decode/session.h
check allow attend_decode  decode/translator.h
check deny  attend_decode  train/trainer.h
check deny  attend_data    nn/module.h
check deny  attend_eval    data/corpus.h
check allow attend_apps_inference decode/translator.h
check deny  attend_apps_inference train/trainer.h
check allow attend_convert models/model_dir.h
check deny  attend_convert decode/session.h
check allow attend         convert/hf.h
check allow attend         train/trainer.h
check deny  attend         kernels/cpu/cpu.h
[[ $fails -eq 0 ]] || { echo "$fails case(s) failed"; exit 1; }
