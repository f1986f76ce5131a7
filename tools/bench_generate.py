"""Generation throughput: attend (bench/generate_throughput) against PyTorch
(tools/generate_peer.py) on the same decoder-only model shape, prompts and forced output length,
interleaved, --rounds times each; prints medians as a table and one JSON object per
configuration.

  /usr/bin/python3 tools/bench_generate.py --rounds 3

Configurations: each --shapes entry (preset:vocab) at batch 1 and --large-batch, --prompt
tokens -> --new tokens (greedy, no end-of-text stop); then the time to the first token after a
--ttft-prompt-token prompt (batch 1, one new token). attend runs once per --precisions entry
(fp32; bf16: weights stored in bf16, f32 arithmetic), torch in fp32, interleaved in each round;
the speed-up of each attend precision is against that torch run. Both run with the same thread
count; torch
on Debian's OpenBLAS (OPENBLAS_CORETYPE=SkylakeX, see docs/gemm.md) -- the script refuses to
report otherwise.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, bench_env, require_openblas, run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="+", default=["gpt-tiny:69", "gpt-tiny:50257", "gpt2-small:50257"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--large-batch", type=int, default=16)
    ap.add_argument("--ttft-prompt", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1, help="timed calls per process (after one warm-up)")
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--only-ttft", action="store_true", help="only the time to the first token")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/bench/generate_throughput"))
    a = ap.parse_args()
    env = bench_env(a.threads)
    peer = ["/usr/bin/python3", os.path.join(ROOT, "tools/generate_peer.py")]
    subprocess.run(peer + ["--check"], env=env, check=True, capture_output=True)
    results = []
    for shape in a.shapes:
        preset, vocab = shape.split(":")
        configs = [(1, a.prompt, a.new), (a.large_batch, a.prompt, a.new), (1, a.ttft_prompt, 1)]
        if a.only_ttft:
            configs = configs[2:]
        for batch, prompt, new in configs:
            args = ["--preset", preset, "--vocab", vocab, "--context", "1024", "--batch", str(batch),
                    "--prompt", str(prompt), "--new", str(new), "--runs", str(a.runs),
                    "--threads", str(a.threads)]
            ours = {p: [] for p in a.precisions}
            theirs = []
            for _ in range(a.rounds):
                for p in a.precisions:
                    ours[p].append(run([a.binary] + args + ["--precision", p], env))
                theirs.append(run(peer + args, env))
                require_openblas(theirs[-1])
            for p in a.precisions:
                r = {"preset": preset, "vocab": int(vocab), "params": ours[p][0]["params"],
                     "precision": p, "batch": batch, "prompt": prompt, "new": new,
                     "threads": a.threads, "rounds": a.rounds}
                for who, rs in (("attend", ours[p]), ("torch", theirs)):
                    for k in ("seconds", "new_tokens_per_s", "peak_rss_mib"):
                        vals = [x[k] for x in rs]
                        r[f"{who}_{k}"] = statistics.median(vals)
                        r[f"{who}_{k}_range"] = [min(vals), max(vals)]
                r["speedup"] = r["torch_seconds"] / r["attend_seconds"]
                results.append(r)
                print(json.dumps(r), file=sys.stderr, flush=True)
    print("| model | vocab | batch | prompt -> new | attend precision | attend | PyTorch (fp32) | speed-up | attend / PyTorch peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if r["new"] == 1:
            cell = lambda who: (f"{1000 * r[who + '_seconds']:.0f} ms to first token "
                                f"({1000 * r[who + '_seconds_range'][0]:.0f}-{1000 * r[who + '_seconds_range'][1]:.0f})")
        else:
            cell = lambda who: (f"{r[who + '_new_tokens_per_s']:.0f} tok/s "
                                f"({r[who + '_new_tokens_per_s_range'][0]:.0f}-{r[who + '_new_tokens_per_s_range'][1]:.0f})")
        print(f"| {r['preset']} ({r['params'] / 1e6:.1f}M) | {r['vocab']} | {r['batch']} | {r['prompt']} -> {r['new']} | "
              f"{r['precision']} | {cell('attend')} | {cell('torch')} | {r['speedup']:.2f}x | "
              f"{r['attend_peak_rss_mib']:.0f} / {r['torch_peak_rss_mib']:.0f} |")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
