#!/usr/bin/env python3
"""Serving figures for docs/serving.md, all against one model on this machine (loopback only,
bounded in time):

  load   64 clients (bench/serve_load) sending single-sentence translate requests to
         `attend serve` for --seconds, against offline `attend translate` of the same sentences
         with the same beam, interleaved over --rounds; medians and ranges.
  mixed  the same load with a fraction --bad of malformed or oversized requests: those must all
         get 4xx, the others 200.
  soak   half the clients for --soak-seconds: resident memory at the start and the end.
  ttft   time to the first streamed token of a completion (with --lm MODEL_DIR).
  http   the two HTTP libraries (bench/http_libs: Boost.Beast as attend uses it, cpp-httplib
         with its default pool and with one thread per client) serving a stand-in handler that
         waits --work-us per request, under the same 64-client load, interleaved.

usage: tools/bench_serve.py --model DIR --input SENTENCES [--rounds 3] [--seconds 30]
                            [--clients 64] [--beam 4] [--threads 2] [--bad 0.1]
                            [--soak-seconds 300] [--lm DIR] [--work-us 2000]
                            [--skip load,mixed,soak,ttft,http]
Prints one JSON object per measurement and a summary table."""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ATTEND = os.path.join(ROOT, "build/release/attend")
LOAD = os.path.join(ROOT, "build/release/bench/serve_load")
HTTP_LIBS = os.path.join(ROOT, "build/release/bench/http_libs")


