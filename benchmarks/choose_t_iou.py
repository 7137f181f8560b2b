"""Choose a grouper threshold of a model (``t_iou`` by default: the paper gives no value; or ``t_nms``,
``t_c``, ``t_fg``) by mask AP on the train split's multi-person images (the model saw them in training, the
held-out val images stay untouched by this choice), for one or more grouper modes (``--modes``: ``model``, the
model's own, or any of ``paper``, ``refine-median``, ``refine-mean``). ``--extra`` adds the crowded images of
coco-person-extra (training images too). The model's maps are computed once; each (mode, value) regroups them.

Usage: python benchmarks/choose_t_iou.py [--model DIR] [--size 512] [--param t_iou] [--values 0.1,0.2,...]
                                         [--modes model|paper,refine-median,refine-mean] [--extra]
Prints AP, AP50 and AR100 per mode and value and the best value of each mode.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bbe_mobile.evaluate import coco_metrics, prediction_results  # noqa: E402
from bbe_mobile.export.runtime import load_runner  # noqa: E402
from bbe_mobile.letterbox import canvas_side  # noqa: E402
from bbe_mobile.predictor import Predictor  # noqa: E402
from bbe_mobile.training.data import CocoPersons  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
MODES = {"paper": {"mode": "paper"}, "refine-median": {"mode": "refine", "refine_statistic": "median"},
         "refine-mean": {"mode": "refine", "refine_statistic": "mean"}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--param", default="t_iou", choices=("t_iou", "t_nms", "t_c", "t_fg"),
                        help="grouper threshold to choose")
    parser.add_argument("--values", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7")
    parser.add_argument("--modes", default="model", help="comma list of model, paper, refine-median, refine-mean")
    parser.add_argument("--extra", action="store_true", help="add coco-person-extra's crowded images")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    if unknown := set(modes) - {"model", *MODES}:
        parser.error(f"unknown --modes {', '.join(sorted(unknown))}")
    coco, extra = SHARED / "data" / "coco-person-mini", SHARED / "data" / "coco-person-extra"
    sets = [CocoPersons(str(coco / "train"), str(coco / "instances_person_train.json"))]
    if args.extra:
        sets.append(CocoPersons(str(extra / "images"), str(extra / "instances_person_extra.json")))
    predictor = Predictor(load_runner(args.model, input_size=canvas_side(args.size)), size=args.size)
    crowded = [(ds, [i for i in ds.image_ids if ds.people_count(i) >= 2]) for ds in sets]
    maps = [{i: predictor.forward(ds.image(i)) for i in ids} for ds, ids in crowded]
    print(f"{sum(len(ids) for _, ids in crowded)} multi-person train images, letterbox {args.size}")
    print(f"{args.param:>6} {'mode':<14} {'AP':>7} {'AP50':>7} {'AR100':>7}")
    best = {}
    for mode in modes:
        base = predictor.grouper if mode == "model" else dataclasses.replace(predictor.grouper, **MODES[mode])
        for value in (float(v) for v in args.values.split(",")):
            grouper = dataclasses.replace(base, **{args.param: value})
            m = image_weighted_metrics(predictor, grouper, crowded, maps)
            print(f"{value:>6.2f} {mode:<14} {m['AP']:>7.3f} {m['AP50']:>7.3f} {m['AR100']:>7.3f}")
            best[mode] = max(best.get(mode, (m["AP"], value)), (m["AP"], value))
    print("best " + "; ".join(f"{mode} {args.param} {value:.2f} (AP {ap:.3f})" for mode, (ap, value) in best.items()))


def image_weighted_metrics(predictor: Predictor, grouper, crowded: list, maps: list) -> dict:
    """Mask AP/AR of the images of every set, each set scored by pycocotools with the set's own ground truth and
    the figures weighted by image count (sets: ``(CocoPersons, ids)``; ``maps``: per set, id -> forward maps)."""
    totals, count = {}, 0
    for (ds, ids), set_maps in zip(crowded, maps, strict=True):
        results = [r for i in ids for r in prediction_results(predictor.group(*set_maps[i], grouper), i, ds.category_id)]
        for key, value in coco_metrics(ds, results, ids).items():
            totals[key] = totals.get(key, 0.0) + value * len(ids)
        count += len(ids)
    return {key: value / count for key, value in totals.items()}


if __name__ == "__main__":
    main()
