"""Writes a random GPT-2-small-shaped checkpoint as transformers saves one (config.json,
model.safetensors, tokenizer files) for tools/bench_hf_generate.py: 12 layers, d 768, 12 heads,
context 1,024, and a byte-level BPE vocabulary of 50,257 tokens trained by the tokenizers library
on ../shared/data (tiny Shakespeare, Multi30K train EN and DE) -- GPT-2's own vocabulary and
weights are not on PyPI. Random weights (seed 0): for speed and memory, not quality.

  build/venv/bin/python tools/make_random_gpt2.py /tmp/gpt2-small
"""
import gzip
import os
import sys

import torch
import transformers
from tokenizers import ByteLevelBPETokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(out):
    data = os.path.join(ROOT, "..", "shared", "data")
    texts = []
    for f in ("tinyshakespeare/input.txt.gz", "multi30k/train.en.gz", "multi30k/train.de.gz"):
        with gzip.open(os.path.join(data, f), "rt", encoding="utf-8") as fh:
            texts += fh.readlines()
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=50257, min_frequency=1,
                            special_tokens=["<|endoftext|>"])
    vocab_dir = out + ".vocab"
    os.makedirs(vocab_dir, exist_ok=True)
    bpe.save_model(vocab_dir)
    tok = transformers.GPT2TokenizerFast(vocab_file=os.path.join(vocab_dir, "vocab.json"),
                                         merges_file=os.path.join(vocab_dir, "merges.txt"))
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(tok), bos_token_id=tok.eos_token_id,
                                     eos_token_id=tok.eos_token_id)
    model = transformers.GPT2LMHeadModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"vocabulary {len(tok):,}")


if __name__ == "__main__":
    main(sys.argv[1])
