"""PyTorch peer for bench/generate_throughput: the same decoder-only model
(tools/transformer_reference.py's DecoderOnly: pre-norm, GELU, learned positions, tied
embeddings), generating greedily with its own key/value cache: the prompts are read in one
causal pass that keeps every layer's keys and values, then each step feeds one token per
sequence, appends its keys/values (torch.cat, as common PyTorch generation code does) and
projects only the new position. Every sequence generates exactly --new tokens (no end-of-text
stop), so the work equals attend's. Prints one JSON object like generate_throughput does.

  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/generate_peer.py --preset gpt-tiny --batch 1

Run it through tools/bench_generate.py, which interleaves it with attend and checks that torch
runs on OpenBLAS. --check compares the cached generation with the uncached full forward pass.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from transformer_reference import DecoderOnly  # noqa: E402

PRESETS = {  # attend's presets (src/nn/transformer.cpp)
    "gpt-tiny": dict(d_model=256, ffn=1024, heads=4, layers=4),
    "gpt2-small": dict(d_model=768, ffn=3072, heads=12, layers=12),
}


def split(x, h):  # [B, T, D] -> [B, H, T, Dh]
    b, t, d = x.shape
    return x.view(b, t, h, d // h).transpose(1, 2)


def attention(a, y, cache):
    """Self-attention of y [B, T, D] over the cached keys/values and its own (causal)."""
    k, v = split(a.k_proj(y), a.h), split(a.v_proj(y), a.h)
    if cache is not None:
        k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
    q = split(a.q_proj(y), a.h)
    b, t, d = y.shape
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // a.h)  # [B, H, T, Tk]
    if t > 1:
        tk = k.shape[2]
        future = torch.arange(tk)[None, :] > torch.arange(tk - t, tk)[:, None]
        scores = scores.masked_fill(future, float("-inf"))
    out = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(b, t, d)
    return a.out_proj(out), (k, v)


def forward_cached(model, ids, start, caches):
    """Hidden state of the last position of ids [B, T] at positions start.., caches updated."""
    y = model.embed_tokens(ids) * math.sqrt(model.c["d_model"])
    y = y + model.decoder.embed_positions.weight[start:start + ids.shape[1]][None]
    for i, layer in enumerate(model.decoder.layers):
        h, caches[i] = attention(layer.self_attn, layer.self_attn_layer_norm(y), caches[i])
        y = y + h
        y = y + layer.fc2(F.gelu(layer.fc1(layer.final_layer_norm(y))))
    return model.decoder.layer_norm(y[:, -1])


def generate(model, prompts, new):
    """Greedy continuation of prompts [B, P] by `new` tokens: [B, new]."""
    caches = [None] * len(model.decoder.layers)
    h = forward_cached(model, prompts, 0, caches)
    out = []
    pos = prompts.shape[1]
    for step in range(new):
        logits = h @ model.embed_tokens.weight.t()
        logits[:, :3] = float("-inf")  # pad, unk, bos: never drawn (as in attend)
        tok = logits.argmax(-1)
        out.append(tok)
        if step + 1 == new:
            break
        h = forward_cached(model, tok[:, None], pos, caches)
        pos += 1
    return torch.stack(out, 1)


def build(preset, vocab, context):
    c = dict(PRESETS[preset], vocab=vocab, tgt_vocab=vocab, norm="pre", activation="gelu",
             positions="learned", share_embeddings=True, max_positions=context, dropout=0.0)
    torch.manual_seed(0)
    model = DecoderOnly(c)
    model.eval()
    return model


def check():
    model = build("gpt-tiny", 97, 64)
    with torch.inference_mode():
        prompts = torch.randint(4, 97, (3, 9))
        got = generate(model, prompts, 12)
        seq = prompts
        for _ in range(12):
            T = seq.shape[1]
            logits = model(seq, torch.full((3,), T)).view(3, T, -1)[:, -1]
            logits[:, :3] = float("-inf")
            seq = torch.cat([seq, logits.argmax(-1)[:, None]], 1)
    assert torch.equal(got, seq[:, 9:]), "cached generation differs from the full pass"
    print(json.dumps({"check": "ok"}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt-tiny", choices=sorted(PRESETS))
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.check:
        return check()
    model = build(a.preset, a.vocab, a.context)
    times = []
    with torch.inference_mode():
        for r in range(a.warmup + a.runs):
            g = torch.Generator().manual_seed(r)
            prompts = torch.randint(4, a.vocab, (a.batch, a.prompt), generator=g)
            t0 = time.perf_counter()
            out = generate(model, prompts, a.new)
            s = time.perf_counter() - t0
            assert out.shape == (a.batch, a.new)
            if r >= a.warmup:
                times.append(s)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "vocab": a.vocab,
        "batch": a.batch, "prompt": a.prompt, "new": a.new, "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()), "seconds": med,
        "new_tokens_per_s": a.batch * a.new / med,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "blas": "openblas" if "openblas" in open("/proc/self/maps").read() else "other",
    }))


if __name__ == "__main__":
    main()