class Server:
    """`attend serve` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, models, threads, extra=()):
        cmd = [ATTEND, "serve", "--port", "0", "--threads", str(threads)]
        for m in models:
            cmd += ["-m", m]
        self.proc = subprocess.Popen(cmd + list(extra), stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            sys.exit("serve did not start: " + line)
        self.port = int(m.group(1))

    def stop(self):
        self.proc.terminate()
        if self.proc.wait(timeout=60) != 0:
            sys.exit("serve exited %d after SIGTERM" % self.proc.returncode)


def offline(model, path, beam, threads):
    """Sentences per second of `attend translate` over the file (model load included)."""
    n = sum(1 for line in open(path) if line.strip())
    start = time.perf_counter()
    subprocess.run([ATTEND, "translate", "-m", model, "-i", path, "-o", os.devnull,
                    "--beam", str(beam), "--threads", str(threads)], check=True)
    return n / (time.perf_counter() - start)


def load(port, path, clients, seconds, beam, bad=0.0, pid=0):
    cmd = [LOAD, "--port", str(port), "--input", path, "--clients", str(clients),
           "--seconds", str(seconds), "--beam", str(beam), "--bad", str(bad)]
    if pid:
        cmd += ["--pid", str(pid)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["exit_status"] = out.returncode
    return result


def ttft(port, prompt, rounds=5):
    """Milliseconds from sending a streamed completion to its first token event (median)."""
    times = []
    for _ in range(rounds):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"prompt": prompt, "max_tokens": 64, "stream": True,
                           "temperature": 0})
        start = time.perf_counter()
        c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        first = None
        while True:
            line = r.readline()
            if not line:
                break
            if line.startswith(b"data: {") and first is None:
                first = (time.perf_counter() - start) * 1000
            if line.startswith(b"data: [DONE]"):
                break
        times.append(first)
        c.close()
    return statistics.median(times), min(times), max(times)


def http_lib(args, path, clients, seconds):
    """serve_load against one bench/http_libs server."""
    proc = subprocess.Popen([HTTP_LIBS, "--seconds", str(seconds + 5)] + args,
                            stdout=subprocess.PIPE, text=True)
    port = int(re.match(r"listening on (\d+)", proc.stdout.readline()).group(1))
    res = load(port, path, clients, seconds, 1)
    proc.kill()
    proc.wait()
    return res


def spread(xs):
    return "%.1f (%.1f-%.1f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="source sentences, one per line (.gz ok)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bad", type=float, default=0.1)
    ap.add_argument("--soak-seconds", type=float, default=300)
    ap.add_argument("--lm", help="a language model for the time to first token")
    ap.add_argument("--work-us", type=int, default=2000)
    ap.add_argument("--skip", default="", help="comma-separated: load,mixed,soak,ttft,http")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    path = a.input
    if path.endswith(".gz"):
        import gzip
        tmp = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)
        tmp.write(gzip.open(path, "rt", encoding="utf-8").read())
        tmp.close()
        path = tmp.name

    summary = []
    if "load" not in skip:
        off, on, p50, p99, errors = [], [], [], [], 0
        for r in range(a.rounds):
            off.append(offline(a.model, path, a.beam, a.threads))
            s = Server([a.model], a.threads)
            res = load(s.port, path, a.clients, a.seconds, a.beam)
            s.stop()
            print(json.dumps({"round": r, "offline_sentences_per_s": off[-1], "load": res}),
                  flush=True)
            on.append(res["sentences_per_s"])
            p50.append(res["latency_ms"]["p50"])
            p99.append(res["latency_ms"]["p99"])
            errors += res["failed"]
        ratios = [b / o for o, b in zip(off, on)]
        summary += [
            ("offline translate, sentences/s", spread(off)),
            ("server, %d clients, sentences/s" % a.clients, spread(on)),
            ("server / offline (per round)", "%.2f (%.2f-%.2f)" % (statistics.median(ratios),
                                                                  min(ratios), max(ratios))),
            ("latency p50 / p99, ms", "%s / %s" % (spread(p50), spread(p99))),
            ("errors", str(errors)),
        ]
    if "mixed" not in skip:
        s = Server([a.model], a.threads)
        res = load(s.port, path, a.clients, a.seconds, a.beam, bad=a.bad)
        s.stop()
        print(json.dumps({"mixed": res}), flush=True)
        summary.append(("with %.0f%% bad requests: ok / failed / bad->4xx / bad->other"
                        % (a.bad * 100), "%d / %d / %d / %d" % (res["ok"], res["failed"],
                                                              res["bad_4xx"], res["bad_not_4xx"])))
    if "soak" not in skip:
        s = Server([a.model], a.threads)
        res = load(s.port, path, max(1, a.clients // 2), a.soak_seconds, a.beam, pid=s.proc.pid)
        s.stop()
        print(json.dumps({"soak": res}), flush=True)
        rss = res["rss_kib"]
        summary.append(("soak %d s, %d clients: RSS at start, warm (10%% in) -> end (max), MiB; "
                        "growth from warm; errors" % (a.soak_seconds, max(1, a.clients // 2)),
                        "%.1f, %.1f -> %.1f (%.1f); %.2f%%; %d" % (
                            rss["first"] / 1024, rss["warm"] / 1024, rss["last"] / 1024,
                            rss["max"] / 1024, 100 * (rss["last"] - rss["warm"]) / rss["warm"],
                            res["failed"])))
    if a.lm and "ttft" not in skip:
        s = Server([a.lm], a.threads)
        med, lo, hi = ttft(s.port, "ROMEO:\n")
        s.stop()
        print(json.dumps({"ttft_ms": {"median": med, "min": lo, "max": hi}}), flush=True)
        summary.append(("time to first token (streamed completion), ms",
                        "%.1f (%.1f-%.1f)" % (med, lo, hi)))
    if "http" not in skip:
        libs = {"beast (thread per connection)": ["--lib", "beast"],
                "cpp-httplib (default pool)": ["--lib", "httplib"],
                "cpp-httplib (pool of %d)" % a.clients: ["--lib", "httplib", "--pool",
                                                         str(a.clients)]}
        rates = {k: [] for k in libs}
        p99 = {k: [] for k in libs}
        for r in range(a.rounds):
            for name, args in libs.items():
                res = http_lib(args + ["--work-us", str(a.work_us)], path, a.clients,
                               min(a.seconds, 10))
                print(json.dumps({"http": name, "round": r, "load": res}), flush=True)
                rates[name].append(res["sentences_per_s"])
                p99[name].append(res["latency_ms"]["p99"])
        for name in libs:
            summary.append(("%s, %d clients, %d us handler: requests/s; p99 ms"
                            % (name, a.clients, a.work_us),
                            "%s; %s" % (spread(rates[name]), spread(p99[name]))))
    print()
    for k, v in summary:
        print("| %s | %s |" % (k, v))


if __name__ == "__main__":
    main()
