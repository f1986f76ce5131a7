"""Compares a build's golden outputs with the expected ones: compare.py EXPECTED_DIR GOT_DIR.

Every expected file must exist in GOT_DIR with the same lines. Within a line the text must be
equal character for character, except decimal numbers (scores, losses, probabilities), which
may differ by TOLERANCE: the expected files were written on one CPU, and another CPU's kernels
(AVX-512 instead of AVX2) sum in another order, which can move a printed 4-decimal figure by
one unit in its last place. A different token, word or count is a failure. Exit status 1 with
the file, line and both texts on the first difference of each file.
"""
import os
import re
import sys

NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")
TOLERANCE = 5e-4


def differs(want, got):
    if NUMBER.sub("#", want) != NUMBER.sub("#", got):
        return True
    for a, b in zip(NUMBER.findall(want), NUMBER.findall(got)):
        if abs(float(a) - float(b)) > TOLERANCE + 1e-6 * abs(float(a)):
            return True
    return False


def main():
    expected, got = sys.argv[1], sys.argv[2]
    bad = 0
    names = sorted(os.listdir(expected))
    for name in names:
        path = os.path.join(got, name)
        if not os.path.exists(path):
            print(f"{name}: not written")
            bad += 1
            continue
        with open(os.path.join(expected, name), encoding="utf-8") as f:
            want_lines = f.read().split("\n")
        with open(path, encoding="utf-8") as f:
            got_lines = f.read().split("\n")
        for i, (w, g) in enumerate(zip(want_lines, got_lines), 1):
            if differs(w, g):
                print(f"{name}:{i}: expected\n  {w}\ngot\n  {g}")
                bad += 1
                break
        else:
            if len(want_lines) != len(got_lines):
                print(f"{name}: {len(got_lines)} lines, expected {len(want_lines)}")
                bad += 1
    print(f"{len(names) - bad} of {len(names)} golden files agree")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
