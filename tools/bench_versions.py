"""Two builds of attend against each other: the training, translation and generation benchmarks
(bench/train_throughput, bench/decode_throughput with fp32 and int8 weights,
bench/generate_throughput; with --serve-model, `attend serve` under 64 clients) of an old and a
new build directory on the same shapes, interleaved (old, new, old, new, ...) --rounds times; prints the medians, their
range and the new/old ratio. Used to check that a refactoring costs no speed.

  /usr/bin/python3 tools/bench_versions.py --old ../baseline/build/release \
      --new build/release --presets small base --rounds 5
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import bench_env, run  # noqa: E402


def configs(a):
    for preset in a.presets:
        yield (f"train {preset} b{a.train_batch} len{a.train_len}", "train_throughput",
               ["--preset", preset, "--batch", str(a.train_batch), "--src-len", str(a.train_len),
                "--tgt-len", str(a.train_len), "--vocab", "8000", "--steps", str(a.train_steps),
                "--threads", str(a.threads)], "tgt_tokens_per_s")
    for preset in a.decode_presets:
        for batch in (1, 32):
            for precision in a.precisions:
                n = 12 if batch == 1 else 2 * batch
                yield (f"decode {preset} batch{batch} beam{a.beam} {precision}", "decode_throughput",
                       ["--preset", preset, "--vocab", "32000", "--len", "24", "--beam",
                        str(a.beam), "--batch", str(batch), "--sentences", str(n), "--precision",
                        precision, "--threads", str(a.threads)], "tgt_tokens_per_s")
    for batch in (1, 16):
        yield (f"generate gpt-tiny batch{batch} 64+128", "generate_throughput",
               ["--preset", "gpt-tiny", "--batch", str(batch), "--prompt", "64", "--new", "128",
                "--runs", "3", "--threads", str(a.threads)], "new_tokens_per_s")


def serve_rate(build, model, path, clients, seconds, threads, load_binary):
    """Sentences/s of `attend serve` from `build` under --clients keep-alive clients."""
    proc = subprocess.Popen([os.path.join(build, "attend"), "serve", "--port", "0", "--threads",
                             str(threads), "-m", model], stdout=subprocess.PIPE, text=True)
    try:
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", proc.stdout.readline())
        if not m:
            sys.exit(f"serve from {build} did not start")
        out = subprocess.run([load_binary, "--port", m.group(1), "--input", path, "--clients",
                              str(clients), "--seconds", str(seconds), "--beam", "4"],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])["sentences_per_s"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="build directory of the old version")
    ap.add_argument("--new", required=True, help="build directory of the new version")
    ap.add_argument("--presets", nargs="+", default=["small", "base"], help="training presets")
    ap.add_argument("--decode-presets", nargs="+", default=["base"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"], help="decoding weights")
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--train-len", type=int, default=32)
    ap.add_argument("--train-steps", type=int, default=8)
    ap.add_argument("--only", default="", help="run only configurations whose name contains this")
    ap.add_argument("--serve-model", default="", help="model directory: also serve it to 64 "
                    "clients (bench/serve_load, beam 4), old and new servers interleaved")
    ap.add_argument("--serve-input", default="", help="sentences for --serve-model")
    ap.add_argument("--serve-seconds", type=int, default=15)
    a = ap.parse_args()
    env = bench_env(a.threads)
    rows = []
    for name, binary, args, key in configs(a):
        if a.only not in name or a.only == "serve":
            continue
        old, new = [], []
        for _ in range(a.rounds):
            old.append(run([os.path.join(a.old, "bench", binary)] + args, env)[key])
            new.append(run([os.path.join(a.new, "bench", binary)] + args, env)[key])
        r = {"config": name, "metric": key, "rounds": a.rounds, "old_median": statistics.median(old),
             "old_min": min(old), "old_max": max(old), "new_median": statistics.median(new),
             "new_min": min(new), "new_max": max(new)}
        r["new_over_old"] = r["new_median"] / r["old_median"]
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    if a.serve_model:
        load_binary = os.path.join(a.new, "bench", "serve_load")
        old, new = [], []
        for _ in range(a.rounds):
            for build, out in ((a.old, old), (a.new, new)):
                out.append(serve_rate(build, a.serve_model, a.serve_input, 64, a.serve_seconds,
                                      a.threads, load_binary))
        r = {"config": "serve 64 clients beam4", "metric": "sentences_per_s", "rounds": a.rounds,
             "old_median": statistics.median(old), "old_min": min(old), "old_max": max(old),
             "new_median": statistics.median(new), "new_min": min(new), "new_max": max(new)}
        r["new_over_old"] = r["new_median"] / r["old_median"]
        rows.append(r)
        print(json.dumps(r), file=sys.stderr, flush=True)
    print("| configuration | old tok/s (median, range) | new tok/s (median, range) | new / old |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['config']} | {r['old_median']:.0f} ({r['old_min']:.0f}-{r['old_max']:.0f}) | "
              f"{r['new_median']:.0f} ({r['new_min']:.0f}-{r['new_max']:.0f}) | {r['new_over_old']:.3f} |")


if __name__ == "__main__":
    main()
