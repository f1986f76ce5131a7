"""`attend convert --from hf` for GPT-2 checkpoints, checked against transformers itself. The
fixtures are made here (no download): a byte-level BPE vocabulary trained by the tokenizers
library on Multi30K, and tiny random GPT2LMHeadModel / GPT2Model checkpoints from configs.

- byte-level BPE ids equal the HuggingFace fast tokenizer's on Multi30K (EN, DE), tiny
  Shakespeare and Unicode edge cases, and decoding gives transformers' text;
- next-token logits within 1e-4 of transformers' (relative to the largest), for both
  checkpoint layouts (GPT2LMHeadModel's "transformer." prefix, GPT2Model's none) and both tanh
  activations;
- greedy generation equals transformers' generate() token for token, in a batch, and the text
  streamed by `attend generate` is the text generated;
- `attend eval-lm` gives transformers' loss on a text read after <|endoftext|>;
- bad checkpoints are clear errors.
"""
import json
import math
import pathlib

import numpy as np
import pytest
import torch

import attend
from hf_common import (EDGE_CASES, attend_bin, convert, corpus, json_edit,  # noqa: F401
                       lines, refusal_checker, run_attend)

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer(shared_data, tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer
    tmp = tmp_path_factory.mktemp("bpe")
    t = ByteLevelBPETokenizer()
    t.train_from_iterator(corpus(shared_data)[:5000], vocab_size=1200, min_frequency=2,
                          special_tokens=["<|endoftext|>"])
    t.save_model(str(tmp))
    return transformers.GPT2TokenizerFast(vocab_file=str(tmp / "vocab.json"),
                                          merges_file=str(tmp / "merges.txt"))


def tiny_gpt2(out, tok, head=True, activation="gelu_new", seed=0):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(vocab_size=len(tok), n_positions=96, n_embd=48, n_layer=2,
                                     n_head=4, activation_function=activation,
                                     bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
                                     initializer_range=0.2)  # wide: varied greedy outputs
    model = (transformers.GPT2LMHeadModel if head else transformers.GPT2Model)(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return model


@pytest.fixture(scope="module")
def gpt2(tokenizer, attend_bin, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpt2")
    model = tiny_gpt2(tmp / "hf", tokenizer)
    return model, convert(attend_bin, tmp / "hf", tmp / "attend")


def test_byte_level_bpe_ids_and_text_equal_huggingface(tokenizer, gpt2, shared_data):
    ours = attend.Tokenizer(gpt2[1])
    texts = corpus(shared_data) + EDGE_CASES
    mismatches = [(t, tokenizer(t)["input_ids"], ours.encode(t)) for t in texts
                  if ours.encode(t) != tokenizer(t)["input_ids"]]
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ; first: {mismatches[0]}"
    for t in texts:
        ids = tokenizer(t)["input_ids"]
        assert ours.decode(ids) == tokenizer.decode(ids, skip_special_tokens=True), t
    eot = tokenizer.eos_token_id
    assert ours.special_ids == {"pad": eot, "unk": eot, "bos": eot, "eos": eot, "mask": -1}


@pytest.mark.parametrize("head,activation", [(True, "gelu_new"), (False, "gelu_pytorch_tanh")])
def test_logits_equal_transformers(head, activation, tokenizer, shared_data, tmp_path,
                                   attend_bin):
    model = tiny_gpt2(tmp_path / "hf", tokenizer, head=head, activation=activation, seed=3)
    model_dir = convert(attend_bin, tmp_path / "hf", tmp_path / "attend")
    if not head:  # GPT2Model has no head: the logits are the tied projection of its output
        wte = model.wte.weight
        model_logits = lambda ids: model(ids).last_hidden_state @ wte.T  # noqa: E731
    else:
        model_logits = lambda ids: model(ids).logits  # noqa: E731
    worst = 0.0
    with attend.Model.load(model_dir) as ours:
        for text in lines(shared_data / "multi30k" / "val.en.gz", 20) + EDGE_CASES[:3]:
            ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :96]
            if ids.shape[1] == 0:
                continue
            with torch.no_grad():
                want = model_logits(ids)[0].numpy()
            got = ours.logits(tokenizer.decode(ids[0]))
            assert got.shape == want.shape, text
            worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    print(f"{activation}: largest logit difference {worst:.2e} of the largest logit")
    assert worst < 1e-4


def test_greedy_generation_equals_transformers(tokenizer, gpt2, shared_data, attend_bin,
                                               tmp_path):
    model, model_dir = gpt2
    prompts = lines(shared_data / "multi30k" / "val.de.gz", 8)
    want = []
    for p in prompts:
        ids = tokenizer(p, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=24,
                                 do_sample=False, synced_gpus=False,
                                 pad_token_id=tokenizer.eos_token_id)
        want.append(out[0, ids.shape[1]:].tolist())
    assert len({tuple(w) for w in want}) > 1, "the fixture's outputs should differ by prompt"
    with attend.Generator(model_dir) as g:
        got = g.generate_batch(prompts, max_new_tokens=24, sampling_temperature=0)
    for p, w, r in zip(prompts, want, got):
        # transformers includes the end token when it stops there; attend reports ended.
        ended = w[-1] == tokenizer.eos_token_id
        assert r.token_ids + ([tokenizer.eos_token_id] if r.ended else []) == w, p
        assert r.ended == (ended and len(w) <= 24), p
        assert r.text == tokenizer.decode(w, skip_special_tokens=True), p
    # The CLI streams the same text.
    done = run_attend(attend_bin, "generate", "-m", model_dir, "--prompt", prompts[0],
                      "--max-new", 24, "--temperature", 0)
    assert done.returncode == 0, done.stderr
    assert got[0].text in done.stdout


def test_eval_lm_loss_equals_transformers(tokenizer, gpt2, tmp_path, attend_bin):
    model, model_dir = gpt2
    text = "Two young guys with shaggy hair\nlook at their hands while hanging out in the yard.\n"
    (tmp_path / "t.txt").write_text(text)  # one stream, newlines included
    ids = [tokenizer.eos_token_id] + tokenizer(text)["input_ids"]
    with torch.no_grad():
        want = float(model(torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    done = run_attend(attend_bin, "eval-lm", "-m", model_dir, "-i", tmp_path / "t.txt", "--json")
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["tokens"] == len(ids) - 1
    assert math.isclose(got["loss"], want, rel_tol=1e-5), (got, want)


def test_bad_gpt2_checkpoints_are_clear_errors(gpt2, tmp_path, attend_bin):
    expect = refusal_checker(attend_bin, gpt2[1].parent / "hf", tmp_path)
    config = lambda **kv: json_edit("config.json", **kv)  # noqa: E731

    expect("act", config(activation_function="tanh"), "\"activation_function\": \"tanh\"")
    expect("untied", config(tie_word_embeddings=False), "tie_word_embeddings")
    expect("inner", config(n_inner=100), "'transformer.h.0.mlp.c_fc.weight' is [48, 192]",
           "gives [48, 100]")
    expect("eos", config(eos_token_id=5), "\"eos_token_id\" is 5")

    def prefix_space(d):
        t = json.loads((d / "tokenizer.json").read_text())
        t["pre_tokenizer"]["add_prefix_space"] = True
        (d / "tokenizer.json").write_text(json.dumps(t))
    expect("prefix", prefix_space, "add_prefix_space")


def test_init_from_fine_tunes_the_converted_model(gpt2, shared_data, tmp_path):
    steps = []
    attend.train({"train.init_from": str(gpt2[1]), "train.out": str(tmp_path / "run"),
                  "data.train_text": str(shared_data / "tinyshakespeare" / "input.txt.gz"),
                  "data.block": 64, "train.max_tokens": 1024, "train.max_steps": 40,
                  "train.schedule": "constant", "train.warmup": 1, "train.lr": 3e-3,
                  "train.label_smoothing": 0,
                  "train.log_every": 1, "train.valid_every": 0, "model.dropout": 0.0},
                 on_step=steps.append)
    first = sum(r["loss"] for r in steps[:5]) / 5
    last = sum(r["loss"] for r in steps[-5:]) / 5
    assert last < first - 0.5, (first, last)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model.activation"] == "gelu_tanh" and config["model.norm"] == "pre"
    with attend.Generator(tmp_path / "run") as g:
        assert g.generate_batch(["ROMEO:"], max_new_tokens=5)[0].token_ids


def convert_to_hf(attend_bin, model_dir, out):
    done = run_attend(attend_bin, "convert", "--to", "hf", model_dir, "-o", out)
    assert done.returncode == 0, done.stderr
    return out


def hf_logit_error(hf_model, ours, texts):
    """The largest difference between attend's logits of each text (read as a prompt) and the
    exported checkpoint's in transformers, relative to the largest logit."""
    worst = 0.0
    for t in texts:
        ids = ours.tokenizer.encode(t)
        with torch.no_grad():
            want = hf_model(torch.tensor([ids])).logits[0].numpy()
        got = ours.logits(t)
        assert got.shape == want.shape, t
        worst = max(worst, float(np.abs(got - want).max() / np.abs(want).max()))
    return worst


def test_convert_to_hf_loads_in_transformers_and_ctranslate2(gpt2, tokenizer, shared_data,
                                                             tmp_path, attend_bin):
    # An attend-trained model: the converted GPT-2 fine-tuned for a few steps.
    run = tmp_path / "run"
    attend.train({"train.init_from": str(gpt2[1]), "train.out": str(run),
                  "data.train_text": str(shared_data / "tinyshakespeare" / "input.txt.gz"),
                  "data.block": 64, "train.max_tokens": 1024, "train.max_steps": 8,
                  "train.schedule": "constant", "train.warmup": 1, "train.lr": 3e-3,
                  "train.valid_every": 0, "model.dropout": 0.0})
    out = convert_to_hf(attend_bin, run, tmp_path / "hf")
    texts = lines(shared_data / "multi30k" / "val.en.gz", 8) + ["ROMEO:\nWhat, ho!"]
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    with attend.Model.load(run) as ours:
        worst = hf_logit_error(hf_model, ours, texts)
    print(f"exported GPT-2: largest logit difference {worst:.2e} of the largest logit")
    assert worst < 1e-5
    # Its tokenizer files give attend's ids.
    hf_tok = transformers.GPT2TokenizerFast.from_pretrained(out)
    ours_tok = attend.Tokenizer(run)
    sample = corpus(shared_data)[::50] + EDGE_CASES
    assert all(hf_tok(t)["input_ids"] == ours_tok.encode(t) for t in sample)
    # CTranslate2's converter takes it, and its greedy continuations are attend's.
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
    ctranslate2 = pytest.importorskip("ctranslate2")
    from bench_hf_generate import convert_ct2
    convert_ct2(str(out), str(tmp_path / "ct2"))
    g = ctranslate2.Generator(str(tmp_path / "ct2"), device="cpu", compute_type="float32")
    prompts = texts[:4]
    want = [r.sequences_ids[0] for r in g.generate_batch(
        [hf_tok.convert_ids_to_tokens(ours_tok.encode(p)) for p in prompts], max_length=12,
        min_length=12, sampling_topk=1, include_prompt_in_result=False)]
    with attend.Generator(run) as gen:
        got = [r.token_ids for r in gen.generate_batch(prompts, max_new_tokens=12,
                                                         sampling_temperature=0,
                                                         end_token=False)]
    assert got == want


def test_convert_to_hf_of_a_model_trained_from_scratch(shared_data, tmp_path, attend_bin):
    # attend's own layout: a character vocabulary, exact GELU, embeddings scaled by sqrt(d)
    # (GPT-2 has no such scale: wte holds the scaled table, lm_head the table itself).
    run = tmp_path / "run"
    attend.train({"model.arch": "decoder_only", "model.preset": "gpt-tiny", "model.d_model": 32,
                  "model.ffn": 64, "model.heads": 4, "model.decoder_layers": 2,
                  "model.max_positions": 64, "vocab.type": "char", "train.out": str(run),
                  "data.train_text": str(shared_data / "tinyshakespeare" / "input.txt.gz"),
                  "data.block": 64, "train.max_tokens": 512, "train.max_steps": 5,
                  "train.valid_every": 0, "model.dropout": 0.0})
    out = convert_to_hf(attend_bin, run, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is False and config["activation_function"] == "gelu"
    assert not (out / "vocab.json").exists()
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    with attend.Model.load(run) as ours:
        worst = hf_logit_error(hf_model, ours, ["ROMEO:\nWhat, ho!", "First Citizen:"])
    print(f"exported char model: largest logit difference {worst:.2e} of the largest logit")
    assert worst < 1e-5
    # What cannot be written is refused, and nothing is written.
    done = run_attend(attend_bin, "convert", "--to", "hf", run, "-o", out)
    assert done.returncode == 1 and "already exists" in done.stderr
    done = run_attend(attend_bin, "convert", "--from", "hf", "--to", "hf", run, "-o", tmp_path / "x")
    assert done.returncode != 0
    # An int8 model: the fp32 one it came from is what can be written.
    assert run_attend(attend_bin, "quantize", "-m", run, "-o", tmp_path / "q8").returncode == 0
    done = run_attend(attend_bin, "convert", "--to", "hf", tmp_path / "q8", "-o", tmp_path / "x")
    assert done.returncode == 1 and "holds int8 weights" in done.stderr, done.stderr
    assert not (tmp_path / "x").exists()
    # A layout GPT-2 cannot express (post-norm): the message names the model key.
    post = tmp_path / "post"
    attend.train({"model.arch": "decoder_only", "model.preset": "gpt-tiny", "model.d_model": 32,
                  "model.ffn": 64, "model.heads": 4, "model.decoder_layers": 1,
                  "model.max_positions": 64, "model.norm": "post", "vocab.type": "char",
                  "train.out": str(post),
                  "data.train_text": str(shared_data / "tinyshakespeare" / "input.txt.gz"),
                  "data.block": 64, "train.max_tokens": 512, "train.max_steps": 1,
                  "train.valid_every": 0, "model.dropout": 0.0})
    done = run_attend(attend_bin, "convert", "--to", "hf", post, "-o", tmp_path / "x")
    assert done.returncode == 1 and "model.norm post has no GPT-2 equivalent" in done.stderr, \
        done.stderr
    assert not (tmp_path / "x").exists()
