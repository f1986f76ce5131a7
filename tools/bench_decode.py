"""Decoding throughput: attend (bench/decode_throughput) against PyTorch (tools/decode_peer.py)
on the same model shape, sources and forced output length, interleaved, --rounds times each;
prints medians as a table and one JSON object per configuration.

  /usr/bin/python3 tools/bench_decode.py --presets small base --rounds 3
  /usr/bin/python3 tools/bench_decode.py --presets base --beams 4 --precisions fp32 int8

--precisions runs attend once per precision in every round (decode_throughput --precision:
int8 quantizes the linear layers and the output projection per row; bf16 stores the weights in
bf16), interleaved with the one PyTorch fp32 run; each precision gets its own table row.

Configurations per preset: greedy and beam 4, at batch 1 (per-sentence latency) and at
--large-batch. Both run with the same thread count; torch on Debian's OpenBLAS
(OPENBLAS_CORETYPE=SkylakeX, see docs/gemm.md) -- the script refuses to report otherwise.
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
    ap.add_argument("--presets", nargs="+", default=["small", "base"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--len", type=int, default=24)
    ap.add_argument("--large-batch", type=int, default=32)
    ap.add_argument("--sentences-1", type=int, default=12, help="sentences at batch 1")
    ap.add_argument("--batches", type=int, default=2, help="timed batches at the large batch")
    ap.add_argument("--precisions", nargs="+", default=["fp32"], choices=["fp32", "bf16", "int8"])
    ap.add_argument("--beams", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=None,
                    help="batch sizes (default: 1 and --large-batch)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/bench/decode_throughput"))
    a = ap.parse_args()
    env = bench_env(a.threads)
    subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools/decode_peer.py"), "--check"],
                   env=env, check=True, capture_output=True)
    results = []
    for preset in a.presets:
        for batch in (a.batch_sizes or [1, a.large_batch]):
            for beam in a.beams:
                n = a.sentences_1 if batch == 1 else a.batches * batch
                shape = ["--preset", preset, "--vocab", str(a.vocab), "--len", str(a.len),
                         "--beam", str(beam), "--batch", str(batch), "--sentences", str(n),
                         "--threads", str(a.threads)]
                ours = {p: [] for p in a.precisions}
                peer = []
                for _ in range(a.rounds):
                    for p in a.precisions:
                        ours[p].append(run([a.binary] + shape + ["--precision", p], env))
                    peer.append(run(["/usr/bin/python3", os.path.join(ROOT, "tools/decode_peer.py")] + shape, env))
                    require_openblas(peer[-1])
                med = lambda rs, k: statistics.median(r[k] for r in rs)
                rng = lambda rs, k: [min(r[k] for r in rs), max(r[k] for r in rs)]
                for p in a.precisions:
                    r = {"preset": preset, "precision": p, "params": ours[p][0]["params"],
                         "vocab": a.vocab, "len": a.len, "beam": beam, "batch": batch,
                         "sentences": n, "threads": a.threads, "rounds": a.rounds}
                    for who, rs in (("attend", ours[p]), ("torch", peer)):
                        for k in ("sentences_per_s", "tgt_tokens_per_s", "batch_p50_s",
                                  "batch_p90_s", "peak_rss_mib"):
                            r[f"{who}_{k}"] = med(rs, k)
                        r[f"{who}_tgt_tokens_per_s_range"] = rng(rs, "tgt_tokens_per_s")
                    r["speedup"] = r["attend_tgt_tokens_per_s"] / r["torch_tgt_tokens_per_s"]
                    results.append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
    print("| preset | search | batch | attend precision | attend tgt tok/s | PyTorch tgt tok/s | speed-up | attend p50 / p90 ms | PyTorch p50 / p90 ms | attend / PyTorch peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        lat = lambda who: (f"{1000 * r[who + '_batch_p50_s']:.0f} / {1000 * r[who + '_batch_p90_s']:.0f}"
                           if r["batch"] == 1 else "-")
        print(f"| {r['preset']} | {'greedy' if r['beam'] == 1 else 'beam ' + str(r['beam'])} | {r['batch']} | {r['precision']} | "
              f"{r['attend_tgt_tokens_per_s']:.0f} | {r['torch_tgt_tokens_per_s']:.0f} | {r['speedup']:.2f}x | "
              f"{lat('attend')} | {lat('torch')} | {r['attend_peak_rss_mib']:.0f} / {r['torch_peak_rss_mib']:.0f} |")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
