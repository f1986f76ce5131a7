"""Fused attention against PyTorch's composed attention (matmul, masked softmax, matmul):
bench/attention_shapes and tools/attention_peer.py on the same shapes and masks, interleaved,
--rounds times each; prints medians (with range) of forward and forward + backward milliseconds
and the speed-up, as a table, and one JSON object per configuration on stderr.

  /usr/bin/python3 tools/bench_attention.py --rounds 3

Configurations: n in --ns, heads x width in --shapes (H:Dh), causal and not, and a padded
batch of 2 (every other entry's keys end at 3n/4). Both run with the same thread count; torch
on Debian's OpenBLAS (the script refuses to report otherwise).
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, bench_env, require_openblas, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns", nargs="+", type=int, default=[256, 1024, 4096])
    ap.add_argument("--shapes", nargs="+", default=["8:64", "4:32", "16:64"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/bench/attention_shapes"))
    a = ap.parse_args()
    env = bench_env(a.threads)
    peer = [sys.executable, os.path.join(ROOT, "tools/attention_peer.py")]
    configs = []
    for shape in a.shapes:
        h, d = shape.split(":")
        for n in a.ns:
            for causal, pad, batch in ((0, 0, 1), (1, 0, 1), (0, 1, 2)):
                configs.append({"n": n, "heads": int(h), "dh": int(d), "causal": causal,
                                "pad": pad, "batch": batch})
    rows = []
    for c in configs:
        # Fewer repetitions where one call takes long (n 4096, 16 heads: about a second).
        reps = 5 if c["n"] * c["n"] * c["heads"] * c["batch"] <= 2 ** 26 else 3
        flags = []
        for k, v in c.items():
            flags += [f"--{k}", str(v)]
        flags += ["--reps", str(reps), "--threads", str(a.threads)]
        res = {"attend": [], "torch": []}
        for _ in range(a.rounds):
            res["attend"].append(run([a.binary] + flags, env))
            t = run(peer + flags, env)
            require_openblas(t)
            res["torch"].append(t)
        row = dict(c)
        for impl in ("attend", "torch"):
            for key in ("fwd_ms", "fwdbwd_ms"):
                xs = [r[key] for r in res[impl]]
                row[f"{impl}_{key}"] = statistics.median(xs)
                row[f"{impl}_{key}_range"] = [min(xs), max(xs)]
        row["fwd_speedup"] = row["torch_fwd_ms"] / row["attend_fwd_ms"]
        row["fwdbwd_speedup"] = row["torch_fwdbwd_ms"] / row["attend_fwdbwd_ms"]
        row["kernel"] = res["attend"][0]["kernel"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print("| n | heads x width | mask | attend fwd ms | torch fwd ms | speed-up | attend f+b ms | "
          "torch f+b ms | speed-up |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def cell(r, impl, key):
        lo, hi = r[f"{impl}_{key}_range"]
        return f"{r[f'{impl}_{key}']:.1f} ({lo:.1f}-{hi:.1f})"

    for r in rows:
        mask = "causal" if r["causal"] else ("padded, batch 2" if r["pad"] else "none")
        print(f"| {r['n']} | {r['heads']} x {r['dh']} | {mask} | {cell(r, 'attend', 'fwd_ms')} | "
              f"{cell(r, 'torch', 'fwd_ms')} | {r['fwd_speedup']:.2f} | "
              f"{cell(r, 'attend', 'fwdbwd_ms')} | {cell(r, 'torch', 'fwdbwd_ms')} | "
              f"{r['fwdbwd_speedup']:.2f} |")


if __name__ == "__main__":
    main()
