"""Timing the NumPy grouper on the golden benchmark cases, in the ``bbe-bench/1`` format (docs/bench-format.md)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from bbe_mobile.golden import read_golden
from bbe_mobile.grouper import GrouperConfig, group
from bbe_mobile.paths import GOLDEN_DIR

BENCH_ROW_STATS = ("median_ms", "p90_ms", "min_ms")  # the figures a bbe-bench/1 grouper row carries


def bench_case_names(golden_dir: Path = GOLDEN_DIR) -> list[str]:
    """Names of the golden cases marked as benchmark cases (``bench_people`` set), in index order."""
    names = json.loads((golden_dir / "index.json").read_text())["cases"]
    return [n for n in names if json.loads((golden_dir / f"{n}.json").read_text()).get("bench_people")]


def summarize(samples) -> dict:
    """median, p90, IQR (p25..p75), min of per-run ms, and the number of runs."""
    a = np.asarray(samples, dtype=np.float64)
    p25, p75 = np.percentile(a, [25, 75])
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "iqr_ms": float(p75 - p25),
            "min_ms": float(a.min()), "runs": int(a.size)}


def time_numpy_grouper(runs: int = 200, warmup: int = 20, golden_dir: Path = GOLDEN_DIR) -> dict:
    """Time ``group`` on every benchmark case (labels checked against the golden ones) -> bbe-bench/1 dict."""
    results = []
    for name in bench_case_names(golden_dir):
        doc, prob, offsets, labels = read_golden(golden_dir, name)
        config = GrouperConfig(**doc["config"])
        for _ in range(warmup):
            out = group(prob, offsets, doc["stride"], config)
        if not np.array_equal(out.labels, labels):
            raise RuntimeError(f"NumPy grouper disagrees with golden case {name}")
        samples = []
        for _ in range(runs):
            t0 = time.perf_counter()
            group(prob, offsets, doc["stride"], config)
            samples.append((time.perf_counter() - t0) * 1e3)
        stats = summarize(samples)
        results.append({"kind": "grouper", "name": name, "height": doc["height"], "width": doc["width"],
                        "people": doc["bench_people"], **{k: stats[k] for k in BENCH_ROW_STATS}})
    return {"format": "bbe-bench/1", "source": "numpy-grouper", "device": "host", "runs": runs, "warmup": warmup,
            "results": results}
