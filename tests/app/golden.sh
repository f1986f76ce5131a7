#!/usr/bin/env bash
# Nothing changes for users: translate, generate, eval-lm, fill-mask and score print what the
# binary before the one-engine refactoring printed (tests/golden/cli/expected, from commit
# c82c15d) for the small models in tests/golden/models; and the server's /v1/translate and
# /v1/completions give the same translations and completions as those files.
set -euo pipefail
ATTEND=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
golden=$root/tests/golden
source "$(dirname "$0")/serve_common.sh"

bash "$golden/cli/run.sh" "$ATTEND" "$golden/models" "$dir/out"
python3 "$golden/cli/compare.py" "$golden/cli/expected" "$dir/out" || fail "golden outputs"

# The server: beam 4 translations, and greedy completions of the prompts.
start --model "$golden/models/mt" --model "$golden/models/lm" --threads 2
python3 - "$(url /v1)" "$golden/cli" "$dir" <<'PY' || fail "server replies differ from the golden files"
import json, sys, urllib.request
base, cli, out = sys.argv[1:]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req))
src = open(f"{cli}/numbers.src", encoding="utf-8").read().splitlines()
r = post("/translate", {"text": src, "beam": 4})
with open(f"{out}/out/t-beam4.server", "w", encoding="utf-8") as f:
    f.write("".join(t[0]["text"] + "\n" for t in r["translations"]))
prompts = open(f"{cli}/prompts.txt", encoding="utf-8").read().split("\n")[:-1]
want = [json.loads(l) for l in open(f"{cli}/expected/g-greedy.jsonl", encoding="utf-8")]
for p, w in zip(prompts, want):
    if not p:
        continue  # the API refuses an empty prompt
    c = post("/completions", {"prompt": p, "max_tokens": 60, "temperature": 0})
    got = c["choices"][0]["text"]
    if got != w["text"]:
        sys.exit(f"completion of {p!r}: {got!r}, expected {w['text']!r}")
PY
diff "$golden/cli/expected/t-beam4.txt" "$dir/out/t-beam4.server" > "$dir/diff.log" ||
  fail "/v1/translate differs from translate (beam 4)"
echo "golden outputs: CLI and server agree with tests/golden/cli/expected"
