"""`attend convert --from hf` for MarianMT (OPUS-MT) checkpoints, checked against transformers
itself. The fixture is made here (no download): source.spm and target.spm trained by the
sentencepiece library on Multi30K English and German and a vocab.json joining their pieces with
two language codes (tools/make_random_marian.py), and a tiny random MarianMTModel from a config
(SiLU, scaled embeddings, a random final_logits_bias).

- source and target ids equal MarianTokenizer's on Multi30K, tiny Shakespeare, Unicode edge
  cases and texts with language codes and special tokens; decoding gives its text;
- teacher-forced logits within 1e-4 of transformers' (relative to the largest);
- greedy and beam-4 translations equal generate()'s token for token, under the same length
  limit and no length normalisation (attend's length_penalty 0 is transformers' 0);
- `attend score` gives transformers' loss;
- bad checkpoints are clear errors.
"""
import json
import math
import pathlib
import sys

import pytest
import torch

import attend
from hf_common import (EDGE_CASES, attend_bin, convert, corpus,  # noqa: F401
                       expect_score_is_loss, expect_translations, fine_tune,
                       generate_like_attend, json_edit, lines, refusal_checker,
                       seq2seq_logit_error, seq2seq_valid_loss)

transformers = pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
from make_random_marian import marian_tokenizer  # noqa: E402

# Language codes (at the start they are a token; elsewhere removed) and special tokens.
MARIAN_CASES = [
    ">>deu<< A dog runs.", ">>fra<<A dog runs.", "x >>deu<< y", ">>deu<< >>fra<< two codes",
    ">>no code", ">>a<< b << c", ">>\n<<", ">>deu<<", "a </s> b<unk>c <pad>", "</s>",
]


def tiny_marian(out, tok, seed=0, activation="swish", eos_bias=3.0):
    torch.manual_seed(seed)
    V = len(tok)
    config = transformers.MarianConfig(
        vocab_size=V, decoder_vocab_size=V, d_model=48, encoder_layers=2, decoder_layers=3,
        encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=96,
        decoder_ffn_dim=96, max_position_embeddings=256, pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id,
        forced_eos_token_id=tok.eos_token_id, activation_function=activation,
        scale_embedding=True, init_std=0.15)
    model = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        model.final_logits_bias.normal_()
        model.final_logits_bias[0, tok.eos_token_id] += eos_bias  # some outputs end at once
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return model


