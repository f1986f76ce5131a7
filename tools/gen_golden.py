"""Generates the golden files for tests/nn/test_transformer.cpp from tools/transformer_reference.py.

  /usr/bin/python3 tools/gen_golden.py      (Debian's python3-torch, CPU)

For each configuration: random weights (torch seed), a padded batch, the logits, the
label-smoothed loss, every parameter gradient, and the losses of the first ten Adam steps
under the paper's learning-rate schedule; the same for the decoder-only language model on
padded windows of token ids (next-token targets, no label smoothing), and for the encoder-only
model on padded sentences with masked-LM targets (the loss on the chosen positions only). Written as safetensors (header, JSON, raw
little-endian data) without extra packages; each file is a few tens of kB.
"""
import json
import os
import struct

import torch

from transformer_reference import DecoderOnly, EncoderOnly, Transformer, noam_lr

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden")
BOS, EOS, PAD = 2, 3, 0


def save_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header).encode()
    h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def batch(gen, B, S, T, src_vocab, tgt_vocab):
    src_len = torch.randint(1, S + 1, (B,), generator=gen)
    src_len[0] = S
    tgt_len = torch.randint(1, T, (B,), generator=gen)  # target words; +1 for BOS/EOS
    tgt_len[1] = T - 1
    src = torch.zeros(B, S, dtype=torch.int64)
    tgt_in = torch.zeros(B, T, dtype=torch.int64)
    tgt_out = torch.zeros(B, T, dtype=torch.int64)
    for b in range(B):
        s = torch.randint(4, src_vocab, (int(src_len[b]),), generator=gen)
        y = torch.randint(4, tgt_vocab, (int(tgt_len[b]),), generator=gen)
        src[b, : len(s)] = s
        tgt_in[b, 0] = BOS
        tgt_in[b, 1 : 1 + len(y)] = y
        tgt_out[b, : len(y)] = y
        tgt_out[b, len(y)] = EOS
    return src, src_len, tgt_in, tgt_len + 1, tgt_out.reshape(-1)


def generate(name, c, seed):
    torch.manual_seed(seed)
    model = Transformer(c)
    with torch.no_grad():  # embeddings ~ N(0, d^-1/2) as attend initialises them
        for n, p in model.named_parameters():
            if "embed" in n:
                p.normal_(0.0, c["d_model"] ** -0.5)
            elif n.endswith("layer_norm.weight") or n.endswith("layer_norm.bias"):
                p.add_(torch.randn_like(p) * 0.1)  # non-trivial affine parameters
    gen = torch.Generator().manual_seed(seed + 1)
    batches = [batch(gen, 3, 7, 6, c["vocab"], c["tgt_vocab"]) for _ in range(2)]
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}

    src, src_len, tgt_in, tgt_len, tgt_out = batches[0]
    logits = model(src, src_len, tgt_in, tgt_len)
    loss = torch.nn.functional.cross_entropy(logits, tgt_out, ignore_index=PAD, label_smoothing=0.1)
    loss.backward()
    tensors = {"weight." + n: w for n, w in weights.items()}
    tensors.update({"grad." + n: p.grad.clone() for n, p in model.named_parameters()})
    for i, (s, sl, ti, tl, to) in enumerate(batches):
        tensors[f"batch{i}.src"] = s.int()
        tensors[f"batch{i}.src_lengths"] = sl.int()
        tensors[f"batch{i}.tgt_in"] = ti.int()
        tensors[f"batch{i}.tgt_lengths"] = tl.int()
        tensors[f"batch{i}.tgt_out"] = to.int()
    tensors["logits"] = logits
    tensors["loss"] = loss.reshape(1)

    # Ten Adam steps, alternating the two batches, under the paper's schedule.
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    losses = []
    for step in range(1, 11):
        s, sl, ti, tl, to = batches[(step - 1) % 2]
        for g in opt.param_groups:
            g["lr"] = noam_lr(step, c["d_model"], c["warmup"], c["lr_scale"])
        opt.zero_grad()
        l = torch.nn.functional.cross_entropy(model(s, sl, ti, tl), to, ignore_index=PAD, label_smoothing=0.1)
        l.backward()
        opt.step()
        losses.append(l.item())
    tensors["train_losses"] = torch.tensor(losses, dtype=torch.float32)
    meta = dict(c)
    meta["generator"] = "tools/gen_golden.py, torch " + torch.__version__
    save_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)
    print(name, "loss", loss.item(), "losses", [round(x, 4) for x in losses])


def lm_batch(gen, B, T, vocab):
    lengths = torch.randint(2, T + 1, (B,), generator=gen)
    lengths[0] = T
    ids = torch.zeros(B, T, dtype=torch.int64)
    targets = torch.zeros(B, T, dtype=torch.int64)
    for b in range(B):
        w = torch.randint(4, vocab, (int(lengths[b]) + 1,), generator=gen)  # a window of text
        ids[b, : lengths[b]] = w[:-1]
        targets[b, : lengths[b]] = w[1:]
    return ids, lengths, targets.reshape(-1)


