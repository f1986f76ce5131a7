"""Data-parallel scaling on one machine: bench/train_throughput as 1 rank x 1 thread, N ranks x
1 thread (mpirun) and 1 rank x N threads, interleaved --rounds times; prints, per preset, the
median global target tokens/s of each (with range), the ratio N ranks / 1 rank, and the
seconds per step spent all-reducing and waiting for it (the part backward did not hide).

  /usr/bin/python3 tools/bench_scaling.py --presets small base --ranks 2 --rounds 3
  (add --mca "btl tcp,self" to send the gradients over TCP instead of shared memory)
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT, bench_env, run  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build/release"))
    p.add_argument("--presets", nargs="+", default=["small", "base"])
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--len", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--mca", default="", help='e.g. "btl tcp,self"')
    a = p.parse_args()
    exe = os.path.join(a.build, "bench/train_throughput")
    mpirun = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "core"]
    if a.mca:
        key, value = a.mca.split()
        mpirun += ["--mca", key, value]
    for preset in a.presets:
        args = ["--preset", preset, "--batch", str(a.batch), "--src-len", str(a.len), "--tgt-len",
                str(a.len), "--vocab", "8000", "--steps", str(a.steps), "--warmup", "2"]
        sides = {
            "1 rank x 1 thread": ([exe] + args + ["--threads", "1"], 1),
            f"{a.ranks} ranks x 1 thread": (mpirun + ["-np", str(a.ranks), exe] + args
                                            + ["--threads", "1"], 1),
            f"1 rank x {a.ranks} threads": ([exe] + args + ["--threads", str(a.ranks)], a.ranks),
        }
        got = {k: [] for k in sides}
        for _ in range(a.rounds):
            for name, (cmd, threads) in sides.items():
                got[name].append(run(cmd, bench_env(threads)))
        base = statistics.median(r["tgt_tokens_per_s"] for r in got["1 rank x 1 thread"])
        for name, rs in got.items():
            tps = [r["tgt_tokens_per_s"] for r in rs]
            med = statistics.median(tps)
            print(json.dumps({
                "preset": preset, "config": name, "rounds": a.rounds,
                "tgt_tokens_per_s": round(med, 1), "min": round(min(tps), 1),
                "max": round(max(tps), 1), "over_1x1": round(med / base, 3),
                "comm_s_per_step": round(statistics.median(r["comm_s_per_step"] for r in rs), 4),
                "comm_wait_s_per_step": round(statistics.median(
                    r["comm_wait_s_per_step"] for r in rs), 4),
                "step_s": round(statistics.median(r["step_s"] for r in rs), 4),
                "mca": a.mca}), flush=True)


if __name__ == "__main__":
    main()
