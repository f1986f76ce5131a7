"""`attend convert --from hf` for T5 checkpoints, checked against transformers itself. The
fixtures are made here (no download): a spiece.model trained by the sentencepiece library on
Multi30K English and German with T5's special pieces (pad 0, end 1, unk 2, no bos), 100
sentinels, and tiny random T5ForConditionalGeneration models from configs -- v1.0 (ReLU, tied
output scaled by d_model^-0.5, 32 buckets up to distance 128) and v1.1 (gated GELU, an lm_head of
its own, 8 buckets up to distance 20 so that short texts reach the logarithmic buckets), both
with heads * d_kv != d_model and more token rows than the tokenizer has ids (as the published
T5s have).

- ids equal T5Tokenizer's on Multi30K, tiny Shakespeare, Unicode edge cases and texts with
  sentinels and special tokens; decoding gives its text;
- teacher-forced logits within 1e-4 of transformers' (relative to the largest);
- greedy and beam-4 translations equal generate()'s token for token;
- `attend score` gives transformers' loss;
- `train.init_from` fine-tunes the converted model from transformers' loss (the gradients of
  the relative position bias, RMSNorm and the gated feed-forward at work);
- bad checkpoints are clear errors.
"""
import math

import pytest
import torch

import attend
from hf_common import (EDGE_CASES, attend_bin, convert, corpus,  # noqa: F401
                       expect_score_is_loss, expect_translations, fine_tune,
                       generate_like_attend, json_edit, lines, refusal_checker, run_attend,
                       seq2seq_logit_error, seq2seq_valid_loss)

transformers = pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")

# Sentinels swallow the whitespace around them; the other special tokens do not.
T5_CASES = [
    "The <extra_id_0> walks in <extra_id_1> park.", "<extra_id_0>", "a<extra_id_5>b",
    "  <extra_id_99>  spaced  <extra_id_1>", "<extra_id_0><extra_id_1> twice", "<extra_id_100>",
    "a </s> b<unk>c <pad> d", "x</s>y", "translate English to German: A dog runs.",
]


def t5_tokenizer(out, data, pieces=500, sentences=4000):
    out.mkdir(parents=True, exist_ok=True)
    text = (lines(data / "multi30k" / "train.en.gz", sentences) +
            lines(data / "multi30k" / "train.de.gz", sentences))
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_prefix=str(out / "spiece"), vocab_size=pieces,
        model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        minloglevel=2)
    (out / "spiece.vocab").unlink()
    return transformers.T5Tokenizer(str(out / "spiece.model"), extra_ids=100, legacy=True)


def tiny_t5(out, tok, v11, seed=0, eos_bias=0.0):
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok) + 28, d_kv=16, d_ff=96, num_layers=2,
                  num_decoder_layers=3, pad_token_id=0, eos_token_id=1,
                  decoder_start_token_id=0, initializer_factor=1.0)
    if v11:
        config = transformers.T5Config(d_model=40, num_heads=3, feed_forward_proj="gated-gelu",
                                       tie_word_embeddings=False,
                                       relative_attention_num_buckets=8,
                                       relative_attention_max_distance=20, **common)
    else:
        config = transformers.T5Config(d_model=48, num_heads=4, feed_forward_proj="relu",
                                       **common)
    model = transformers.T5ForConditionalGeneration(config).eval()
    with torch.no_grad():
        head = model.lm_head.weight if v11 else model.shared.weight
        head[1] += eos_bias * head[1].sign()  # a larger end logit: some outputs end early
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return model


