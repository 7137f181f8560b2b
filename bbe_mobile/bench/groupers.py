"""The grouper benches on the golden ``bench_*`` cases (and the tracker on ``track_bench_129_10``), each in the
``bbe-bench/1`` format: NumPy in this
process, Swift (``swift build -c release`` in ios_demo) and Kotlin (android_demo/grouper/bench.sh) where their
toolchains exist."""
from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np

from bbe_mobile.bench.device_results import parse_bench_stdout
from bbe_mobile.bench.options import BenchOptions
from bbe_mobile.bench.timing import Progress, summarize
from bbe_mobile.golden import MEAN_SUFFIX, REFINE_SUFFIX, read_golden, read_golden_doc, read_golden_index
from bbe_mobile.golden_tracking import BENCH_SEQUENCE, INDEX, read_tracking_golden, read_tracking_index
from bbe_mobile.grouper import GrouperConfig, group
from bbe_mobile.tracker import TrackerConfig, TrackerState, smooth, update_tracks
from bbe_mobile.utils.paths import GOLDEN_DIR, REPO_ROOT

BENCH_ROW_STATS = ("median_ms", "p90_ms", "min_ms")  # the figures a bbe-bench/1 grouper row carries
IOS_DIR = REPO_ROOT / "ios_demo"
KOTLIN_BENCH = REPO_ROOT / "android_demo" / "grouper" / "bench.sh"
REFINE_ROW_SUFFIXES = (REFINE_SUFFIX, REFINE_SUFFIX + MEAN_SUFFIX)  # the refine rows of case NAME: median, mean


def bench_case_names(golden_dir: Path = GOLDEN_DIR) -> list[str]:
    """Names of the golden cases marked as benchmark cases (``bench_people`` set), in index order."""
    return [n for n in read_golden_index(golden_dir) if read_golden_doc(golden_dir, n).get("bench_people")]


def time_numpy_grouper(runs: int = 200, warmup: int = 20, golden_dir: Path = GOLDEN_DIR) -> dict:
    """Time ``group`` on every benchmark case (labels checked against the golden ones) -> bbe-bench/1 dict. The
    runs are interleaved (one call per case per round, the cases in a new seeded random order each round), so
    that the load of a busy host and the cache state a case inherits from the one before it (a 257x257 case
    evicts a 129x129 case's arrays) spread over all cases alike, and the two modes of a map compare fairly."""
    cases = []
    for name in bench_case_names(golden_dir):
        doc, prob, offsets, labels = read_golden(golden_dir, name)
        config = GrouperConfig(**doc["config"])
        for _ in range(warmup):
            out = group(prob, offsets, doc["stride"], config)
        if not np.array_equal(out.labels, labels):
            raise RuntimeError(f"NumPy grouper disagrees with golden case {name}")
        cases.append((name, doc, prob, offsets, config, []))
    order = np.random.default_rng(0)
    for _ in range(runs):
        for i in order.permutation(len(cases)):
            _, doc, prob, offsets, config, samples = cases[i]
            t0 = time.perf_counter()
            group(prob, offsets, doc["stride"], config)
            samples.append((time.perf_counter() - t0) * 1e3)
    results = []
    for name, doc, _, _, _, samples in cases:
        stats = summarize(samples)
        results.append({"kind": "grouper", "name": name, "height": doc["height"], "width": doc["width"],
                        "people": doc["bench_people"], **{k: stats[k] for k in BENCH_ROW_STATS}})
    return {"format": "bbe-bench/1", "source": "numpy-grouper", "device": "host", "runs": runs, "warmup": warmup,
            "results": results}


def time_numpy_tracker(runs: int = 200, warmup: int = 20, golden_dir: Path = GOLDEN_DIR) -> dict | None:
    """Smoothing + tracking per frame (docs/tracker.md) on the golden sequence ``track_bench_129_10``, grouper
    excluded (its labels come from the golden file): each run is one pass from a fresh state, divided by the frame
    count; IDs checked against the golden ones. A bbe-bench/1 row, or None without the sequence."""
    if not (golden_dir / INDEX).is_file() or BENCH_SEQUENCE not in read_tracking_index(golden_dir):
        return None
    doc, probs, _, _, labels = read_tracking_golden(golden_dir, BENCH_SEQUENCE)
    config = TrackerConfig(**doc["tracker"])
    content = (doc["content_height"], doc["content_width"])

    def one_pass() -> list:
        state, frames = TrackerState(), []
        for prob, frame_labels in zip(probs, labels):
            smoothed, _ = smooth(state.smoothed, prob, config)
            state, frame = update_tracks(dataclasses.replace(state, smoothed=smoothed), frame_labels, config, content)
            frames.append(frame)
        return frames

    for _ in range(warmup):
        one_pass()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        frames = one_pass()
        samples.append((time.perf_counter() - t0) * 1e3 / len(probs))
    if [f.ids.tolist() for f in frames] != [e["ids"] for e in doc["expected"]]:
        raise RuntimeError(f"NumPy tracker disagrees with golden sequence {BENCH_SEQUENCE}")
    stats = summarize(samples)
    return {"kind": "tracker", "name": BENCH_SEQUENCE, "height": doc["height"], "width": doc["width"], "people": 10,
            "frames": doc["frames"], **{k: stats[k] for k in BENCH_ROW_STATS}}


