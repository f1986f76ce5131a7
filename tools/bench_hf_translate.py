"""OPUS-MT-shaped translation from one HuggingFace MarianMT checkpoint: attend (converted with
`attend convert --from hf`, run through the Python module) against CTranslate2's Translator
(converted by ct2-transformers-converter's TransformersConverter), in fp32 and int8 (each
engine quantizes its linear layers at load: attend precision="int8", CTranslate2
compute_type="int8"), beam 4, every output exactly --out-len tokens, on the same Multi30K
validation sentences: at batch 1 (milliseconds per sentence, --sentences-1 sentences) and at
--large-batch (target tokens/s, --sentences sentences). Interleaved, --rounds times each, every
measurement in a fresh process after one warm-up call; prints medians with their range, and
how many fp32 outputs are the same tokens in both engines.

  build/venv/bin/python tools/make_random_marian.py /tmp/opus-mt
  build/venv/bin/python tools/bench_hf_translate.py /tmp/opus-mt --rounds 3

Needs CTranslate2 in build/venv (scripts/install-deps.sh installs it) and ../shared/data.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_hf_generate import PY, ROOT, convert_ct2, timed  # noqa: E402
from make_random_marian import lines  # noqa: E402


def sentences(n):
    return lines(os.path.join(ROOT, "..", "shared", "data", "multi30k", "val.en.gz"), n)


def worker(a):
    """One timed run in this process: prints {"seconds", "tokens", "outputs"}."""
    src = sentences(a.n)
    chunks = [src[i:i + a.batch] for i in range(0, len(src), a.batch)]
    if a.engine == "attend":
        sys.path.insert(0, os.path.join(ROOT, "build/release/python"))
        import attend
        attend.set_threads(a.threads)
        t = attend.Translator(a.model, precision=a.precision)

        def run(chunk):
            return [r.tokens[0] for r in t.translate_batch(
                chunk, beam_size=a.beam, min_decoding_length=a.out_len,
                max_decoding_length=a.out_len, max_batch_tokens=1 << 20)]
    else:
        import ctranslate2
        import transformers
        tok = transformers.AutoTokenizer.from_pretrained(a.hf)
        t = ctranslate2.Translator(a.model, device="cpu", intra_threads=a.threads,
                                   inter_threads=1,
                                   compute_type="float32" if a.precision == "fp32" else "int8")

        def run(chunk):
            tokens = [tok.convert_ids_to_tokens(tok(s)["input_ids"]) for s in chunk]
            return [r.hypotheses[0] for r in t.translate_batch(
                tokens, beam_size=a.beam, min_decoding_length=a.out_len,
                max_decoding_length=a.out_len, max_batch_size=a.batch)]
    run(chunks[0])  # warm-up
    outputs = []
    start = time.perf_counter()
    for chunk in chunks:
        outputs += run(chunk)
    dt = time.perf_counter() - start
    print(json.dumps({"seconds": dt, "tokens": sum(len(o) for o in outputs),
                      "outputs": outputs}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--out-len", type=int, default=24)
    ap.add_argument("--large-batch", type=int, default=32)
    ap.add_argument("--sentences", type=int, default=500)
    ap.add_argument("--sentences-1", type=int, default=40)
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--convert-ct2", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--precision", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.engine:
        return worker(a)
    if a.convert_ct2:
        return convert_ct2(a.hf, a.convert_ct2)

    work = tempfile.mkdtemp(prefix="bench_hf_translate_")
    models = {"attend": os.path.join(work, "attend"), "ct2": os.path.join(work, "ct2")}
    secs, rss = timed([os.path.join(ROOT, "build/release/attend"), "convert", "--from", "hf",
                       a.hf, "-o", models["attend"]])
    print(f"attend convert: {secs:.1f} s, peak RSS {rss:.0f} MiB")
    secs, _ = timed([PY, __file__, a.hf, "--convert-ct2", models["ct2"]])
    print(f"CTranslate2's TransformersConverter: {secs:.1f} s")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE")
    rows = []
    for batch, n in ((1, a.sentences_1), (a.large_batch, a.sentences)):
        for precision in a.precisions:
            runs = {"attend": [], "ct2": []}
            outputs = {}
            for _ in range(a.rounds):
                for e in runs:
                    out = subprocess.run(
                        [PY, __file__, a.hf, "--engine", e, "--model", models[e],
                         "--precision", precision, "--batch", str(batch), "--n", str(n),
                         "--threads", str(a.threads), "--beam", str(a.beam),
                         "--out-len", str(a.out_len)],
                        env=env, check=True, capture_output=True, text=True).stdout
                    r = json.loads(out.strip().splitlines()[-1])
                    assert r["tokens"] == n * a.out_len, (e, precision, r["tokens"])
                    runs[e].append(r)
                    outputs[e] = r["outputs"]
            same = sum(x == y for x, y in zip(outputs["attend"], outputs["ct2"]))
            # batch 1: milliseconds per sentence (lower is better); else tokens/s
            value = ((lambda r: 1000 * r["seconds"] / n) if batch == 1
                     else (lambda r: r["tokens"] / r["seconds"]))
            unit = "ms/sentence" if batch == 1 else "tokens/s"
            ratios = [(value(y) / value(x)) if batch == 1 else (value(x) / value(y))
                      for x, y in zip(runs["attend"], runs["ct2"])]
            for e in runs:
                v = [value(r) for r in runs[e]]
                rows.append({"batch": batch, "precision": precision, "engine": e, "unit": unit,
                             "median": statistics.median(v), "range": [min(v), max(v)]})
                print(f"batch {batch:2d} {precision} {e:7s} {statistics.median(v):9.1f} {unit} "
                      f"[{min(v):.1f}, {max(v):.1f}]")
            print(f"batch {batch:2d} {precision} attend speed / CTranslate2's: "
                  f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}]; "
                  f"same tokens in {same} of {n} outputs")
            rows.append({"batch": batch, "precision": precision, "speedup": ratios,
                         "same_outputs": same, "sentences": n})
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
