"""Training throughput: attend (bench/train_throughput) against PyTorch (tools/train_peer.py) on
the same model and batch, interleaved, --rounds times each; prints medians as a table and
one JSON object per configuration.

  /usr/bin/python3 tools/bench_train.py --presets small base --rounds 3
  /usr/bin/python3 tools/bench_train.py --presets gpt2-small --batch 8 --len 256 --vocab 50257 \
      --steps 3 --warmup 2 --rounds 3      # a decoder-only preset: windows of --len tokens

Both run with the same thread count. torch uses Debian's OpenBLAS (OPENBLAS_CORETYPE=SkylakeX:
OpenBLAS 0.3.21 misdetects this CPU as Prescott, see docs/gemm.md); the script refuses to
report when torch runs on another BLAS.
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
    ap.add_argument("--presets", nargs="+", default=["small", "base"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--len", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before the timed ones")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/bench/train_throughput"))
    a = ap.parse_args()
    env = bench_env(a.threads)
    results = []
    for preset in a.presets:
        shape = ["--preset", preset, "--batch", str(a.batch), "--src-len", str(a.len),
                 "--tgt-len", str(a.len), "--vocab", str(a.vocab), "--steps", str(a.steps),
                 "--warmup", str(a.warmup),
                 "--threads", str(a.threads)]
        ours, peer = [], []
        for _ in range(a.rounds):
            ours.append(run([a.binary] + shape, env))
            peer.append(run(["/usr/bin/python3", os.path.join(ROOT, "tools/train_peer.py")] + shape, env))
            require_openblas(peer[-1])
        med = lambda rs, k: statistics.median(r[k] for r in rs)
        r = {
            "preset": preset, "batch": a.batch, "len": a.len, "vocab": a.vocab,
            "threads": a.threads, "rounds": a.rounds, "params": ours[0]["params"],
            "attend_tgt_tokens_per_s": med(ours, "tgt_tokens_per_s"),
            "torch_tgt_tokens_per_s": med(peer, "tgt_tokens_per_s"),
            "attend_src_tgt_tokens_per_s": med(ours, "src_tgt_tokens_per_s"),
            "speedup": med(ours, "tgt_tokens_per_s") / med(peer, "tgt_tokens_per_s"),
            "attend_mfu": med(ours, "mfu"), "gemm_peak_gflops": med(ours, "gemm_peak_gflops"),
            "attend_achieved_gflops": med(ours, "achieved_gflops"),
            "torch_mfu": med(ours, "model_gflops_per_step") / med(peer, "step_s") / med(ours, "gemm_peak_gflops"),
            "torch_gemm_gflops": med(peer, "torch_gemm_gflops"),
            "attend_peak_rss_mib": med(ours, "peak_rss_mib"), "torch_peak_rss_mib": med(peer, "peak_rss_mib"),
        }
        results.append(r)
    print("| preset | params | attend tgt tok/s | PyTorch tgt tok/s | speed-up | attend MFU | PyTorch MFU | GEMM peak GFLOP/s | attend / PyTorch peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['preset']} | {r['params'] / 1e6:.1f}M | {r['attend_tgt_tokens_per_s']:.0f} | "
              f"{r['torch_tgt_tokens_per_s']:.0f} | {r['speedup']:.2f}x | {100 * r['attend_mfu']:.1f}% | "
              f"{100 * r['torch_mfu']:.1f}% | {r['gemm_peak_gflops']:.0f} | "
              f"{r['attend_peak_rss_mib']:.0f} / {r['torch_peak_rss_mib']:.0f} |")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