@pytest.fixture(scope="module")
def marian(shared_data, attend_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("marian")
    tok = marian_tokenizer(tmp / "hf", shared_data, pieces=500)
    model = tiny_marian(tmp / "hf", tok)
    return tok, model, convert(attend_bin, tmp / "hf", tmp / "attend")


def test_marian_ids_and_text_equal_huggingface(marian, shared_data):
    tok, _, model_dir = marian
    ours = attend.Tokenizer(model_dir)
    texts = corpus(shared_data) + EDGE_CASES + MARIAN_CASES
    # MarianTokenizer appends </s>; attend's model does (model.source_eos).
    eos = [tok.eos_token_id]
    bad = [(t, tok(t)["input_ids"], ours.encode(t)) for t in texts
           if ours.encode(t) + eos != tok(t)["input_ids"]]
    assert not bad, f"{len(bad)} of {len(texts)} sources differ; first: {bad[0]}"
    bad = [(t, tok(text_target=t)["input_ids"], ours.encode(t, target=True)) for t in texts
           if ours.encode(t, target=True) + eos != tok(text_target=t)["input_ids"]]
    assert not bad, f"{len(bad)} of {len(texts)} targets differ; first: {bad[0]}"
    for t in texts:
        ids = tok(text_target=t)["input_ids"]
        assert ours.decode(ids) == tok.decode(ids, skip_special_tokens=True), t
    pad, unk = tok.pad_token_id, tok.unk_token_id
    assert ours.special_ids == {"pad": pad, "unk": unk, "bos": pad, "eos": 0, "mask": -1}


def test_logits_equal_transformers(marian, shared_data):
    tok, model, model_dir = marian
    src = lines(shared_data / "multi30k" / "val.en.gz", 12) + MARIAN_CASES[:2]
    tgt = lines(shared_data / "multi30k" / "val.de.gz", 12) + ["Ein Hund.", ""]
    worst = seq2seq_logit_error(tok, model, model_dir, src, tgt)
    print(f"largest logit difference {worst:.2e} of the largest logit")
    assert worst < 1e-4


# A random model either ends at once or runs to the limit; beam 4 with no length normalisation
# keeps an early end, so its model ends less readily.
@pytest.mark.parametrize("beam,eos_bias", [(1, None), (4, 1.0)])
def test_translations_equal_generate(beam, eos_bias, marian, shared_data, tmp_path, attend_bin):
    tok, model, model_dir = marian
    if eos_bias is not None:
        model = tiny_marian(tmp_path / "hf", tok, seed=1, eos_bias=eos_bias)
        model_dir = convert(attend_bin, tmp_path / "hf", tmp_path / "attend")
    sources = lines(shared_data / "multi30k" / "val.en.gz", 16)
    extra = 6
    want = generate_like_attend(tok, model, sources, beam, extra)
    assert len({tuple(w) for w in want}) > 1, "the fixture's outputs should differ by source"
    if beam == 1:
        assert len({w[-1] == tok.eos_token_id for w in want}) == 2, "some should end, some not"
    assert max(len(w) for w in want) > 10, "the outputs should run for several steps"
    expect_translations(model_dir, tok, sources, want, beam, extra)


def test_score_equals_transformers_loss(marian, shared_data):
    tok, model, model_dir = marian
    expect_score_is_loss(tok, model, model_dir, shared_data)


def test_bad_marian_checkpoints_are_clear_errors(marian, tmp_path, attend_bin):
    expect = refusal_checker(attend_bin, marian[2].parent / "hf", tmp_path)
    edit = json_edit

    expect("act", edit("config.json", activation_function="tanh"),
           "\"activation_function\": \"tanh\"")
    expect("prenorm", edit("config.json", normalize_before=True), "normalize_before")
    expect("separate", edit("config.json", share_encoder_decoder_embeddings=False),
           "share_encoder_decoder_embeddings")
    expect("start", edit("config.json", decoder_start_token_id=0), "decoder_start_token_id")
    expect("ffn", edit("config.json", encoder_ffn_dim=100, decoder_ffn_dim=100),
           "'model.encoder.layers.0.fc1.weight' is [96, 48]", "gives [100, 48]")
    expect("vocab", edit("vocab.json", extra_token=10**6), "vocab.json", "\"extra_token\"")
    expect("tokcfg", edit("tokenizer_config.json", separate_vocabs=True), "separate_vocabs")
    expect("nospm", lambda d: (d / "target.spm").unlink(), "no target.spm")
    expect("badspm", lambda d: (d / "source.spm").write_bytes(b"not a model"),
           "source.spm is not a SentencePiece model")


def test_init_from_fine_tunes_the_converted_model(marian, shared_data, tmp_path):
    tok, model, model_dir = marian
    # One step at a negligible rate: the first validation is the converted model's own loss,
    # which must be transformers' on the same pairs (targets framed from pad, ending in </s>).
    _, v = fine_tune(model_dir, tmp_path / "probe", shared_data, **{
        "train.max_steps": 1, "train.lr": 1e-12, "train.valid_every": 1})
    want = seq2seq_valid_loss(tok, model, shared_data)
    assert math.isclose(v[0]["valid_loss"], want, rel_tol=1e-4), (v[0], want)
    # Fine-tuning lowers the loss, and the result is an ordinary model that translates.
    steps, v = fine_tune(model_dir, tmp_path / "run", shared_data, **{
        "train.max_steps": 60, "train.lr": 1e-3, "train.valid_every": 60})
    first = sum(r["loss"] for r in steps[:5]) / 5
    last = sum(r["loss"] for r in steps[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert v[-1]["valid_loss"] < want
    config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert config["model.positions"] == "sinusoidal_halves"
    assert config["train.init_from"] == str(model_dir)
    with attend.Translator(tmp_path / "run") as t:
        assert t.translate_batch(["A dog runs."], beam_size=2)[0].token_ids[0]
    # The architecture is the model's: a key that disagrees is an error naming it.
    with pytest.raises(ValueError, match="model.d_model"):
        fine_tune(model_dir, tmp_path / "bad", shared_data, **{"model.d_model": 64})
    with pytest.raises(ValueError, match="vocab.size"):
        fine_tune(model_dir, tmp_path / "bad2", shared_data, **{"vocab.size": 100})
