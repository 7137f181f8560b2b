"""Oracle AP: the method's ceiling on real data. Targets built from the COCO person annotations of the val split
at a stride, turned into perfect maps (probability 1 on person cells, exact offsets), grouped and scored by
pycocotools (mask AP, person category).

Usage: python benchmarks/oracle_ap.py [--strides 1,4] [--subset all|multi] [--t-iou 0.3]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from bbe_mobile.evaluate import coco_metrics, format_table, oracle_results
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.training.data import CocoPersons

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strides", default="1,4")
    parser.add_argument("--subset", choices=["all", "multi"], default="all")
    parser.add_argument("--t-iou", type=float, default=GrouperConfig().t_iou)
    args = parser.parse_args()
    coco = SHARED / "data" / "coco-person-mini"
    val = CocoPersons(str(coco / "val"), str(coco / "instances_person_val.json"))
    ids = [i for i in val.image_ids if args.subset == "all" or val.people_count(i) >= 2]
    for stride in (int(s) for s in args.strides.split(",")):
        t0 = time.time()
        metrics = coco_metrics(val, oracle_results(val, ids, stride, GrouperConfig(t_iou=args.t_iou)), ids)
        print(f"stride {stride}, {len(ids)} val images ({args.subset}), t_iou {args.t_iou}: "
              f"oracle mask AP {metrics['AP']:.3f} ({time.time() - t0:.0f} s)")
        print(format_table(metrics))


if __name__ == "__main__":
    main()
