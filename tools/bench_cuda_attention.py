#!/usr/bin/env python3
"""attend's fused CUDA attention against PyTorch's scaled_dot_product_attention on one GPU.

For each shape (batch 1, 16 heads of width 64, n from --sizes, causal and not) and each of
--rounds rounds, runs bench/cuda_attention (attend, f32) and then SDPA (f32, and bf16 as the
target's reference) on the same device, interleaved, and prints one markdown table of medians
with their ranges: forward and forward+backward TFLOP/s (FLOPs as cuda_attention counts them)
and attend's ratio to SDPA in f32. scripts/gpu-check.sh runs it; it needs a GPU and torch.

usage: bench_cuda_attention.py BINARY [--sizes 512,1024,...] [--rounds 3]
"""
import argparse
import statistics
import subprocess
import sys


def attend_run(binary, n, causal, heads, dim):
    out = subprocess.run([binary, "--n", str(n), "--causal", str(int(causal)), "--heads",
                          str(heads), "--head-dim", str(dim)], check=True, capture_output=True,
                         text=True).stdout
    fields = dict(kv.split("=") for kv in out.split())
    return float(fields["fwd_tflops"]), float(fields["fwdbwd_tflops"])


def torch_run(torch, n, causal, heads, dim, dtype, repeats=5):
    f = torch.nn.functional.scaled_dot_product_attention
    q, k, v = ((torch.rand(1, heads, n, dim, device="cuda", dtype=dtype) - 0.5).requires_grad_()
               for _ in range(3))
    dout = torch.rand(1, heads, n, dim, device="cuda", dtype=dtype) - 0.5

    def timed(fn):
        fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            ms.append(start.elapsed_time(end))
        return statistics.median(ms)

    def fwd():
        with torch.no_grad():
            f(q, k, v, is_causal=causal)

    def fwdbwd():
        o = f(q, k, v, is_causal=causal)
        o.backward(dout)

    flops = 4.0 * heads * n * n * dim * (0.5 if causal else 1.0)
    return flops / timed(fwd) * 1e-9, 3.5 * flops / timed(fwdbwd) * 1e-9


def cell(values):
    m = statistics.median(values)
    return f"{m:.2f} ({min(values):.2f}-{max(values):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binary")
    ap.add_argument("--sizes", default="512,1024,2048,4096,8192")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=64)
    a = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_cuda_attention: torch is not importable; no comparison", file=sys.stderr)
        return 1
    if not torch.cuda.is_available():
        print("bench_cuda_attention: no CUDA device for torch", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; batch 1, "
          f"{a.heads} heads x {a.head_dim}; TFLOP/s, median (range) of {a.rounds} rounds")
    print()
    print("| n | causal | attend f32 fwd | SDPA f32 fwd | SDPA bf16 fwd | attend f32 fwd+bwd | "
          "SDPA f32 fwd+bwd | SDPA bf16 fwd+bwd | attend / SDPA f32 (fwd, fwd+bwd) |")
    print("| --- |" + " --- |" * 8)
    for n in (int(s) for s in a.sizes.split(",")):
        for causal in (False, True):
            rows = {"a": [], "t32": [], "t16": []}
            for _ in range(a.rounds):
                rows["a"].append(attend_run(a.binary, n, causal, a.heads, a.head_dim))
                rows["t32"].append(torch_run(torch, n, causal, a.heads, a.head_dim, torch.float32))
                rows["t16"].append(torch_run(torch, n, causal, a.heads, a.head_dim, torch.bfloat16))
            col = {key: ([r[0] for r in v], [r[1] for r in v]) for key, v in rows.items()}
            ratio_f = statistics.median(col["a"][0]) / statistics.median(col["t32"][0])
            ratio_b = statistics.median(col["a"][1]) / statistics.median(col["t32"][1])
            print(f"| {n} | {int(causal)} | {cell(col['a'][0])} | {cell(col['t32'][0])} | "
                  f"{cell(col['t16'][0])} | {cell(col['a'][1])} | {cell(col['t32'][1])} | "
                  f"{cell(col['t16'][1])} | {ratio_f:.2f}x, {ratio_b:.2f}x |")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
