"""`attend score` against sacreBLEU (PyPI, pinned in tools/python/requirements-test.txt): corpus
BLEU with each tokenization (13a, intl, char, none), lowercased or not, one or two reference sets,
and chrF, on Multi30K files and on hand-made edge cases; equal to 0.01 (attend prints two
decimals)."""
import gzip
import json
import random

import pytest
import sacrebleu

TOKENIZERS = ["13a", "intl", "char", "none"]


def attend_scores(attend, tmp_path, hyps, refs, tokenize, lowercase):
    files = []
    for name, lines in [("hyp", hyps)] + [(f"ref{i}", r) for i, r in enumerate(refs)]:
        path = tmp_path / f"{name}.txt"
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        files.append(path)
    args = ["score", "-i", files[0], "-r", *files[1:], "--metrics", "bleu", "chrf",
            "--tokenize", tokenize, "--json"]
    if lowercase:
        args.append("--lowercase")
    return json.loads(attend(*args))


def check(attend, tmp_path, hyps, refs, tokenize, lowercase=False):
    got = attend_scores(attend, tmp_path, hyps, refs, tokenize, lowercase)
    bleu = sacrebleu.corpus_bleu(hyps, refs, tokenize=tokenize, lowercase=lowercase)
    chrf = sacrebleu.corpus_chrf(hyps, refs) if not lowercase else \
        sacrebleu.metrics.CHRF(lowercase=True).corpus_score(hyps, refs)
    where = f"tokenize={tokenize} lowercase={lowercase}"
    assert got["bleu"] == pytest.approx(bleu.score, abs=0.01), f"BLEU, {where}: {bleu}"
    assert got["hyp_len"] == bleu.sys_len and got["ref_len"] == bleu.ref_len, where
    for p_attend, p_sacre in zip(got["precisions"], bleu.precisions):
        assert p_attend == pytest.approx(p_sacre, abs=0.01), f"precisions, {where}"
    assert got["chrf"] == pytest.approx(chrf.score, abs=0.01), f"chrF, {where}: {chrf}"
    return bleu.score


def read(path, limit=None):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [line.rstrip("\n") for line in f]
    return lines[:limit] if limit else lines


def perturbed(lines, seed):
    """A stand-in system output: words dropped, swapped and replaced, some lines cut short."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        words = line.split()
        words = [w for w in words if rng.random() > 0.1]
        for i in range(len(words) - 1):
            if rng.random() < 0.1:
                words[i], words[i + 1] = words[i + 1], words[i]
        words = [w.upper() if rng.random() < 0.05 else w for w in words]
        if rng.random() < 0.1:
            words = words[: len(words) // 2]
        out.append(" ".join(words))
    return out


@pytest.mark.parametrize("tokenize", TOKENIZERS)
@pytest.mark.parametrize("lowercase", [False, True])
def test_multi30k(attend, shared_data, tmp_path, tokenize, lowercase):
    refs = read(shared_data / "multi30k" / "test_2016_flickr.de.gz")
    hyps = perturbed(refs, seed=1)
    score = check(attend, tmp_path, hyps, [refs], tokenize, lowercase)
    assert 20 < score < 90  # a real, non-degenerate comparison


@pytest.mark.parametrize("tokenize", TOKENIZERS)
def test_multi30k_tokenized_against_raw_two_references(attend, shared_data, tmp_path, tokenize):
    # The lower-cased, tokenized English validation text against the raw text and a perturbed
    # copy of it: different punctuation spacing and case, two reference sets.
    raw = read(shared_data / "multi30k" / "val.en.gz", 400)
    tok = read(shared_data / "multi30k" / "val.lc.norm.tok.en.gz", 400)
    check(attend, tmp_path, tok, [raw, perturbed(raw, seed=2)], tokenize)


EDGE_HYPS = [
    "",
    "The cat sat on the mat.",
    "\u00abÇa va?\u00bb \u2014 oui\u2026 c\u2019est 5\u20ac, n\u2019est-ce pas\u00a0?",
    "日本語のテスト、です。",
    "Straße ÄÖÜ \u0130stanbul \u03a3\u039f\u03a6\u0399\u0391",
    "1,000.50 $ 3-4 (a) [b] {c} 2024.",
    "e\u0301t\u00e9 \U0001F600\U0001F44D\U0001F3FD ok!!",
    "tabs\tand\u2003em\u2009spaces  ",
    "",
    "x",
]
EDGE_REFS = [
    "",
    "The cat is on the mat.",
    "\u00abÇa va ?\u00bb \u2014 oui\u2026 c\u2019est 5 \u20ac, n\u2019est-ce pas ?",
    "日本語のテストです。",
    "strasse äöü istanbul σοφια",
    "1,000.50$ 3 - 4 (a) [b] {c} 2024 .",
    "\u00e9t\u00e9 \U0001F600 \U0001F44D ok !",
    "tabs and em spaces",
    "something",
    "",
]


@pytest.mark.parametrize("tokenize", TOKENIZERS)
@pytest.mark.parametrize("lowercase", [False, True])
def test_edge_cases(attend, tmp_path, tokenize, lowercase):
    check(attend, tmp_path, EDGE_HYPS, [EDGE_REFS], tokenize, lowercase)


def test_all_empty(attend, tmp_path):
    got = attend_scores(attend, tmp_path, ["", ""], [["", ""]], "13a", False)
    assert got["bleu"] == sacrebleu.corpus_bleu(["", ""], [["", ""]]).score == 0
