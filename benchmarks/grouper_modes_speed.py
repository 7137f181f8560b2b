"""Grouper latency of the paper's mode against refine with the median and with the mean statistic, in NumPy, Swift
and Kotlin, on the golden benchmark maps (bench_129_10 and bench_129_20 by default, with their NAME_refine and
NAME_refine_mean cases). Each repeat runs the three tools' own bench rows in turn (NumPy: ``time_numpy_grouper``,
interleaved per call; Swift: ``bbe-grouper-bench``, release build; Kotlin: ``android_demo/grouper/bench.sh``), so
the load of a busy host spreads over all of them; ``--cpu`` pins every run to one core with ``taskset``.

Usage: python benchmarks/grouper_modes_speed.py [--repeats 5] [--runs 300] [--cpu 1] [--tools numpy,swift,kotlin]
       [--case bench_129_10]...
Prints one Markdown row per tool and case: the median over repeats of each repeat's median (ms), the min - max
of those, and refine / paper per repeat (median and min - max) against the 1.5x target. A tool that is not
built or not installed is skipped with a note (build Swift with ``swift build -c release --product
bbe-grouper-bench`` in ios_demo).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bbe_mobile.bench.groupers import IOS_DIR, KOTLIN_BENCH, REFINE_ROW_SUFFIXES
from bbe_mobile.golden import read_golden_doc, read_golden_index
from bbe_mobile.utils.paths import GOLDEN_DIR, REPO_ROOT

NUMPY_BENCH = ("import json, sys; from pathlib import Path; from bbe_mobile.bench.groupers import time_numpy_grouper; "
               "print(json.dumps(time_numpy_grouper(runs=int(sys.argv[1]), warmup=30, golden_dir=Path(sys.argv[2]))))")


def golden_subset(cases: list[str], directory: Path) -> list[str]:
    """Write into ``directory`` an index.json of ``cases`` and those of their refine variants that the golden files
    have, with links to their files; returns the case names. ValueError for a case that is not there."""
    known = set(read_golden_index(GOLDEN_DIR))
    missing = [n for n in cases if n not in known]
    if missing:
        raise ValueError(f"no golden case {missing[0]!r} in {GOLDEN_DIR}")
    names = [n + suffix for suffix in ("",) + REFINE_ROW_SUFFIXES for n in cases if n + suffix in known]
    for name in names:
        doc = read_golden_doc(GOLDEN_DIR, name)
        for key in ("prob_file", "offsets_file", "labels_file"):
            link = directory / doc[key]
            if not link.exists():
                link.symlink_to(GOLDEN_DIR / doc[key])
        (directory / f"{name}.json").symlink_to(GOLDEN_DIR / f"{name}.json")
    (directory / "index.json").write_text(json.dumps({"format": 1, "cases": names}))
    return names


def tool_commands(golden: Path, runs: int) -> dict[str, list[str] | str]:
    """The bench command of each tool, or the reason it is skipped."""
    swift_bench = IOS_DIR / ".build" / "release" / "bbe-grouper-bench"
    return {
        "numpy": [sys.executable, "-c", NUMPY_BENCH, str(runs), str(golden)],
        "swift": [str(swift_bench), "--golden", str(golden), "--runs", str(runs), "--warmup", "30"]
        if swift_bench.is_file() else f"{swift_bench} not built",
        "kotlin": ["bash", str(KOTLIN_BENCH), "--runs", str(runs), "--warmup", str(runs)]
        if shutil.which("java") and shutil.which("kotlinc") else "java or kotlinc not found",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=300, help="timed calls per case in each tool run")
    parser.add_argument("--cpu", type=int, default=None, help="pin every tool run to this core (taskset -c)")
    parser.add_argument("--tools", default="numpy,swift,kotlin", help="comma list of numpy, swift, kotlin")
    parser.add_argument("--case", action="append", default=None, help="paper-mode benchmark case (repeatable; "
                        "default bench_129_10 and bench_129_20)")
    args = parser.parse_args()
    if args.repeats < 1 or args.runs < 1:
        parser.error("--repeats and --runs must be >= 1")
    tools = args.tools.split(",")
    if not set(tools) <= {"numpy", "swift", "kotlin"}:
        parser.error(f"--tools: unknown tool in {args.tools!r}; choose from numpy, swift, kotlin")
    if args.cpu is not None and not shutil.which("taskset"):
        parser.error("--cpu needs taskset")
    pin = ["taskset", "-c", str(args.cpu)] if args.cpu is not None else []
    medians: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        golden = Path(tmp)
        try:
            golden_subset(list(dict.fromkeys(args.case or ["bench_129_10", "bench_129_20"])), golden)
        except ValueError as exc:
            parser.error(str(exc).splitlines()[0])
        commands = {tool: command for tool, command in tool_commands(golden, args.runs).items() if tool in tools}
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   BBE_GOLDEN_DIR=str(golden))
        for repeat in range(args.repeats):
            for tool, command in commands.items():
                if isinstance(command, str):
                    continue
                run = subprocess.run(pin + command, capture_output=True, text=True, env=env, timeout=900)
                if run.returncode != 0:
                    sys.exit(f"{tool} bench exited {run.returncode}: {run.stderr.strip()[-300:]}")
                for row in json.loads(run.stdout)["results"]:
                    medians.setdefault((tool, row["name"]), []).append(row["median_ms"])
            print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    for tool, command in commands.items():
        if isinstance(command, str):
            print(f"{tool}: skipped ({command})")
    print(f"| tool | case | median of {args.repeats} repeat medians, ms | min - max | refine / paper (min - max) |")
    print("| --- | --- | --- | --- | --- |")
    for (tool, name), values in medians.items():
        paper = next((name[:-len(s)] for s in REFINE_ROW_SUFFIXES if name.endswith(s)), None)
        ratio = ""
        if paper is not None:
            ratios = [v / p for v, p in zip(values, medians[(tool, paper)])]
            ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f} - {max(ratios):.2f}), target <= 1.5x"
        spread = f"{min(values):.3f} - {max(values):.3f}"
        print(f"| {tool} | {name} | {statistics.median(values):.3f} | {spread} | {ratio} |")


if __name__ == "__main__":
    main()
