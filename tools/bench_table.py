#!/usr/bin/env python3
"""Turns Google Benchmark JSON (with repetitions) into a markdown table of medians.

usage: tools/bench_table.py RESULT.json [COUNTER]
Rows are benchmark names without the aggregate suffix; COUNTER (default GFLOP/s) is printed
next to the median real time.
"""
import json
import sys


def main() -> None:
    path = sys.argv[1]
    counter = sys.argv[2] if len(sys.argv) > 2 else "GFLOP/s"
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    print(f"| benchmark | median time | median {counter} |")
    print("| --- | ---: | ---: |")
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].split("/real_time")[0]
        value = b.get(counter)
        shown = f"{value / 1e9 if value and value > 1e6 else value:.1f}" if value else "-"
        print(f"| {name} {b.get('label', '')} | {b['real_time']:.3f} {b['time_unit']} | {shown} |")


if __name__ == "__main__":
    main()
