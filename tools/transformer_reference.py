"""An independent PyTorch implementation of attend's encoder-decoder Transformer, of its
decoder-only language model and of its encoder-only (masked-LM) model.

Written from the paper ("Attention Is All You Need") with plain torch ops -- not attend's
code -- and used as the oracle for the golden tests (tools/gen_golden.py). Parameter names
are the ones attend uses, so weights map one-to-one:
  embed_tokens.weight                       (shared source/target/output table), or
  encoder.embed_tokens.weight, decoder.embed_tokens.weight, output_projection.weight
  encoder.embed_positions.weight            (learned positions only)
  encoder.layers.{i}.self_attn.{q,k,v,out}_proj.{weight,bias}
  encoder.layers.{i}.{self_attn_layer_norm,final_layer_norm}.{weight,bias}
  encoder.layers.{i}.{fc1,fc2}.{weight,bias}
  decoder.layers.{i}.encoder_attn.* and encoder_attn_layer_norm.* in addition
  encoder.layer_norm.*, decoder.layer_norm.* (pre-norm only)
The decoder-only model (DecoderOnly) has embed_tokens (or decoder.embed_tokens and
output_projection), decoder.embed_positions, decoder.layers.{i}.* with causal self-attention
and no encoder attention, and decoder.layer_norm (pre-norm). The encoder-only model
(EncoderOnly) has embed_tokens (or encoder.embed_tokens and output_projection), encoder.* with
bidirectional self-attention, and encoder.layer_norm (pre-norm).
Dropout (config key "dropout", default 0) sits where attend puts it: on the embeddings and on
each sublayer's output before the residual add. Runs with Debian's python3-torch
(/usr/bin/python3).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))

    def forward(self, query, memory, key_lengths, causal):
        B, Tq, D = query.shape
        Tk = memory.shape[1]
        dh = D // self.h
        q = self.q_proj(query).view(B, Tq, self.h, dh).transpose(1, 2)
        k = self.k_proj(memory).view(B, Tk, self.h, dh).transpose(1, 2)
        v = self.v_proj(memory).view(B, Tk, self.h, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)  # [B, H, Tq, Tk]
        visible = torch.arange(Tk)[None, :] < key_lengths[:, None]  # [B, Tk]
        visible = visible[:, None, None, :].expand(B, 1, Tq, Tk)
        if causal:
            visible = visible & (torch.arange(Tk)[None, :] <= torch.arange(Tq)[:, None])
        scores = scores.masked_fill(~visible, float("-inf"))
        probs = torch.softmax(scores, dim=-1).nan_to_num(0.0)
        out = (probs @ v).transpose(1, 2).reshape(B, Tq, D)
        return self.out_proj(out)


class EncoderLayer(nn.Module):
    causal = False  # self-attention over every position (CausalLayer: over earlier ones only)

    def __init__(self, c):
        super().__init__()
        d = c["d_model"]
        self.p = c.get("dropout", 0.0)
        self.pre = c["norm"] == "pre"
        self.act = F.gelu if c["activation"] == "gelu" else F.relu
        self.self_attn = Attention(d, c["heads"])
        self.self_attn_layer_norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, c["ffn"])
        self.fc2 = nn.Linear(c["ffn"], d)
        self.final_layer_norm = nn.LayerNorm(d)

    def drop(self, x):
        return F.dropout(x, self.p, self.training) if self.p > 0 else x

    def forward(self, x, src_lengths):
        ffn = lambda y: self.drop(self.fc2(self.act(self.fc1(y))))
        if self.pre:
            y = self.self_attn_layer_norm(x)
            x = x + self.drop(self.self_attn(y, y, src_lengths, self.causal))
            return x + ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x + self.drop(self.self_attn(x, x, src_lengths, self.causal)))
        return self.final_layer_norm(x + ffn(x))


class CausalLayer(EncoderLayer):
    """A decoder-only model's layer: causal self-attention and the feed-forward block."""
    causal = True


