"""A cost model of data-parallel Transformer training with ring all-reduce (docs/scaling.md).

Counts the parameters and training FLOPs of the paper's base and big models (WMT14 EN-DE: a
shared 37,000-token vocabulary, tied embeddings, batches of 25,000 source + 25,000 target
tokens), the bytes each step all-reduces (fp32 gradients in 25 MB buckets), and the time of a
ring all-reduce on a link of bandwidth B and per-message latency alpha:

    T_comm = k * 2 (N - 1) * alpha + 2 (N - 1) / N * S / B      (k buckets, S bytes, N ranks)

Across nodes, B is the node's network bandwidth (NICs x per-NIC rate: NCCL runs one ring per
NIC) when that is below the GPUs' NVLink. A step takes T_compute + T_exposed, where backward
(2/3 of the compute) hides the communication except the last bucket's:

    T_exposed = max(T_comm / k, T_comm - 2/3 T_compute)

and the scaling efficiency is T_compute / (T_compute + T_exposed). Vendor link figures, latencies,
the achieved fraction of link bandwidth and the GPU's model-FLOP utilisation are assumptions,
printed with the tables; the check against this machine takes the figures measured by
tools/bench_scaling.py (defaults: docs/scaling.md, 2026-11-29).

  python3 tools/scaling_model.py                 # markdown tables for docs/scaling.md
  python3 tools/scaling_model.py --mfu 0.3       # another assumed GPU utilisation
"""
import argparse
import math

VOCAB = 37000
SRC_TOKENS = TGT_TOKENS = 25000  # per step, the paper's batches
MEAN_LEN = 25                    # tokens per sentence (25,000 tokens ~ 1,000 sentence pairs)
PAPER_STEPS = 100_000            # base: 100k steps, 12 hours on 8 P100 (the paper, section 5.2)

MODELS = {"base": dict(d=512, f=2048, layers=6), "big": dict(d=1024, f=4096, layers=6)}

# name: (bandwidth per GPU and direction in GB/s, latency per message in seconds)
LINKS = {
    "NVLink 4 (H100/H200 SXM, 450 GB/s per direction)": (450.0, 3e-6),
    "InfiniBand NDR, 8 x 400 Gb/s per node": (8 * 50.0, 5e-6),
    "25 GbE, 1 port per node": (3.125, 30e-6),
}


def params(d, f, layers):
    attn = 4 * (d * d + d)
    ffn = d * f + f + f * d + d
    enc = layers * (attn + ffn + 2 * 2 * d)
    dec = layers * (2 * attn + ffn + 3 * 2 * d)
    return enc + dec + VOCAB * d  # one embedding table shared by both sides and the output


def train_flops(d, f, layers, src=SRC_TOKENS, tgt=TGT_TOKENS, n=MEAN_LEN):
    """Forward + backward FLOPs of one step: 6 per weight per token, 12 n d per attention row."""
    enc = layers * (6 * (4 * d * d + 2 * d * f) * src + 12 * n * d * src)
    dec = layers * (6 * (6 * d * d + 2 * d * f) * tgt + 6 * 2 * d * d * src  # cross-attn k, v
                    + 12 * (n / 2) * d * tgt + 12 * n * d * tgt)             # causal self, cross
    return enc + dec + 6 * VOCAB * d * tgt


def ring_seconds(nbytes, ranks, bw, alpha, bucket=25e6, efficiency=0.8):
    if ranks == 1:
        return 0.0, 1
    k = max(1, math.ceil(nbytes / bucket))
    t = k * 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * nbytes / (bw * 1e9 * efficiency)
    return t, k