def mlm_batch(gen, B, T, vocab, mask_id):
    """Sentences of 2..T ids; about a third of the real positions chosen, their targets the
    original ids (PAD elsewhere: no loss), and the chosen inputs corrupted as BERT does (80%
    mask, 10% random, 10% kept)."""
    lengths = torch.randint(2, T + 1, (B,), generator=gen)
    lengths[0] = T
    ids = torch.zeros(B, T, dtype=torch.int64)
    targets = torch.zeros(B, T, dtype=torch.int64)
    for b in range(B):
        n = int(lengths[b])
        x = torch.randint(5, vocab, (n,), generator=gen)
        chosen = torch.rand(n, generator=gen) < 0.35
        chosen[0] = True  # at least one
        targets[b, :n] = torch.where(chosen, x, torch.zeros_like(x))
        u = torch.rand(n, generator=gen)
        rand = torch.randint(5, vocab, (n,), generator=gen)
        corrupted = torch.where(u < 0.8, torch.full_like(x, mask_id), torch.where(u < 0.9, rand, x))
        ids[b, :n] = torch.where(chosen, corrupted, x)
    return ids, lengths, targets.reshape(-1)


def generate_lm(name, c, seed, arch="decoder_only"):
    """A language model's golden file: the decoder-only model on next-token windows, or the
    encoder-only model on masked-LM sentences (loss on the chosen positions only)."""
    torch.manual_seed(seed)
    model = DecoderOnly(c) if arch == "decoder_only" else EncoderOnly(c)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "embed" in n:
                p.normal_(0.0, c["d_model"] ** -0.5)
            elif n.endswith("layer_norm.weight") or n.endswith("layer_norm.bias"):
                p.add_(torch.randn_like(p) * 0.1)
    gen = torch.Generator().manual_seed(seed + 1)
    if arch == "decoder_only":
        batches = [lm_batch(gen, 3, 9, c["vocab"]) for _ in range(2)]
    else:
        batches = [mlm_batch(gen, 3, 9, c["vocab"], 4) for _ in range(2)]
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids, lengths, targets = batches[0]
    logits = model(ids, lengths)
    loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=PAD)
    loss.backward()
    tensors = {"weight." + n: w for n, w in weights.items()}
    tensors.update({"grad." + n: p.grad.clone() for n, p in model.named_parameters()})
    for i, (x, l, t) in enumerate(batches):
        tensors[f"batch{i}.ids"] = x.int()
        tensors[f"batch{i}.lengths"] = l.int()
        tensors[f"batch{i}.targets"] = t.int()
    tensors["logits"] = logits
    tensors["loss"] = loss.reshape(1)
    opt = torch.optim.Adam(model.parameters(), lr=1.0, betas=(0.9, 0.98), eps=1e-9)
    losses = []
    for step in range(1, 11):
        x, l, t = batches[(step - 1) % 2]
        for g in opt.param_groups:
            g["lr"] = noam_lr(step, c["d_model"], c["warmup"], c["lr_scale"])
        opt.zero_grad()
        lo = torch.nn.functional.cross_entropy(model(x, l), t, ignore_index=PAD)
        lo.backward()
        opt.step()
        losses.append(lo.item())
    tensors["train_losses"] = torch.tensor(losses, dtype=torch.float32)
    meta = dict(c, arch=arch, tgt_vocab=c["vocab"])
    meta["generator"] = "tools/gen_golden.py, torch " + torch.__version__
    save_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)
    print(name, "loss", loss.item(), "losses", [round(x, 4) for x in losses])


BASE = dict(d_model=16, ffn=32, heads=2, layers=2, warmup=4, lr_scale=2.0, max_positions=16)
generate("transformer_post_relu_shared",
         dict(BASE, vocab=13, tgt_vocab=13, norm="post", activation="relu", positions="sinusoidal",
              share_embeddings=True), 11)
generate("transformer_pre_gelu_learned",
         dict(BASE, vocab=11, tgt_vocab=14, norm="pre", activation="gelu", positions="learned",
              share_embeddings=False), 23)
generate_lm("decoder_only_pre_gelu_learned_shared",
            dict(BASE, vocab=13, norm="pre", activation="gelu", positions="learned",
                 share_embeddings=True), 31)
generate_lm("decoder_only_post_relu_sinusoidal",
            dict(BASE, vocab=12, norm="post", activation="relu", positions="sinusoidal",
                 share_embeddings=False), 37)
generate_lm("encoder_only_pre_gelu_learned_shared",
            dict(BASE, vocab=14, norm="pre", activation="gelu", positions="learned",
                 share_embeddings=True), 41, "encoder_only")
generate_lm("encoder_only_post_relu_sinusoidal",
            dict(BASE, vocab=13, norm="post", activation="relu", positions="sinusoidal",
                 share_embeddings=False), 43, "encoder_only")
