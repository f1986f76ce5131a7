"""PyTorch peer for bench/attention_shapes: attention composed the way PyTorch models write it
(scores = q k^T * scale, padding/causal mask by masked_fill with -inf, softmax, probabilities
times v), forward, and forward + backward (autograd, the same upstream gradient), on the same
shape and mask. Prints one JSON object like attention_shapes.

  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/attention_peer.py --n 1024 --causal 1

Run it through tools/bench_attention.py, which interleaves it with attend and checks that
torch runs on OpenBLAS.
"""
import argparse
import json
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dh", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--causal", type=int, default=0, choices=[0, 1])
    ap.add_argument("--pad", type=int, default=0, choices=[0, 1])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    b, h, n, d = a.batch, a.heads, a.n, a.dh
    q0, k0, v0, dout = (torch.rand(b, h, n, d) - 0.5 for _ in range(4))
    scale = d ** -0.5
    hidden = torch.zeros(b, 1, n, n, dtype=torch.bool)  # True: the score is masked
    if a.pad:
        for i in range(1, b, 2):
            hidden[i, :, :, n * 3 // 4:] = True
    if a.causal:
        hidden = hidden | torch.triu(torch.ones(n, n, dtype=torch.bool), 1)[None, None]
    masked = bool(hidden.any())

    def attention(q, k, v):
        s = (q @ k.transpose(-1, -2)) * scale
        if masked:
            s = s.masked_fill(hidden, float("-inf"))
        return torch.softmax(s, dim=-1) @ v

    fwd, both = [], []
    for r in range(a.reps + 1):  # the first round warms up and is not counted
        with torch.no_grad():
            t0 = time.perf_counter()
            attention(q0, k0, v0)
            f = time.perf_counter() - t0
        q, k, v = (x.clone().requires_grad_(True) for x in (q0, k0, v0))
        t0 = time.perf_counter()
        attention(q, k, v).backward(dout)
        fb = time.perf_counter() - t0
        if r > 0:
            fwd.append(f)
            both.append(fb)
    flops = 4.0 * b * h * n * n * d * (0.5 if a.causal else 1.0)
    f, fb = statistics.median(fwd), statistics.median(both)
    print(json.dumps({"impl": "torch", "version": torch.__version__, "n": n, "heads": h, "dh": d,
                      "batch": b, "causal": a.causal, "pad": a.pad, "threads": a.threads,
                      "blas": "openblas" if "openblas" in open("/proc/self/maps").read()
                      else "other", "fwd_ms": round(f * 1e3, 3), "fwdbwd_ms": round(fb * 1e3, 3),
                      "fwd_gflops": round(flops / f / 1e9, 2),
                      "fwdbwd_gflops": round(3.5 * flops / fb / 1e9, 2)}))


if __name__ == "__main__":
    main()
