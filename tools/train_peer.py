"""PyTorch peer for bench/train_throughput: the same model (tools/transformer_reference.py, with
dropout where attend has it), the same synthetic full-length batch, label-smoothed loss summed
and divided by the target tokens, Adam (0.9, 0.98, 1e-9); median step time over --steps after
--warmup. Prints one JSON object like train_throughput does.

  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/train_peer.py --preset small --threads 2

--precision bf16 runs forward and loss under torch.autocast("cpu", dtype=torch.bfloat16)
(PyTorch's CPU mixed precision: its matmuls in bf16 through oneDNN, weights and Adam in fp32),
the peer of train_throughput --precision bf16.

A decoder-only preset (gpt-tiny, gpt2-small) trains tools/transformer_reference.py's DecoderOnly
(pre-norm, GELU, learned positions, tied embeddings, dropout 0.1) on --batch windows of
--tgt-len tokens with the next-token loss (no label smoothing), as train_throughput does.

Run it through tools/bench_train.py, which interleaves it with attend and checks that torch
runs on OpenBLAS (Debian's python3-torch takes whatever libblas.so.3 the alternatives select).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_reference import DecoderOnly, Transformer  # noqa: E402

PRESETS = {
    "tiny": dict(d_model=128, ffn=256, heads=4, layers=4, dropout=0.3),
    "small": dict(d_model=256, ffn=1024, heads=4, layers=3, dropout=0.1),
    "base": dict(d_model=512, ffn=2048, heads=8, layers=6, dropout=0.1),
    "big": dict(d_model=1024, ffn=4096, heads=16, layers=6, dropout=0.3),
}
LM_PRESETS = {  # decoder-only (attend's gpt-tiny and gpt2-small)
    "gpt-tiny": dict(d_model=256, ffn=1024, heads=4, layers=4, dropout=0.1, max_positions=256),
    "gpt2-small": dict(d_model=768, ffn=3072, heads=12, layers=12, dropout=0.1,
                       max_positions=1024),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--src-len", type=int, default=32)
    ap.add_argument("--tgt-len", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=None)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    lm = a.preset in LM_PRESETS
    if lm:
        c = dict(LM_PRESETS[a.preset], vocab=a.vocab, tgt_vocab=a.vocab, norm="pre",
                 activation="gelu", positions="learned", share_embeddings=True)
    else:
        c = dict(PRESETS[a.preset], vocab=a.vocab, tgt_vocab=a.vocab, norm="post",
                 activation="relu", positions="sinusoidal", share_embeddings=True,
                 max_positions=1024)
    if a.dropout is not None:
        c["dropout"] = a.dropout
    model = DecoderOnly(c) if lm else Transformer(c)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    B, S, T = a.batch, a.src_len, a.tgt_len
    src = torch.randint(4, a.vocab, (B, S))
    tgt_in = torch.randint(4, a.vocab, (B, T))
    tgt_out = torch.randint(4, a.vocab, (B * T,))
    sl = torch.full((B,), S)
    tl = torch.full((B,), T)
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            logits = model(tgt_in, tl) if lm else model(src, sl, tgt_in, tl)
            loss = torch.nn.functional.cross_entropy(logits.float(), tgt_out, ignore_index=0,
                                                     label_smoothing=0.0 if lm else 0.1,
                                                     reduction="sum")
        (loss / (B * T)).backward()
        opt.step()
        if step >= a.warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    # GEMM rate of this torch build on the same 2048^3 product attend measures.
    dtype = torch.bfloat16 if a.precision == "bf16" else torch.float32
    x = torch.full((2048, 2048), 0.5, dtype=dtype)
    y = torch.full((2048, 2048), 0.25, dtype=dtype)
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(x, y)
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "batch": B,
        "src_len": 0 if lm else S, "tgt_len": T, "vocab": a.vocab, "threads": torch.get_num_threads(), "precision": a.precision,
        "params": sum(p.numel() for p in model.parameters()), "step_s": med,
        "tgt_tokens_per_s": B * T / med, "src_tgt_tokens_per_s": B * ((0 if lm else S) + T) / med,
        "torch_gemm_gflops": best,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "blas": "openblas" if "openblas" in open("/proc/self/maps").read() else "other",
    }))


if __name__ == "__main__":
    main()
