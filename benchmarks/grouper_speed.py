"""NumPy grouper latency on the golden benchmark cases (tests/golden/bench_*, both modes: NAME_refine is the
refine mode on the same maps, NAME_refine_mean the refine mode with the mean statistic), one thread.

Usage: python benchmarks/grouper_speed.py [--runs 200] [--warmup 20]
Prints one line per case (median, p90 in ms), the 129x129 / 10-person figure against the 0.4 ms target of the
paper's mode, and refine / paper per case against the 1.5x target.
"""
from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bbe_mobile.bench.groupers import mode_pairs, refine_label, time_numpy_grouper  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the bbe-bench/1 JSON instead of a table")
    args = parser.parse_args()
    report = time_numpy_grouper(runs=args.runs, warmup=args.warmup)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"{'case':<16} {'people':>6} {'median ms':>10} {'p90 ms':>8}")
        for r in report["results"]:
            print(f"{r['name']:<16} {r['people']:>6} {r['median_ms']:>10.3f} {r['p90_ms']:>8.3f}")
        target = next(r for r in report["results"] if r["name"] == "bench_129_10")
        print(f"129x129 / 10 people: median {target['median_ms']:.3f} ms (target <= 0.4 ms, single thread)")
        for paper, refine in mode_pairs(report["results"]):
            ratio = refine["median_ms"] / paper["median_ms"]
            print(f"{refine_label(paper, refine)}: refine / paper {ratio:.2f}x (target <= 1.5x)")
