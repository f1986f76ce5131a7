"""Training throughput: attend (bench/train_throughput) against PyTorch (tools/train_peer.py) on
the same model and batch, interleaved, --rounds times each; prints medians as a table and
one JSON object per configuration.

  /usr/bin/python3 tools/bench_train.py --presets small base --rounds 3
  /usr/bin/python3 tools/bench_train.py --presets gpt2-small --batch 8 --len 256 --vocab 50257 \
      --steps 3 --warmup 2 --rounds 3      # a decoder-only preset: windows of --len tokens
  /usr/bin/python3 tools/bench_train.py --presets base --precisions fp32 bf16 --rounds 3

--precisions fp32 bf16 runs attend with train.precision's bf16 products and PyTorch under
torch.autocast(bf16) too, all four interleaved in each round; each row compares the two at one
precision, and a last table gives attend bf16 / attend fp32 from the same rounds.

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
    ap.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32"])
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/bench/train_throughput"))
    a = ap.parse_args()
    env = bench_env(a.threads)
    results = []
    for preset in a.presets:
        shape = ["--preset", preset, "--batch", str(a.batch), "--src-len", str(a.len),
                 "--tgt-len", str(a.len), "--vocab", str(a.vocab), "--steps", str(a.steps),
                 "--warmup", str(a.warmup),
                 "--threads", str(a.threads)]
        ours = {p: [] for p in a.precisions}
        peer = {p: [] for p in a.precisions}
        for _ in range(a.rounds):
            for p in a.precisions:
                ours[p].append(run([a.binary] + shape + ["--precision", p], env))
                peer[p].append(run(["/usr/bin/python3", os.path.join(ROOT, "tools/train_peer.py")]
                                   + shape + ["--precision", p], env))
                require_openblas(peer[p][-1])
        med = lambda rs, k: statistics.median(r[k] for r in rs)
        for p in a.precisions:
            o, q = ours[p], peer[p]
            r = {
                "preset": preset, "precision": p, "batch": a.batch, "len": a.len, "vocab": a.vocab,
                "threads": a.threads, "rounds": a.rounds, "params": o[0]["params"],
                "attend_tgt_tokens_per_s": med(o, "tgt_tokens_per_s"),
                "attend_tgt_tokens_per_s_range": [min(x["tgt_tokens_per_s"] for x in o),
                                                  max(x["tgt_tokens_per_s"] for x in o)],
                "torch_tgt_tokens_per_s": med(q, "tgt_tokens_per_s"),
                "attend_src_tgt_tokens_per_s": med(o, "src_tgt_tokens_per_s"),
                "speedup": med(o, "tgt_tokens_per_s") / med(q, "tgt_tokens_per_s"),
                "attend_mfu": med(o, "mfu"), "gemm_peak_gflops": med(o, "gemm_peak_gflops"),
                "attend_achieved_gflops": med(o, "achieved_gflops"),
                "torch_mfu": med(o, "model_gflops_per_step") / med(q, "step_s") / med(o, "gemm_peak_gflops"),
                "torch_gemm_gflops": med(q, "torch_gemm_gflops"),
                "attend_peak_rss_mib": med(o, "peak_rss_mib"), "torch_peak_rss_mib": med(q, "peak_rss_mib"),
            }
            if p == "bf16" and "fp32" in ours:  # the same rounds' fp32 run of attend
                r["attend_bf16_over_fp32"] = [
                    b["tgt_tokens_per_s"] / f["tgt_tokens_per_s"]
                    for b, f in zip(ours["bf16"], ours["fp32"])]
            results.append(r)
    print("| preset | precision | params | attend tgt tok/s | PyTorch tgt tok/s | speed-up | attend MFU | PyTorch MFU | GEMM peak GFLOP/s | attend / PyTorch peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['preset']} | {r['precision']} | {r['params'] / 1e6:.1f}M | {r['attend_tgt_tokens_per_s']:.0f} | "
              f"{r['torch_tgt_tokens_per_s']:.0f} | {r['speedup']:.2f}x | {100 * r['attend_mfu']:.1f}% | "
              f"{100 * r['torch_mfu']:.1f}% | {r['gemm_peak_gflops']:.0f} | "
              f"{r['attend_peak_rss_mib']:.0f} / {r['torch_peak_rss_mib']:.0f} |")
    for r in results:
        if "attend_bf16_over_fp32" in r:
            x = sorted(r["attend_bf16_over_fp32"])
            print(f"attend bf16 / fp32, {r['preset']}: median {statistics.median(x):.2f}x "
                  f"(range {x[0]:.2f}-{x[-1]:.2f}, {len(x)} interleaved rounds)")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