def mode_pairs(results: list[dict]) -> list[tuple[dict, dict]]:
    """(paper row, refine row) of each case timed in the paper's mode and in a refine mode (NAME with NAME_refine,
    the median statistic, and NAME_refine_mean, the mean), in row order."""
    by_name = {r.get("name"): r for r in results}
    pairs = []
    for r in results:
        name = str(r.get("name", ""))
        for suffix in REFINE_ROW_SUFFIXES:
            if name.endswith(suffix) and name[:-len(suffix)] in by_name:
                pairs.append((by_name[name[:-len(suffix)]], r))
    return pairs


def refine_label(paper: dict, refine: dict) -> str:
    """``NAME`` for a median refine row of case NAME, ``NAME mean`` for a mean one (the pairs of ``mode_pairs``)."""
    return paper["name"] + (" mean" if refine["name"].endswith(MEAN_SUFFIX) else "")


def _skipped(source: str, note: str) -> dict:
    return {"source": source, "status": "skipped", "note": note, "results": []}


def numpy_grouper(runs: int, warmup: int) -> dict:
    doc = time_numpy_grouper(runs=runs, warmup=warmup)
    tracker = time_numpy_tracker(runs=runs, warmup=warmup)
    return {"source": "numpy", "status": "ok", "note": "Python + NumPy (per-call interpreter overhead included)",
            "results": doc["results"] + ([tracker] if tracker else [])}


def swift_grouper(runs: int, warmup: int, timeout: float = 900) -> dict:
    """Build (``swift build -c release``, incremental) and run ``bbe-grouper-bench``; skipped without swift."""
    swift = shutil.which("swift")
    if not swift:
        return _skipped("swift", "swift not found on PATH: Swift grouper skipped")
    if not (IOS_DIR / "Package.swift").is_file():
        return _skipped("swift", f"{IOS_DIR}/Package.swift missing: Swift grouper skipped")
    build = subprocess.run([swift, "build", "-c", "release", "--product", "bbe-grouper-bench"], cwd=IOS_DIR,
                           capture_output=True, text=True, timeout=timeout)
    if build.returncode != 0:
        tail = (build.stderr or build.stdout).strip().splitlines()[-1:] or ["?"]
        return _skipped("swift", f"swift build failed: {tail[0][:200]}")
    binary = IOS_DIR / ".build" / "release" / "bbe-grouper-bench"
    run = subprocess.run([str(binary), "--runs", str(runs), "--warmup", str(warmup)], capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        return _skipped("swift", f"bbe-grouper-bench exited {run.returncode}: {run.stderr.strip()[-200:]}")
    doc = parse_bench_stdout(run.stdout, "bbe-grouper-bench")
    return {"source": "swift", "status": "ok", "note": "release build", "results": doc["results"]}


def kotlin_grouper(runs: int, warmup: int, timeout: float = 900) -> dict:
    """``android_demo/grouper/bench.sh`` (JVM, after JIT warm-up); skipped without java/kotlinc."""
    missing = [tool for tool in ("java", "kotlinc") if not shutil.which(tool)]
    if missing:
        return _skipped("kotlin", f"{' and '.join(missing)} not found on PATH: Kotlin grouper skipped "
                                  "(apt-get install -y default-jdk kotlin junit4)")
    run = subprocess.run(["bash", str(KOTLIN_BENCH), "--runs", str(runs), "--warmup", str(max(warmup, 50))],
                         capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        return _skipped("kotlin", f"bench.sh exited {run.returncode}: {run.stderr.strip()[-200:]}")
    doc = parse_bench_stdout(run.stdout, "android_demo/grouper/bench.sh")
    return {"source": "kotlin", "status": "ok", "note": "JVM (HotSpot) after JIT warm-up", "results": doc["results"]}


GROUPER_SOURCES = {"numpy": numpy_grouper, "swift": swift_grouper, "kotlin": kotlin_grouper}


def bench_groupers(options: BenchOptions, progress: Progress, log) -> list[dict]:
    progress.add(len(options.grouper_sources), "grouper")
    out = []
    for source in options.grouper_sources:
        progress.bar.set_description(f"grouper {source}")
        try:
            result = GROUPER_SOURCES[source](options.grouper_runs, options.grouper_warmup)
        except (subprocess.TimeoutExpired, OSError, ValueError, RuntimeError) as exc:
            result = _skipped(source, f"{source} grouper bench failed: {str(exc).splitlines()[0][:200]}")
        if result["status"] != "ok":
            log(f"note: {result['note']}")
        out.append(result)
        progress.step()
    return out
