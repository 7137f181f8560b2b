"""How the bench times things: the progress bar over every step, interleaved runs of several contenders
(A/B/A/B, so drifting load hits each alike), per-run statistics, and the letterboxed real image models are timed
on."""
from __future__ import annotations

import sys
import time

import numpy as np


def summarize(samples) -> dict:
    """median, p90, IQR (p25..p75), min of per-run ms, and the number of runs."""
    a = np.asarray(samples, dtype=np.float64)
    p25, p75 = np.percentile(a, [25, 75])
    return {"median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)), "iqr_ms": float(p75 - p25),
            "min_ms": float(a.min()), "runs": int(a.size)}


class Progress:
    """One tqdm bar over every step (conversions, verifications, timed runs); its total grows as phases start."""

    def __init__(self, enabled: bool, log=print):
        from tqdm import tqdm  # noqa: PLC0415

        self.log = log
        self.bar = tqdm(total=0, disable=not enabled, unit="step", desc="bench", dynamic_ncols=True, leave=False,
                        file=sys.stderr)

    def add(self, n: int, phase: str | None = None) -> None:
        self.bar.total += n
        if phase:
            self.bar.set_description(phase)
        self.bar.refresh()

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def write(self, message: str) -> None:
        """A log line that does not break the bar."""
        if self.bar.disable:
            self.log(message)
        else:
            with self.bar.external_write_mode(file=sys.stderr):
                self.log(message)

    def close(self) -> None:
        self.bar.close()


def time_interleaved(fns: dict, runs: int, warmup: int, progress: Progress | None = None) -> dict:
    """{key: [ms, ...]}: ``warmup`` untimed calls of each, then run r of every function before run r+1 of any
    (A/B/A/B...), so drifting machine load hits every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in fns}
    for _ in range(runs):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(1000 * (time.perf_counter() - start))
        if progress:
            progress.step(len(fns))
    return times


def timing_canvas(size: int, verify_dir: str | None) -> np.ndarray:
    """A letterboxed real val image (a random canvas when none is available)."""
    from bbe_mobile.export.images import image_files  # noqa: PLC0415
    from bbe_mobile.letterbox import letterbox_image, read_image  # noqa: PLC0415

    try:
        return letterbox_image(read_image(str(image_files(verify_dir, 1)[0])), size)[0]
    except (ValueError, OSError, TypeError):
        return np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)
