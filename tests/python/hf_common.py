"""What the HuggingFace import tests share: the attend binary and a runner that keeps its exit
status, conversion, the corpora (Multi30K, tiny Shakespeare) and a list of Unicode edge cases."""
import gzip
import itertools
import os
import pathlib
import subprocess

import pytest

# Written by us: combining marks, emoji (old and recent), CJK, Hangul, RTL scripts, control and
# format characters, odd whitespace, case mappings, long words and special tokens in the text.
EDGE_CASES = [
    "Cafe\u0301 cre\u0300me bru\u0302le\u0301e, na\u00efve Zo\u00eb",
    "\u00c5ngstr\u00f6m \u212bngstr\u00f6m \u00d8resund \u0141\u00f3d\u017a",
    "thumbs \U0001F44D\U0001F3FD and a family \U0001F468\u200D\U0001F469\u200D\U0001F467 \U0001F970",
    "\u4e2d\u6587\u5b57\u7b26\u6d4b\u8bd5 \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8 \ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u05e2\u05d1\u05e8\u05d9\u05ea \u0939\u093f\u0928\u094d\u0926\u0940 \u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22",
    "tab\there\x01control\x7fdel zero\u200bwidth bom\ufeff nul\x00x",
    "no\u00a0break thin\u2009space line\u2028separator next\x85line",
    "\u039f\u0394\u039f\u03a3 \u0130stanbul STRASSE \u1e9e \ufb01ne \uff21\uff22\uff23 \U0001d400 \u216b",
    "private\ue000use unassigned\u0378 replacement\ufffdchar",
    "x" * 99 + " " + "y" * 101 + " " + "supercalifragilisticexpialidocious" * 3,
    "The [MASK] sat on the [SEP] mat [CLS] [mask] [UNK] <|endoftext|>the end<|endoftext|>",
    "don't won't I'm it's 3.14 1,000 e-mail: a.b@example.com http://x.y/z?q=1",
    "\u00bfQu\u00e9? \u00a1S\u00ed! \u00ab\u00e7a\u00bb \u201cquoted\u201d \u2014 dash \u2026",
    "",
    "   ",
    "  two  spaces\n\nnew lines\r\n\ttab   end  ",
    "it's IT'S 'twas 'll've ''quoted'' x'd 'S",
    "123456789 ٣٤٥ ①② ½ number1word 1word2",
]


def lines(path, n):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in itertools.islice(f, n)]


