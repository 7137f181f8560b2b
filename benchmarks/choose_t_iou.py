"""Choose a grouper threshold of a model (``t_iou`` by default: the paper gives no value; or ``t_nms``,
``t_c``, ``t_fg``) by mask AP on the train split's multi-person images (the model saw them in training, the
held-out val images stay untouched by this choice). The model's maps are computed once; each value regroups them.

Usage: python benchmarks/choose_t_iou.py [--model DIR] [--size 512] [--param t_iou] [--values 0.1,0.2,...]
Prints AP, AP50 and AR100 per value and the best value.
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--param", default="t_iou", choices=("t_iou", "t_nms", "t_c", "t_fg"),
                        help="grouper threshold to choose")
    parser.add_argument("--values", default="0.1,0.2,0.3,0.4,0.5,0.6,0.7")
    args = parser.parse_args(argv)
    coco = SHARED / "data" / "coco-person-mini"
    train = CocoPersons(str(coco / "train"), str(coco / "instances_person_train.json"))
    ids = [i for i in train.image_ids if train.people_count(i) >= 2]
    predictor = Predictor(load_runner(args.model, input_size=canvas_side(args.size)), size=args.size)
    maps = {i: predictor.forward(train.image(i)) for i in ids}
    print(f"{len(ids)} multi-person train images, letterbox {args.size}")
    print(f"{args.param:>6} {'AP':>7} {'AP50':>7} {'AR100':>7}")
    best = None
    for value in (float(v) for v in args.values.split(",")):
        grouper = dataclasses.replace(predictor.grouper, **{args.param: value})
        results = [r for i in ids for r in prediction_results(predictor.group(*maps[i], grouper), i, train.category_id)]
        m = coco_metrics(train, results, ids)
        print(f"{value:>6.2f} {m['AP']:>7.3f} {m['AP50']:>7.3f} {m['AR100']:>7.3f}")
        best = max(best or (m["AP"], value), (m["AP"], value))
    print(f"best {args.param} {best[1]:.2f} (AP {best[0]:.3f})")


if __name__ == "__main__":
    main()
