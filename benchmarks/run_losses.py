"""Training losses of runs at equal steps, read from their TensorBoard logs (``RUN/logs``).

``train`` logs the batch's semantic, L1-box and GIoU losses every 20 steps; one batch is noisy, so each row is
the mean over a window of steps ending at the row's step, with the spread (standard deviation) of the logged
values in that window. Runs are compared at the same steps (the same images seen).

    python benchmarks/run_losses.py runs/ab_imagenet runs/ab_movenet --every 200 --window 200
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator  # noqa: E402
from tensorboard.util.tensor_util import make_ndarray  # noqa: E402

LOSSES = ("loss/semantic", "loss/box", "loss/giou")


def read_losses(run: Path) -> dict[str, dict[int, float]]:
    """Every logged value of each loss of ``run``: tag -> {step: value}. A resumed run's later value wins."""
    values: dict[str, dict[int, float]] = {tag: {} for tag in LOSSES}
    for events in sorted((run / "logs").glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={TENSORS: 0})
        acc.Reload()
        for tag in LOSSES:
            if tag in acc.Tags()[TENSORS]:
                for event in acc.Tensors(tag):
                    values[tag][event.step] = float(make_ndarray(event.tensor_proto))
    return values


def window_stats(series: dict[int, float], end: int, window: int) -> tuple[float, float, int]:
    """Mean, standard deviation and count of the values logged at steps in (end - window, end]."""
    picked = np.array([v for s, v in series.items() if end - window < s <= end])
    return (float(picked.mean()), float(picked.std()), picked.size) if picked.size else (np.nan, np.nan, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (train --out)")
    parser.add_argument("--every", type=int, default=200, help="a row every this many steps")
    parser.add_argument("--window", type=int, default=200, help="steps averaged in each row")
    args = parser.parse_args(argv)
    losses = {run: read_losses(run) for run in args.runs}
    last = min(max(losses[run]["loss/semantic"], default=0) for run in args.runs)
    print(f"mean (std) of the logged batch losses over the {args.window} steps up to each step; runs: "
          + ", ".join(str(r) for r in args.runs))
    print("| step | run | semantic | L1 box | 1 - GIoU |")
    print("| --- | --- | --- | --- | --- |")
    for end in range(args.every, last + 1, args.every):
        for run in args.runs:
            cells = []
            for tag in LOSSES:
                mean, std, n = window_stats(losses[run][tag], end, args.window)
                cells.append(f"{mean:.3f} ({std:.3f})" if n else "-")
            print(f"| {end} | {run.name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
