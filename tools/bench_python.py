"""What the Python API costs over the command line, on the same model, input and threads,
interleaved --rounds times; prints medians with their range and one JSON object.

  PYTHONPATH=build/release/python build/venv/bin/python tools/bench_python.py \\
      --translation MODEL --input ../shared/data/multi30k/val.lc.norm.tok.en.gz --lines 1000 \\
      --lm CHARACTER_MODEL --new 250

translate: `attend translate -m MODEL -i FILE -o OUT` (the whole process: start, load, translate,
write) against a fresh Python process doing attend.Translator(MODEL) + translate_batch(lines) +
writing the same file, timed inside it (the interpreter's start and `import attend` are not
counted; the executable's start is). Each side starts cold: oneDNN compiles its kernels afresh
in every process. Both outputs must be equal.

generate: a character model continues one prompt; `attend generate --prompt P --max-new N`
(streaming into a pipe) against iterating Generator.generate_tokens. Each side's generation
time is its time for N tokens less its time for 1 token (the CLI's process start and load, the
prompt's prefill fall out), so tokens/s = (N - 1) / difference. Both texts must be equal.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import ROOT  # noqa: E402

import attend  # noqa: E402


def read_lines(path, n):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for _, line in zip(range(n), f)]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def bench_translate(a, env, tmp):
    lines = read_lines(a.input, a.lines)
    src = os.path.join(tmp, "src.txt")
    with open(src, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    cli_out, py_out = os.path.join(tmp, "cli.txt"), os.path.join(tmp, "py.txt")
    cmd = [a.binary, "translate", "-m", a.translation, "-i", src, "-o", cli_out, "--threads",
           str(a.threads), "--beam", str(a.beam)]

    py_cmd = [sys.executable, os.path.abspath(__file__), "--translate-once", a.translation, src,
              py_out, str(a.beam), str(a.threads)]
    cli, py, call = [], [], []
    for _ in range(a.rounds):
        cli.append(timed(lambda: subprocess.run(cmd, env=env, check=True))[0])
        once = json.loads(subprocess.run(py_cmd, env=env, check=True, capture_output=True,
                                         text=True).stdout)
        py.append(once["total_s"])
        call.append(once["call_s"])
    with open(cli_out, encoding="utf-8") as f, open(py_out, encoding="utf-8") as g:
        if f.read() != g.read():
            sys.exit("translate: the Python API's output differs from attend translate's")
    ratios = [p / c for p, c in zip(py, cli)]
    return {"lines": len(lines), "beam": a.beam, "cli_s": summary(cli), "python_s": summary(py),
            "translate_batch_call_s": summary(call), "python_over_cli": summary(ratios)}


def translate_once(model, src, out, beam, threads):
    """One cold Python translation (the --translate-once process): prints its times."""
    with open(src, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = time.perf_counter()
    with attend.Translator(model, threads=int(threads)) as t:
        call, results = timed(lambda: t.translate_batch(lines, beam_size=int(beam)))
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(r.hypotheses[0] + "\n" for r in results))
    print(json.dumps({"total_s": time.perf_counter() - start, "call_s": call}))


def bench_generate(a, env):
    def cli_side(n):
        cmd = [a.binary, "generate", "-m", a.lm, "--prompt", a.prompt, "--max-new", str(n),
               "--seed", "1", "--threads", str(a.threads)]
        return timed(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True,
                                            text=True).stdout)

    def python_side(g, n):
        return timed(lambda: "".join(g.generate_tokens(a.prompt, max_new_tokens=n, seed=1)))

    cli_rate, py_rate = [], []
    with attend.Generator(a.lm) as g:
        for _ in range(a.rounds):
            (c1, _), (cn, text_cli) = cli_side(1), cli_side(a.new)
            (p1, _), (pn, text_py) = python_side(g, 1), python_side(g, a.new)
            if text_cli != text_py + "\n":
                sys.exit("generate: the streamed text differs from attend generate's")
            cli_rate.append((a.new - 1) / (cn - c1))
            py_rate.append((a.new - 1) / (pn - p1))
    ratios = [p / c for p, c in zip(py_rate, cli_rate)]
    return {"new": a.new, "cli_tokens_per_s": summary(cli_rate),
            "python_tokens_per_s": summary(py_rate), "python_over_cli": summary(ratios)}


def main():
    if sys.argv[1:2] == ["--translate-once"]:
        return translate_once(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--translation", help="an encoder-decoder model directory")
    ap.add_argument("--input", help="sentences to translate (.gz allowed)")
    ap.add_argument("--lines", type=int, default=1000)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--lm", help="a decoder-only (character) model directory")
    ap.add_argument("--prompt", default="ROMEO:\n")
    ap.add_argument("--new", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/release/attend"))
    a = ap.parse_args()
    attend.set_threads(a.threads)
    env = dict(os.environ)
    result = {"threads": a.threads, "rounds": a.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        if a.translation:
            result["translate"] = t = bench_translate(a, env, tmp)
            print(f"translate {t['lines']} lines, beam {t['beam']}: attend translate "
                  f"{t['cli_s']['median']:.3f} s [{t['cli_s']['min']:.3f}, {t['cli_s']['max']:.3f}]"
                  f", Python {t['python_s']['median']:.3f} s [{t['python_s']['min']:.3f}, "
                  f"{t['python_s']['max']:.3f}] (translate_batch call "
                  f"{t['translate_batch_call_s']['median']:.3f} s); Python / CLI "
                  f"{t['python_over_cli']['median']:.4f} [{t['python_over_cli']['min']:.4f}, "
                  f"{t['python_over_cli']['max']:.4f}]")
    if a.lm:
        result["generate"] = g = bench_generate(a, env)
        print(f"generate {g['new']} tokens: attend generate "
              f"{g['cli_tokens_per_s']['median']:.0f} tok/s [{g['cli_tokens_per_s']['min']:.0f}, "
              f"{g['cli_tokens_per_s']['max']:.0f}], generate_tokens "
              f"{g['python_tokens_per_s']['median']:.0f} tok/s "
              f"[{g['python_tokens_per_s']['min']:.0f}, {g['python_tokens_per_s']['max']:.0f}]; "
              f"Python / CLI {g['python_over_cli']['median']:.4f} "
              f"[{g['python_over_cli']['min']:.4f}, {g['python_over_cli']['max']:.4f}]")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
