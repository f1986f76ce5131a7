"""Shared by the benchmark drivers (tools/bench_train.py, tools/bench_decode.py): the project
root, the environment both sides run in, running one side and reading its JSON line, and the
check that torch runs on OpenBLAS."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bench_env(threads):
    """Same threads for both. OpenBLAS 0.3.21 does not recognise Sapphire Rapids and needs
    SkylakeX named there (docs/gemm.md); on a CPU without AVX-512 (an AMD EPYC host with AVX2)
    that kernel would stop on an illegal instruction, and OpenBLAS's own detection is kept."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with open("/proc/cpuinfo") as f:
        if " avx512f" in f.read():
            env["OPENBLAS_CORETYPE"] = "SkylakeX"
    return env


def run(cmd, env):
    """Runs one benchmark process and returns the JSON object on its last output line."""
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def require_openblas(peer_result):
    if peer_result["blas"] != "openblas":
        sys.exit("torch is not running on OpenBLAS: select it with update-alternatives")
