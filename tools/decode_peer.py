"""PyTorch peer for bench/decode_throughput: the same model (tools/transformer_reference.py
weights and layers), decoded incrementally with its own KV cache (self-attention keys/values
appended per step, encoder keys/values computed once), greedy or beam search vectorised over
the batch (top-k over beam x vocabulary, cache rows reordered with index_select). As in
attend's benchmark every output has exactly --out-len tokens (EOS masked out), so the work per
sentence is the same. Prints one JSON object like decode_throughput does.

  OPENBLAS_CORETYPE=SkylakeX /usr/bin/python3 tools/decode_peer.py --preset base --beam 4 --batch 32

Run it through tools/bench_decode.py, which interleaves it with attend and checks that torch
runs on OpenBLAS.
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
from train_peer import PRESETS  # noqa: E402
from transformer_reference import Transformer, sinusoid  # noqa: E402

EOS = 3


def heads(x, h):  # [N, T, D] -> [N, H, T, Dh]
    n, t, d = x.shape
    return x.view(n, t, h, d // h).transpose(1, 2)


def attend_cached(attn, q_in, k, v, key_lengths):
    """One query row against cached keys/values [N, H, Tk, Dh]."""
    n, _, d = q_in.shape
    q = heads(attn.q_proj(q_in), attn.h)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // attn.h)
    if key_lengths is not None:
        visible = torch.arange(k.shape[2])[None, :] < key_lengths[:, None]
        scores = scores.masked_fill(~visible[:, None, None, :], float("-inf"))
    out = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, 1, d)
    return attn.out_proj(out)


class Decoder:
    def __init__(self, model, memory, src_lengths):
        self.m = model
        self.c = model.c
        self.src_lengths = src_lengths
        self.cross = []
        for layer in model.decoder.layers:
            a = layer.encoder_attn
            self.cross.append((heads(a.k_proj(memory), a.h), heads(a.v_proj(memory), a.h)))
        self.self_kv = [None] * len(model.decoder.layers)
        self.pos = 0
        self.pe = sinusoid(1024, self.c["d_model"])

    def step(self, tokens):  # [N] -> log-probabilities [N, V]
        c = self.c
        x = self.m.embed_tokens(tokens)[:, None, :] * math.sqrt(c["d_model"]) + self.pe[self.pos]
        for i, layer in enumerate(self.m.decoder.layers):
            a = layer.self_attn
            pre = c["norm"] == "pre"
            y = layer.self_attn_layer_norm(x) if pre else x
            k, v = heads(a.k_proj(y), a.h), heads(a.v_proj(y), a.h)
            if self.self_kv[i] is not None:
                k = torch.cat([self.self_kv[i][0], k], dim=2)
                v = torch.cat([self.self_kv[i][1], v], dim=2)
            self.self_kv[i] = (k, v)
            s = attend_cached(a, y, k, v, None)
            x = x + s if pre else layer.self_attn_layer_norm(x + s)
            y = layer.encoder_attn_layer_norm(x) if pre else x
            s = attend_cached(layer.encoder_attn, y, *self.cross[i], self.src_lengths)
            x = x + s if pre else layer.encoder_attn_layer_norm(x + s)
            y = layer.final_layer_norm(x) if pre else x
            s = layer.fc2(layer.act(layer.fc1(y)))
            x = x + s if pre else layer.final_layer_norm(x + s)
        if c["norm"] == "pre":
            x = self.m.decoder.layer_norm(x)
        self.pos += 1
        return F.log_softmax(x[:, 0, :] @ self.m.embed_tokens.weight.t(), dim=-1)

    def reorder(self, rows):
        self.self_kv = [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in self.self_kv]

    def expand(self, k):  # every sentence's row repeated k times (beam search after step 1)
        rows = torch.arange(self.src_lengths.shape[0]).repeat_interleave(k)
        self.cross = [(a.index_select(0, rows), b.index_select(0, rows)) for a, b in self.cross]
        self.src_lengths = self.src_lengths.index_select(0, rows)
        self.reorder(rows)


def encode(model, src, src_lengths):
    x = model.embed(model.encoder, src)
    for layer in model.encoder.layers:
        x = layer(x, src_lengths)
    if model.c["norm"] == "pre":
        x = model.encoder.layer_norm(x)
    return x


def translate(model, src, beam, out_len):
    B = src.shape[0]
    src_lengths = torch.full((B,), src.shape[1])
    dec = Decoder(model, encode(model, src, src_lengths), src_lengths)
    tokens = torch.full((B,), 2)
    banned = torch.tensor([0, 1, 2, EOS])
    if beam == 1:
        out = []
        for _ in range(out_len):
            lp = dec.step(tokens)
            lp[:, banned] = float("-inf")
            tokens = lp.argmax(dim=-1)
            out.append(tokens)
        return torch.stack(out, dim=1)
    scores = torch.zeros(B, 1)
    history = torch.zeros(B, 1, 0, dtype=torch.long)
    for t in range(out_len):
        lp = dec.step(tokens)  # [B * k, V]
        lp[:, banned] = float("-inf")
        V = lp.shape[1]
        k_now = scores.shape[1]
        cand = (scores[:, :, None] + lp.view(B, k_now, V)).view(B, k_now * V)
        best, idx = cand.topk(beam, dim=1)
        origin, token = idx // V, idx % V
        history = torch.cat([history.gather(1, origin[:, :, None].expand(-1, -1, history.shape[2])),
                             token[:, :, None]], dim=2)
        scores = best
        if t == 0:
            dec.expand(beam)
        rows = (torch.arange(B)[:, None] * beam + origin).view(-1)
        dec.reorder(rows)
        tokens = token.view(-1)
    return history[:, 0, :]


def check():
    """The cached step equals the full decoder (model.forward) on every prefix: greedy outputs
    decoded both ways agree."""
    torch.manual_seed(1)
    for norm in ("post", "pre"):
        c = dict(PRESETS["tiny"], vocab=50, tgt_vocab=50, norm=norm, activation="relu",
                 positions="sinusoidal", share_embeddings=True, max_positions=64, dropout=0.0)
        model = Transformer(c).eval()
        src = torch.randint(4, 50, (3, 7))
        sl = torch.full((3,), 7)
        with torch.inference_mode():
            cached = translate(model, src, 1, 6)
            prefix = torch.full((3, 1), 2)
            for t in range(6):
                logits = model(src, sl, prefix, torch.full((3,), t + 1)).view(3, t + 1, -1)[:, -1]
                logits[:, [0, 1, 2, EOS]] = float("-inf")
                prefix = torch.cat([prefix, logits.argmax(-1)[:, None]], dim=1)
        assert torch.equal(cached, prefix[:, 1:]), (norm, cached, prefix)
    print("decode_peer: cached decoding equals the full decoder")


def main():
    if "--check" in sys.argv:
        return check()
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--len", type=int, default=24)
    ap.add_argument("--out-len", type=int, default=None)
    ap.add_argument("--beam", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--sentences", type=int, default=16)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    out_len = a.out_len or a.len
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    c = dict(PRESETS[a.preset], vocab=a.vocab, tgt_vocab=a.vocab, norm="post", activation="relu",
             positions="sinusoidal", share_embeddings=True, max_positions=1024, dropout=0.0)
    model = Transformer(c).eval()
    src_all = torch.randint(4, a.vocab, (a.sentences + a.warmup * a.batch, a.len))
    times, tokens, done = [], 0, 0
    with torch.inference_mode():
        for start in range(0, src_all.shape[0], a.batch):
            src = src_all[start:start + a.batch]
            t0 = time.perf_counter()
            out = translate(model, src, a.beam, out_len)
            s = time.perf_counter() - t0
            if start < a.warmup * a.batch:
                continue
            times.append(s)
            tokens += out.numel()
            done += src.shape[0]
    total = sum(times)
    times.sort()
    pick = lambda q: times[min(int(q * (len(times) - 1) + 0.5), len(times) - 1)]
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "preset": a.preset, "vocab": a.vocab,
        "len": a.len, "out_len": out_len, "beam": a.beam, "batch": a.batch, "sentences": done,
        "threads": torch.get_num_threads(), "params": sum(p.numel() for p in model.parameters()),
        "seconds": total, "sentences_per_s": done / total, "tgt_tokens_per_s": tokens / total,
        "batch_p50_s": pick(0.5), "batch_p90_s": pick(0.9),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "blas": "openblas" if "openblas" in open("/proc/self/maps").read() else "other",
    }))


if __name__ == "__main__":
    main()