@pytest.fixture(scope="module")
def t5(shared_data, attend_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("t5")
    tok = t5_tokenizer(tmp / "v10", shared_data)
    out = {}
    for name, v11 in (("v10", False), ("v11", True)):
        model = tiny_t5(tmp / name, tok, v11)
        out[name] = (tok, model, convert(attend_bin, tmp / name, tmp / (name + "-attend")))
    return out


def hf_ids(tok, text):
    return tok(text)["input_ids"]


def test_t5_ids_and_text_equal_huggingface(t5, shared_data):
    tok, _, model_dir = t5["v10"]
    ours = attend.Tokenizer(model_dir)
    texts = corpus(shared_data) + EDGE_CASES + T5_CASES
    # T5Tokenizer appends </s> (unless the text ends with one); attend's model appends it
    # (model.source_eos).
    eos = tok.eos_token_id
    bad = []
    for t in texts:
        got = ours.encode(t)
        if not got or got[-1] != eos:
            got = got + [eos]
        if got != hf_ids(tok, t):
            bad.append((t, hf_ids(tok, t), got))
    assert not bad, f"{len(bad)} of {len(texts)} texts differ; first: {bad[0]}"
    for t in texts:
        ids = hf_ids(tok, t)
        assert ours.decode(ids) == tok.decode(ids, skip_special_tokens=True), t
    # AutoTokenizer's T5TokenizerFast (converted from the same spiece.model) gives the same ids.
    fast = transformers.T5TokenizerFast.from_pretrained(model_dir.parent / "v10")
    bad = [t for t in texts if fast(t)["input_ids"] != hf_ids(tok, t)]
    assert not bad, f"the fast tokenizer differs on {len(bad)} texts; first: {bad[0]!r}"
    assert ours.special_ids == {"pad": 0, "unk": 2, "bos": 0, "eos": 1, "mask": -1}
    # The rows past the tokenizer's ids decode to nothing.
    assert ours.decode([len(tok) + 3, 5]) == tok.decode([5], skip_special_tokens=True)


@pytest.mark.parametrize("version", ["v10", "v11"])
def test_logits_equal_transformers(version, t5, shared_data):
    tok, model, model_dir = t5[version]
    src = lines(shared_data / "multi30k" / "val.en.gz", 12) + T5_CASES[:1]
    tgt = lines(shared_data / "multi30k" / "val.de.gz", 12) + ["Ein <extra_id_0> Hund."]
    # long enough to reach the logarithmic buckets of v1.0 (distance 8 in the encoder, 16 in
    # the decoder)
    src.append(" ".join(src[:3]))
    tgt.append(" ".join(tgt[:3]))
    worst = seq2seq_logit_error(tok, model, model_dir, src, tgt)
    print(f"{version}: largest logit difference {worst:.2e} of the largest logit")
    assert worst < 1e-4


@pytest.mark.parametrize("version,beam", [("v10", 1), ("v11", 1), ("v10", 4), ("v11", 4)])
def test_translations_equal_generate(version, beam, t5, shared_data):
    tok, model, model_dir = t5[version]
    sources = lines(shared_data / "multi30k" / "val.en.gz", 16)
    extra = 20  # beyond v1.0's exact decoder buckets (16)
    want = generate_like_attend(tok, model, sources, beam, extra)
    assert len({tuple(w) for w in want}) > 1, "the fixture's outputs should differ by source"
    assert max(len(w) for w in want) > 16, "the outputs should run past the exact buckets"
    # the rows past the tokenizer's ids (random models emit them) decode to nothing;
    # T5Tokenizer cannot decode them at all
    expect_translations(model_dir, tok, sources, want, beam, extra,
                        decodable=lambda i: i < len(tok))


@pytest.mark.parametrize("version", ["v10", "v11"])
def test_score_equals_transformers_loss(version, t5, shared_data):
    tok, model, model_dir = t5[version]
    expect_score_is_loss(tok, model, model_dir, shared_data)


def test_bad_t5_checkpoints_are_clear_errors(t5, tmp_path, attend_bin):
    expect = refusal_checker(attend_bin, t5["v11"][2].parent / "v11", tmp_path)
    edit = json_edit
    expect("act", edit("config.json", feed_forward_proj="gated-tanh"),
           "\"feed_forward_proj\": \"gated-tanh\"")
    expect("dkv", edit("config.json", d_kv=8),
           "'encoder.block.0.layer.0.SelfAttention.q.weight' is [48, 40]", "gives [24, 40]")
    expect("buckets", edit("config.json", relative_attention_num_buckets=16),
           "relative_attention_bias.weight' is [8, 3]", "gives [16, 3]")
    expect("start", edit("config.json", decoder_start_token_id=1), "decoder_start_token_id")
    expect("legacy", edit("tokenizer_config.json", legacy=False), "\"legacy\": false")
    expect("added", edit("tokenizer_config.json", additional_special_tokens=["<new>"]),
           "\"<new>\" is not a sentinel")
    expect("rows", edit("config.json", vocab_size=500), "token rows are fewer")
    # tokenizer_config.json numbering a sentinel where T5Tokenizer does not put it.
    first = t5["v11"][0].convert_tokens_to_ids("<extra_id_0>")
    expect("sentinel", edit("tokenizer_config.json", added_tokens_decoder={
        str(first): {"content": "<extra_id_1>", "special": True}}),
        f"added_tokens_decoder gives \"<extra_id_1>\" id {first}", "not where T5Tokenizer puts it")
    expect("nospm", lambda d: (d / "spiece.model").unlink(), "no spiece.model")
    # Writing an encoder-decoder back (--to hf) is not implemented yet: a clear refusal.
    done = run_attend(attend_bin, "convert", "--to", "hf", t5["v11"][2], "-o", tmp_path / "back")
    assert done.returncode == 1 and "not a decoder-only model" in done.stderr, done.stderr
    assert not (tmp_path / "back").exists()
    expect("badspm", lambda d: (d / "spiece.model").write_bytes(b"not a model"),
           "spiece.model is not a SentencePiece model")


def test_init_from_fine_tunes_the_converted_t5(t5, shared_data, tmp_path):
    tok, model, model_dir = t5["v11"]
    _, v = fine_tune(model_dir, tmp_path / "probe", shared_data, **{
        "train.max_steps": 1, "train.lr": 1e-12, "train.valid_every": 1})
    want = seq2seq_valid_loss(tok, model, shared_data)
    assert math.isclose(v[0]["valid_loss"], want, rel_tol=1e-4), (v[0], want)
    steps, v = fine_tune(model_dir, tmp_path / "run", shared_data, **{
        "train.max_steps": 40, "train.lr": 1e-3, "train.valid_every": 40})
    first = sum(r["loss"] for r in steps[:5]) / 5
    last = sum(r["loss"] for r in steps[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert v[-1]["valid_loss"] < want
    with attend.Translator(tmp_path / "run") as t:
        assert t.translate_batch(["A dog runs."], beam_size=2)[0].token_ids[0]
