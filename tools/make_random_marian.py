"""Writes a random MarianMT checkpoint as transformers saves one (config.json, model.safetensors,
source.spm, target.spm, vocab.json, tokenizer_config.json) for tools/bench_hf_translate.py:
OPUS-MT's shape (6 + 6 layers, d 512, FFN 2,048, 8 heads, SiLU, scaled embeddings, a vocabulary
of 58,101 shared by both sides and the output). OPUS-MT's own files are not on PyPI, so the two
SentencePiece models are trained on ../shared/data's Multi30K (English for the source side,
German for the target side) and vocab.json holds their pieces, two language codes and numbered
filler tokens up to the vocabulary size. Random weights (seed 0): for speed, not quality.

  build/venv/bin/python tools/make_random_marian.py /tmp/opus-mt

marian_tokenizer() also makes the tiny fixtures of tests/python/test_hf_marian.py.
"""
import gzip
import itertools
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODES = [">>deu<<", ">>fra<<"]


def lines(path, n=None):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, n)]


def marian_tokenizer(out, data, pieces, sentences=5000, vocab_size=0):
    """Trains source.spm (English) and target.spm (German) of `pieces` unigram pieces each on
    `sentences` Multi30K training lines into `out`, writes vocab.json (</s> 0, <unk> 1, the
    pieces of both, CODES, fillers up to vocab_size when it is larger, <pad> last) and returns
    transformers' MarianTokenizer of them."""
    import sentencepiece as spm
    import transformers
    os.makedirs(out, exist_ok=True)
    vocab = {"</s>": 0, "<unk>": 1}
    for side, lang in (("source", "en"), ("target", "de")):
        prefix = os.path.join(out, side)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines(os.path.join(data, "multi30k", f"train.{lang}.gz"),
                                         sentences)),
            model_prefix=prefix, vocab_size=pieces, model_type="unigram",
            character_coverage=1.0, minloglevel=2)
        os.replace(prefix + ".model", prefix + ".spm")
        with open(prefix + ".vocab", encoding="utf-8") as f:
            for line in f:
                piece = line.split("\t")[0]
                if piece not in ("<s>", "</s>", "<unk>"):
                    vocab.setdefault(piece, len(vocab))
        os.remove(prefix + ".vocab")
    for code in CODES:
        vocab[code] = len(vocab)
    for i in range(vocab_size - 1 - len(vocab)):
        vocab[f"<filler{i}>"] = len(vocab)
    vocab["<pad>"] = len(vocab)
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return transformers.MarianTokenizer(os.path.join(out, "source.spm"),
                                        os.path.join(out, "target.spm"),
                                        os.path.join(out, "vocab.json"), source_lang="en",
                                        target_lang="de")


def main(out):
    import torch
    import transformers
    tok = marian_tokenizer(out, os.path.join(ROOT, "..", "shared", "data"), pieces=8000,
                           sentences=None, vocab_size=58101)
    torch.manual_seed(0)
    config = transformers.MarianConfig(
        vocab_size=len(tok), decoder_vocab_size=len(tok), d_model=512, encoder_layers=6,
        decoder_layers=6, encoder_attention_heads=8, decoder_attention_heads=8,
        encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_position_embeddings=512,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id, forced_eos_token_id=tok.eos_token_id,
        activation_function="swish", scale_embedding=True, dropout=0.1)
    model = transformers.MarianMTModel(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    print(f"{out}: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"vocabulary {len(tok):,}")


if __name__ == "__main__":
    main(sys.argv[1])