def run_attend(path, *args):
    return subprocess.run([str(path), *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="session")
def attend_bin(attend):  # the conftest fixture checks the binary exists
    root = pathlib.Path(__file__).resolve().parents[2]
    return pathlib.Path(os.environ.get("ATTEND", root / "build" / "release" / "attend"))


def convert(attend_bin, hf_dir, out):
    done = run_attend(attend_bin, "convert", "--from", "hf", hf_dir, "-o", out)
    assert done.returncode == 0, done.stderr
    return out


def expect_refused(attend_bin, d, out, *wanted):
    """`attend convert` of the checkpoint `d` fails with each of `wanted` in its message and
    writes nothing at `out`."""
    done = run_attend(attend_bin, "convert", "--from", "hf", d, "-o", out)
    assert done.returncode == 1, done.stderr
    for w in wanted:
        assert w in done.stderr, f"wanted '{w}' in: {done.stderr}"
    assert not out.exists() and not pathlib.Path(str(out) + ".tmp").exists()


def refusal_checker(attend_bin, src, tmp_path):
    """expect(name, change, *wanted): a copy of the checkpoint `src`, changed by change(dir), is
    refused with each of `wanted` in the message (expect_refused)."""
    import shutil

    def expect(name, change, *wanted):
        d = tmp_path / name
        shutil.copytree(src, d)
        change(d)
        expect_refused(attend_bin, d, tmp_path / (name + "-o"), *wanted)
    return expect


def json_edit(file, **kv):
    """A change for refusal_checker: keys set in the checkpoint's JSON file `file`."""
    import json

    def change(d):
        c = json.loads((d / file).read_text())
        c.update(kv)
        (d / file).write_text(json.dumps(c))
    return change


def corpus(shared_data):
    m30k = shared_data / "multi30k"
    out = lines(m30k / "val.en.gz", 1000) + lines(m30k / "val.de.gz", 1000)
    out += lines(m30k / "train.en.gz", 1000) + lines(m30k / "train.de.gz", 1000)
    out += [l for l in lines(shared_data / "tinyshakespeare" / "input.txt.gz", 3000) if l][:1500]
    return out


def fine_tune(model_dir, out, shared_data, **keys):
    """`attend train` with train.init_from `model_dir` on Multi30K EN->DE (64 validation pairs,
    constant rate, no smoothing, dropout 0) and `keys`: the (steps, validations) it reports."""
    import attend
    m30k = shared_data / "multi30k"
    config = {"train.init_from": str(model_dir), "train.out": str(out),
              "data.train_src": str(m30k / "train.en.gz"),
              "data.train_tgt": str(m30k / "train.de.gz"),
              "data.valid_src": str(m30k / "val.en.gz"), "data.valid_tgt": str(m30k / "val.de.gz"),
              "data.valid_max_sentences": 64, "train.schedule": "constant", "train.warmup": 1,
              "train.label_smoothing": 0, "train.clip_norm": 0, "train.valid_metric": "loss",
              "train.max_tokens": 1500, "train.log_every": 1, "model.dropout": 0.0}
    config.update(keys)
    steps, validations = [], []
    attend.train(config, on_step=steps.append, on_validation=validations.append)
    return steps, validations


def seq2seq_valid_loss(tok, model, shared_data, n=64):
    """transformers' per-token loss of a translation model over the first `n` Multi30K
    validation pairs (what fine_tune's first validation must give)."""
    import torch
    m30k = shared_data / "multi30k"
    nll = tokens = 0.0
    for s, t in zip(lines(m30k / "val.en.gz", n), lines(m30k / "val.de.gz", n)):
        enc = tok(s, text_target=t, return_tensors="pt")
        with torch.no_grad():
            loss = float(model(input_ids=enc["input_ids"], labels=enc["labels"]).loss)
        nll += loss * enc["labels"].shape[1]
        tokens += enc["labels"].shape[1]
    return nll / tokens


def seq2seq_logit_error(tok, model, model_dir, sources, targets):
    """The largest difference between attend's and transformers' teacher-forced logits of a
    translation model (decoding from pad) over the pairs, relative to the largest logit."""
    import numpy as np
    import torch

    import attend
    worst = 0.0
    with attend.Model.load(model_dir) as ours:
        for s, t in zip(sources, targets):
            enc = tok(s, text_target=t, return_tensors="pt")
            labels = enc["labels"]
            start = torch.full((1, 1), tok.pad_token_id)
            with torch.no_grad():
                want = model(input_ids=enc["input_ids"],
                             decoder_input_ids=torch.cat([start, labels[:, :-1]], 1)).logits[0]
            got = ours.logits(s, t)
            assert got.shape == tuple(want.shape), s
            worst = max(worst, float(np.abs(got - want.numpy()).max() / want.abs().max()))
    return worst


def generate_like_attend(tok, model, sources, beam, extra):
    """transformers' generate() of each source under attend's rules: at most source length +
    `extra` new tokens, no length normalisation, pad and unk never emitted; the ids after the
    start (pad)."""
    import torch
    want = []
    for s in sources:
        ids = tok(s, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), num_beams=beam,
                                 max_new_tokens=ids.shape[1] + extra, length_penalty=0.0,
                                 early_stopping=False, do_sample=False, synced_gpus=False,
                                 forced_eos_token_id=None, num_return_sequences=1,
                                 bad_words_ids=[[tok.pad_token_id], [tok.unk_token_id]])
        want.append([i for i in out[0, 1:].tolist() if i != tok.pad_token_id])
    return want


def expect_translations(model_dir, tok, sources, want, beam, extra, decodable=None):
    """attend's translations of `sources` are `want` (generate_like_attend) token for token,
    and their text transformers' decode of them (of the ids `decodable` keeps)."""
    import attend
    keep = decodable or (lambda i: True)
    with attend.Translator(model_dir) as t:
        got = t.translate_batch(sources, beam_size=beam, length_penalty=0.0, max_extra=extra)
    for s, w, r in zip(sources, want, got):
        ended = w[-1] == tok.eos_token_id
        assert r.token_ids[0] == (w[:-1] if ended else w), s
        assert r.hypotheses[0] == tok.decode([i for i in w if keep(i)],
                                             skip_special_tokens=True), s


def expect_score_is_loss(tok, model, model_dir, shared_data):
    """`score` of the first Multi30K validation pair gives transformers' loss."""
    import math

    import torch

    import attend
    s = lines(shared_data / "multi30k" / "val.en.gz", 1)[0]
    t = lines(shared_data / "multi30k" / "val.de.gz", 1)[0]
    enc = tok(s, text_target=t, return_tensors="pt")
    with torch.no_grad():
        want = float(model(input_ids=enc["input_ids"], labels=enc["labels"]).loss)
    with attend.Translator(model_dir) as tr:
        got = tr.score_batch([s], [t])[0]
    assert len(got) == enc["labels"].shape[1]
    assert math.isclose(-sum(got) / len(got), want, rel_tol=1e-5), (got, want)
