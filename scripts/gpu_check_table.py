#!/usr/bin/env python3
"""The table scripts/gpu-check.sh prints, from GoogleTest's XML reports.

The op table's cells (Ops/OpTable.MatchesTheF64Reference/<case>_on_<backend>) become one row per
case with a column per backend; every other test is a row of its own. A cell reads "pass",
"FAIL", "missing kernel" (the backend has no kernel for the op), "no device" or "skipped".
Usage: gpu_check_table.py REPORT.xml [REPORT.xml ...]
"""
import sys
import xml.etree.ElementTree as ET

OP_TABLE = "MatchesTheF64Reference/"


def outcome(case):
    """One test's outcome from its <testcase> element."""
    if case.find("failure") is not None:
        return "FAIL"
    skipped = case.find("skipped")
    if skipped is not None or case.get("result") == "skipped":
        message = (skipped.get("message", "") if skipped is not None else "") + (
            skipped.text or "" if skipped is not None else "")
        if "not implemented for" in message:
            return "missing kernel"
        if "no device" in message or "no CUDA device" in message:
            return "no device"
        if "built without CUDA" in message:
            return "no CUDA build"
        return "skipped"
    if case.get("status") == "notrun":
        return "disabled"
    return "pass"


def main(paths):
    ops = {}  # case -> {backend: outcome}
    backends = []
    others = []
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            name = case.get("name", "")
            if OP_TABLE in name:
                cell = name.split(OP_TABLE, 1)[1]
                op, _, backend = cell.rpartition("_on_")
                if backend not in backends:
                    backends.append(backend)
                ops.setdefault(op, {})[backend] = outcome(case)
            else:
                others.append((case.get("classname", "") + "." + name, outcome(case)))

    print("| op case | " + " | ".join(backends) + " |")
    print("| --- |" + " --- |" * len(backends))
    for op, cells in ops.items():
        print(f"| {op} | " + " | ".join(cells.get(b, "-") for b in backends) + " |")
    print()
    for backend in backends:
        counts = {}
        for cells in ops.values():
            counts[cells.get(backend, "-")] = counts.get(cells.get(backend, "-"), 0) + 1
        print(f"{backend}: " + ", ".join(f"{n} {what}" for what, n in sorted(counts.items())))
    print()
    print("| test | result |")
    print("| --- | --- |")
    for name, result in others:
        print(f"| {name} | {result} |")
    failed = sum(r == "FAIL" for _, r in others) + sum(
        c == "FAIL" for cells in ops.values() for c in cells.values())
    print()
    print(f"failures: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
