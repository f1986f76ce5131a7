"""GPT-2-small-shaped generation from one HuggingFace checkpoint: attend (converted with
`attend convert --from hf`, run through the Python module) against CTranslate2's Generator
(converted by ct2-transformers-converter's TransformersConverter) and transformers' generate(), greedy, a --prompt-token
prompt and exactly --new new tokens (the end token is not allowed to stop a row), at batch 1 and
--large-batch, interleaved, --rounds times each, every measurement in a fresh process; prints
medians with their range and checks that attend's and CTranslate2's tokens are equal.

  build/venv/bin/python tools/bench_hf_generate.py HF_DIR --rounds 3

HF_DIR: a GPT-2 checkpoint saved by transformers (tools/make_random_gpt2.py makes a random
GPT-2-small-shaped one). The conversions are timed once (seconds and peak RSS of the process).
Needs CTranslate2 in build/venv (scripts/install-deps.sh installs it).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, "build/venv/bin/python")


def prompts(tok_dir, batch, length):
    """`batch` prompts of exactly `length` tokens: Multi30K-like text cut to length."""
    import transformers
    tok = transformers.AutoTokenizer.from_pretrained(tok_dir)
    words = ("a man in a blue shirt is standing on a ladder cleaning windows while two dogs "
             "play in the snow next to a red car").split()
    out = []
    for b in range(batch):
        ids = []
        i = b
        while len(ids) < length:
            ids += tok(" " + words[i % len(words)])["input_ids"]
            i += 1
        out.append(ids[:length])
    return out


def worker(a):
    """One timed run in this process: prints {"seconds", "tokens", "first"}."""
    ids = prompts(a.hf, a.batch, a.prompt)
    if a.engine == "attend":
        sys.path.insert(0, os.path.join(ROOT, "build/release/python"))
        import attend
        attend.set_threads(a.threads)
        import transformers
        tok = transformers.AutoTokenizer.from_pretrained(a.hf)
        texts = [tok.decode(p) for p in ids]
        with attend.Generator(a.model) as g:
            run = lambda: [r.token_ids for r in g.generate_batch(  # noqa: E731
                texts, max_new_tokens=a.new, sampling_temperature=0, end_token=False)]
            run()
            t = time.perf_counter()
            out = run()
            dt = time.perf_counter() - t
    elif a.engine == "ct2":
        import ctranslate2
        import transformers
        tok = transformers.AutoTokenizer.from_pretrained(a.hf)
        g = ctranslate2.Generator(a.model, device="cpu", compute_type="float32",
                                  intra_threads=a.threads, inter_threads=1)
        tokens = [tok.convert_ids_to_tokens(p) for p in ids]
        run = lambda: [r.sequences_ids[0] for r in g.generate_batch(  # noqa: E731
            tokens, max_length=a.new, min_length=a.new, sampling_topk=1,
            include_prompt_in_result=False)]
        run()
        t = time.perf_counter()
        out = run()
        dt = time.perf_counter() - t
    else:
        import torch
        import transformers
        torch.set_num_threads(a.threads)
        model = transformers.GPT2LMHeadModel.from_pretrained(a.hf).eval()
        x = torch.tensor(ids)

        def run():
            with torch.no_grad():
                y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=a.new,
                                   min_new_tokens=a.new, do_sample=False, synced_gpus=False,
                                   pad_token_id=model.config.eos_token_id)
            return y[:, x.shape[1]:].tolist()
        run()
        t = time.perf_counter()
        out = run()
        dt = time.perf_counter() - t
    print(json.dumps({"seconds": dt, "tokens": sum(len(o) for o in out), "first": out[0]}))


def convert_ct2(hf, out):
    """ct2-transformers-converter's conversion, through its Python class: CTranslate2 4.8 passes
    from_pretrained(dtype=...), which transformers 4.46 (the newest on Debian's torch 1.13) calls
    torch_dtype; the rename is the only change."""
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_model(self, model_class, path, **kwargs):
            if "dtype" in kwargs:
                kwargs["torch_dtype"] = kwargs.pop("dtype")
            return model_class.from_pretrained(path, **kwargs)

    Converter(hf).convert(out)


def timed(cmd):
    """Runs cmd; returns (wall seconds, peak RSS MiB of the child)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    dt = time.perf_counter() - t
    return dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--large-batch", type=int, default=16)
    ap.add_argument("--engines", nargs="+", default=["attend", "ct2", "transformers"])
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--convert-ct2", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.engine:
        return worker(a)
    if a.convert_ct2:
        return convert_ct2(a.hf, a.convert_ct2)

    work = tempfile.mkdtemp(prefix="bench_hf_")
    models = {"attend": os.path.join(work, "attend"), "ct2": os.path.join(work, "ct2"),
              "transformers": a.hf}
    attend_bin = os.path.join(ROOT, "build/release/attend")
    secs, rss = timed([attend_bin, "convert", "--from", "hf", a.hf, "-o", models["attend"]])
    print(f"attend convert: {secs:.1f} s, peak RSS {rss:.0f} MiB")
    if "ct2" in a.engines:
        secs, rss = timed([PY, __file__, a.hf, "--convert-ct2", models["ct2"]])
        print(f"CTranslate2's TransformersConverter: {secs:.1f} s (peak RSS of the children so "
              f"far: {rss:.0f} MiB)")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE")
    rows = []
    for batch in (1, a.large_batch):
        rates = {e: [] for e in a.engines}
        firsts = {}
        for _ in range(a.rounds):
            for e in a.engines:
                out = subprocess.run(
                    [PY, __file__, a.hf, "--engine", e, "--model", models[e], "--batch", str(batch),
                     "--threads", str(a.threads), "--prompt", str(a.prompt), "--new", str(a.new)],
                    env=env, check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                assert r["tokens"] == batch * a.new, (e, r["tokens"])
                rates[e].append(r["tokens"] / r["seconds"])
                firsts[e] = r["first"]
        same = firsts.get("attend") == firsts.get("ct2")
        for e in a.engines:
            med = statistics.median(rates[e])
            rows.append({"batch": batch, "engine": e, "tokens_per_s": med,
                         "range": [min(rates[e]), max(rates[e])]})
            print(f"batch {batch:2d}  {e:12s} {med:8.1f} tokens/s  [{min(rates[e]):.1f}, "
                  f"{max(rates[e]):.1f}]")
        if "ct2" in a.engines:
            ratio = [x / y for x, y in zip(rates["attend"], rates["ct2"])]
            print(f"batch {batch:2d}  attend / CTranslate2: {statistics.median(ratio):.2f}x "
                  f"[{min(ratio):.2f}, {max(ratio):.2f}]; first row's tokens equal: {same}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
