"""Learning curve of training runs: dev mask AP (multi and single) and person IoU against images seen.

``bbe-mobile train`` keeps a model bundle every ``--snapshot-every`` steps in ``RUN/snapshots/step-NNNNNN``.
This script evaluates each snapshot (``bbe-mobile eval``'s protocol at ``--size``) on the dev sets no model
trains on: the 32 multi-person val images and the first 300 single-person val images. Scores are cached in
each snapshot (``curve_<size>.json``), so a rerun evaluates only new snapshots. Prints a Markdown table and
draws a PNG (x: images seen; y: AP multi, AP single, mean person IoU on the single images). The APs are given
for the snapshot's own grouper (the paper's mode, as training writes it) and for the refine mode
(docs/grouper.md), which the bundled model ships with; the model runs once per image for both.

    python benchmarks/learning_curve.py runs/ab_l1 runs/ab_giou --png curve.png
    python benchmarks/learning_curve.py runs/finetune --images-before runs/finetune=33600  # after train --init
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bbe_mobile.evaluate import evaluate, subset_ids  # noqa: E402
from bbe_mobile.export.runtime import load_runner  # noqa: E402
from bbe_mobile.letterbox import canvas_side  # noqa: E402
from bbe_mobile.predictor import Predictor  # noqa: E402
from bbe_mobile.training.data import CocoPersons  # noqa: E402
from bbe_mobile.training.train import SNAPSHOT_DIR  # noqa: E402
from bbe_mobile.utils.atomic import atomic_path, write_json  # noqa: E402
from bbe_mobile.utils.paths import COCO_MINI  # noqa: E402

VAL = COCO_MINI
SERIES = (("multi_ap", "AP multi (32)", (200, 40, 40)), ("single_ap", "AP single (300)", (40, 90, 200)),
          ("single_iou", "person IoU single", (40, 150, 60)))


class MemoRunner:
    """A runner that keeps the maps of every canvas it ran (by content), so a second grouper costs no forward."""

    def __init__(self, runner):
        self.runner = runner
        self.maps: dict[bytes, tuple] = {}

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def run(self, canvas):
        key = hashlib.sha1(canvas.tobytes()).digest()
        if key not in self.maps:
            self.maps[key] = self.runner.run(canvas)
        return self.maps[key]


def snapshot_scores(snapshot: Path, val: CocoPersons, size: int) -> dict:
    """Scores of one snapshot bundle on the dev sets, its own grouper and the refine mode (cached in the snapshot
    directory; a cache without the refine scores is recomputed)."""
    cache = snapshot / f"curve_{size}.json"
    if cache.is_file():
        scores = json.loads(cache.read_text())
        if "multi_ap_refine" in scores:
            return scores
    info = json.loads((snapshot / "bbe.json").read_text())["info"]
    runner = MemoRunner(load_runner(str(snapshot), input_size=canvas_side(size)))
    scores = {"step": info["steps"], "images_seen": info["images_seen"]}
    for suffix, grouper in (("", runner.grouper), ("_refine", dataclasses.replace(runner.grouper, mode="refine"))):
        predictor = Predictor(runner, grouper=grouper, size=size)
        _, multi = evaluate(predictor, val, subset_ids(val, "multi"), progress=False)
        _, single = evaluate(predictor, val, subset_ids(val, "single", 300), progress=False)
        scores.update({f"multi_ap{suffix}": multi["AP"], f"single_ap{suffix}": single["AP"]})
        if not suffix:
            scores.update({"multi_iou": multi["person_iou"], "single_iou": single["person_iou"]})
    write_json(cache, scores)
    return scores


def draw_curve(curves: dict[str, list[dict]], path: str, size: int) -> None:
    """One line per run and series; x images seen (linear), y score 0..1 scaled to the largest value."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    width, height, left, right, top, bottom = 1020, 520, 60, 320, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    points = [p for rows in curves.values() for p in rows]
    x_max = max(p["images_seen"] for p in points) * 1.05
    y_max = min(1.0, max(max(p[k] for p in points for k, _, _ in SERIES) * 1.15, 0.1))

    def xy(seen: float, value: float) -> tuple[float, float]:
        return (left + (width - left - right) * seen / x_max, height - bottom - (height - top - bottom) * value / y_max)

    for k in range(6):
        value = y_max * k / 5
        _, y = xy(0, value)
        draw.line([left, y, width - right, y], fill=(225, 225, 225))
        draw.text((8, y - 6), f"{value:.2f}", fill="black", font=font)
    for k in range(6):
        seen = x_max * k / 5
        x, _ = xy(seen, 0)
        draw.text((x - 10, height - bottom + 6), f"{seen / 1000:.0f}k", fill="black", font=font)
    draw.text((left, height - 22), "training images seen (augmented samples)", fill="black", font=font)
    draw.text((left, 12), f"dev-set learning curve at letterbox {size} (held-out val images)", fill="black", font=font)
    dashes = [None, (6, 4), (2, 3)]
    legend_y = top
    for r, (run, rows) in enumerate(curves.items()):
        rows = sorted(rows, key=lambda p: p["images_seen"])
        for key, label, colour in SERIES:
            line = [xy(p["images_seen"], p[key]) for p in rows]
            for (x0, y0), (x1, y1) in zip(line, line[1:]):
                _dashed(draw, (x0, y0, x1, y1), colour, dashes[r % len(dashes)])
            for x, y in line:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
            draw.line([width - right + 10, legend_y + 6, width - right + 30, legend_y + 6], fill=colour, width=2)
            draw.text((width - right + 34, legend_y), f"{Path(run).name}: {label}", fill="black", font=font)
            legend_y += 16
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def _dashed(draw, segment, colour, dash) -> None:
    x0, y0, x1, y1 = segment
    if dash is None:
        draw.line(segment, fill=colour, width=2)
        return
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-9)
    t = 0.0
    while t < length:
        t1 = min(t + dash[0], length)
        draw.line([x0 + (x1 - x0) * t / length, y0 + (y1 - y0) * t / length,
                   x0 + (x1 - x0) * t1 / length, y0 + (y1 - y0) * t1 / length], fill=colour, width=2)
        t = t1 + dash[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run directories holding snapshots/")
    parser.add_argument("--size", type=int, default=512, help="letterbox size, px")
    parser.add_argument("--png", default=None, help="write the chart here")
    parser.add_argument("--json", default=None, help="write every score here")
    parser.add_argument("--images-before", action="append", default=[], metavar="RUN=IMAGES",
                        help="images the run's starting bundle had seen (a run started with train --init), added "
                             "to its images-seen axis; repeatable")
    args = parser.parse_args(argv)
    try:
        before = {Path(run): int(images) for run, images in (item.rsplit("=", 1) for item in args.images_before)}
    except ValueError:
        print("error: --images-before takes RUN=IMAGES (an integer)", file=sys.stderr)
        return 1
    if not VAL.is_dir():
        print(f"error: dev data not found: {VAL}", file=sys.stderr)
        return 1
    val = CocoPersons(str(VAL / "val"), str(VAL / "instances_person_val.json"))
    curves = {}
    for run in args.runs:
        snapshots = sorted((Path(run) / SNAPSHOT_DIR).glob("step-*"))
        if not snapshots:
            print(f"error: no snapshots in {run}/{SNAPSHOT_DIR} (train with --snapshot-every)", file=sys.stderr)
            return 1
        offset = before.get(Path(run), 0)
        curves[run] = [{**scores, "images_seen": scores["images_seen"] + offset}
                       for scores in (snapshot_scores(s, val, args.size) for s in snapshots)]
    print("| run | step | images seen | AP multi (32) | AP single (300) | AP multi, refine | AP single, refine "
          "| person IoU single | person IoU multi |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run, rows in curves.items():
        for p in rows:
            print(f"| {Path(run).name} | {p['step']} | {p['images_seen']} | {p['multi_ap']:.3f} | {p['single_ap']:.3f} "
                  f"| {p['multi_ap_refine']:.3f} | {p['single_ap_refine']:.3f} | {p['single_iou']:.3f} "
                  f"| {p['multi_iou']:.3f} |")
    if args.png:
        draw_curve(curves, args.png, args.size)
    if args.json:
        write_json(args.json, curves)
    return 0


if __name__ == "__main__":
    sys.exit(main())