def step(t_compute, t_comm, k):
    exposed = 0.0 if t_comm == 0 else max(t_comm / k, t_comm - 2 / 3 * t_compute)
    return t_compute + exposed


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--peak", type=float, default=989.0, help="GPU dense bf16 TFLOP/s (H100/H200 SXM)")
    p.add_argument("--mfu", type=float, default=0.4, help="assumed model-FLOP utilisation")
    p.add_argument("--link-efficiency", type=float, default=0.8,
                   help="assumed fraction of a link's bandwidth an all-reduce achieves")
    # measured on this machine (docs/scaling.md): base preset, vocabulary 8,000, 64 x 32 tokens
    p.add_argument("--here-params", type=float, default=48.2e6)
    p.add_argument("--here-tokens-per-s", type=float, default=333.0, help="1 rank x 1 thread")
    p.add_argument("--here-allreduce-s", type=float, default=0.199, help="2 ranks, per step")
    p.add_argument("--here-ratio", type=float, default=1.97, help="measured 2 ranks / 1 rank")
    a = p.parse_args()
    rate = a.peak * 1e12 * a.mfu

    print("| model | parameters | fp32 gradient bytes per step | 25 MB buckets | training TFLOP per step |")
    print("| --- | --- | --- | --- | --- |")
    for name, m in MODELS.items():
        n = params(**m)
        print(f"| {name} | {n / 1e6:.1f}M | {4 * n / 1e6:.0f} MB | {math.ceil(4 * n / 25e6)} "
              f"| {train_flops(**m) / 1e12:.2f} |")
    base_flops = train_flops(**MODELS["base"])
    p100 = base_flops / (12 * 3600 / PAPER_STEPS) / 8
    print(f"\nAnchor: the paper's 100k base steps in 12 h on 8 P100 are {12 * 3600 / PAPER_STEPS:.3f} s "
          f"a step, {p100 / 1e12:.2f} TFLOP/s per GPU by this count ({100 * p100 / 9.3e12:.0f}% of "
          f"the P100's 9.3 TFLOP/s fp32 peak).")

    print(f"\nAssumed: GPU {a.peak:.0f} TFLOP/s bf16 at {100 * a.mfu:.0f}% utilisation "
          f"({rate / 1e12:.0f} TFLOP/s), all-reduce at {100 * a.link_efficiency:.0f}% of the link.\n")
    print("| model | GPUs | link | batch per GPU (tokens) | compute s/step | all-reduce s/step "
          "| exposed s/step | efficiency |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    nv = list(LINKS)[0]
    configs = [(8, nv), (64, list(LINKS)[1]), (64, list(LINKS)[2])]
    rows = {}
    for name, m in MODELS.items():
        nbytes = 4 * params(**m)
        for gpus, link in configs:
            bw, alpha = LINKS[link]
            if gpus > 8:
                bw = min(bw, LINKS[nv][0])
            for per_gpu in (TGT_TOKENS / gpus, TGT_TOKENS):  # the paper's batch split; 25k each
                t_c = train_flops(**m, src=per_gpu, tgt=per_gpu) / rate
                t_comm, k = ring_seconds(nbytes, gpus, bw, alpha, efficiency=a.link_efficiency)
                t = step(t_c, t_comm, k)
                rows[(name, gpus, link, per_gpu)] = t
                print(f"| {name} | {gpus} | {link} | {per_gpu:,.0f} | {t_c:.4f} | {t_comm:.4f} "
                      f"| {t - t_c:.4f} | {100 * t_c / t:.0f}% |")

    print("\nProjected wall time of the paper's base schedule (100k steps of 25,000-token batches, "
          "the batch split over the GPUs):\n")
    print("| GPUs | link | s/step | 100k steps |")
    print("| --- | --- | --- | --- |")
    one = train_flops(**MODELS["base"]) / rate
    print(f"| 1 | - | {one:.4f} | {one * PAPER_STEPS / 3600:.2f} h |")
    for gpus, link in configs:
        t = rows[("base", gpus, link, TGT_TOKENS / gpus)]
        print(f"| {gpus} | {link} | {t:.4f} | {t * PAPER_STEPS / 3600:.2f} h |")

    # The same model on the run measured here: 2 ranks on this machine's shared memory.
    t_c = 64 * 32 / a.here_tokens_per_s
    nbytes = 4 * a.here_params
    k = math.ceil(nbytes / 25e6)
    bw = 2 * (2 - 1) / 2 * nbytes / a.here_allreduce_s / 1e9  # the bandwidth the bench achieved
    t = step(t_c, a.here_allreduce_s, k)
    print(f"\nCheck on this machine (base preset, {a.here_params / 1e6:.1f}M parameters, "
          f"{nbytes / 1e6:.0f} MB in {k} buckets; 1 rank x 1 thread {t_c:.2f} s a step; measured "
          f"all-reduce {a.here_allreduce_s:.3f} s = {bw:.2f} GB/s): predicted 2 ranks / 1 rank = "
          f"{2 * t_c / t:.3f} with overlap, {2 * t_c / (t_c + a.here_allreduce_s):.3f} without; "
          f"measured {a.here_ratio:.2f}.")


if __name__ == "__main__":
    main()