class DecoderLayer(EncoderLayer):
    def __init__(self, c):
        super().__init__(c)
        self.encoder_attn = Attention(c["d_model"], c["heads"])
        self.encoder_attn_layer_norm = nn.LayerNorm(c["d_model"])

    def forward(self, x, tgt_lengths, memory, src_lengths):
        ffn = lambda y: self.drop(self.fc2(self.act(self.fc1(y))))
        if self.pre:
            y = self.self_attn_layer_norm(x)
            x = x + self.drop(self.self_attn(y, y, tgt_lengths, True))
            x = x + self.drop(self.encoder_attn(self.encoder_attn_layer_norm(x), memory, src_lengths, False))
            return x + ffn(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x + self.drop(self.self_attn(x, x, tgt_lengths, True)))
        x = self.encoder_attn_layer_norm(x + self.drop(self.encoder_attn(x, memory, src_lengths, False)))
        return self.final_layer_norm(x + ffn(x))


def sinusoid(n, d):
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(0, d, 2, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(10000.0, i / d)
    pe = torch.zeros(n, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


class Stack(nn.Module):
    def __init__(self, c, layer, vocab):
        super().__init__()
        if not c["share_embeddings"]:
            self.embed_tokens = nn.Embedding(vocab, c["d_model"])
        if c["positions"] == "learned":
            self.embed_positions = nn.Embedding(c["max_positions"], c["d_model"])
        self.layers = nn.ModuleList(layer(c) for _ in range(c["layers"]))
        if c["norm"] == "pre":
            self.layer_norm = nn.LayerNorm(c["d_model"])


class Transformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        if c["share_embeddings"]:
            self.embed_tokens = nn.Embedding(c["vocab"], c["d_model"])
        self.encoder = Stack(c, EncoderLayer, c["vocab"])
        self.decoder = Stack(c, DecoderLayer, c["tgt_vocab"])
        if not c["share_embeddings"]:
            self.output_projection = nn.Linear(c["d_model"], c["tgt_vocab"], bias=False)

    def embed(self, stack, ids):
        table = self.embed_tokens if self.c["share_embeddings"] else stack.embed_tokens
        T = ids.shape[1]
        if self.c["positions"] == "learned":
            pos = stack.embed_positions.weight[:T]
        else:
            pos = sinusoid(T, self.c["d_model"])
        x = table(ids) * math.sqrt(self.c["d_model"]) + pos[None]
        p = self.c.get("dropout", 0.0)
        return F.dropout(x, p, self.training) if p > 0 else x

    def forward(self, src, src_lengths, tgt_in, tgt_lengths):
        x = self.embed(self.encoder, src)
        for layer in self.encoder.layers:
            x = layer(x, src_lengths)
        if self.c["norm"] == "pre":
            x = self.encoder.layer_norm(x)
        y = self.embed(self.decoder, tgt_in)
        for layer in self.decoder.layers:
            y = layer(y, tgt_lengths, x, src_lengths)
        if self.c["norm"] == "pre":
            y = self.decoder.layer_norm(y)
        y = y.reshape(-1, self.c["d_model"])
        if self.c["share_embeddings"]:
            return y @ self.embed_tokens.weight.t()
        return self.output_projection(y)


class OneStack(nn.Module):
    """A single-stack model: token ids [B, T] -> per-position logits [B * T, V]. Its stack is
    named `stack_name` (decoder: causal layers; encoder: bidirectional ones)."""

    def __init__(self, c, stack_name, layer):
        super().__init__()
        self.c = c
        self.stack_name = stack_name
        if c["share_embeddings"]:
            self.embed_tokens = nn.Embedding(c["vocab"], c["d_model"])
        setattr(self, stack_name, Stack(c, layer, c["vocab"]))
        if not c["share_embeddings"]:
            self.output_projection = nn.Linear(c["d_model"], c["vocab"], bias=False)

    def forward(self, ids, lengths):
        stack = getattr(self, self.stack_name)
        y = Transformer.embed(self, stack, ids)
        for layer in stack.layers:
            y = layer(y, lengths)
        if self.c["norm"] == "pre":
            y = stack.layer_norm(y)
        y = y.reshape(-1, self.c["d_model"])
        if self.c["share_embeddings"]:
            return y @ self.embed_tokens.weight.t()
        return self.output_projection(y)


class DecoderOnly(OneStack):
    """The decoder-only language model: next-token logits, causal self-attention."""

    def __init__(self, c):
        super().__init__(c, "decoder", CausalLayer)


class EncoderOnly(OneStack):
    """The encoder-only (masked-LM) model: bidirectional self-attention over the first
    lengths[b] positions."""

    def __init__(self, c):
        super().__init__(c, "encoder", EncoderLayer)


def noam_lr(step, d_model, warmup, scale):
    return scale * d_model ** -0.5 * min(step ** -0.5, step * warmup ** -1.5)
