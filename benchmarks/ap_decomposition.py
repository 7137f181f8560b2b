"""Which head limits a model's mask AP: the semantic map or the box offsets?

On the multi-person images of a COCO split (default: the 32 held-out val images), the model's maps are grouped
three ways and scored by pycocotools: as predicted; with the ground-truth person map (probability 1 on person
cells) and the predicted offsets; with the predicted map and the ground-truth offsets on ground-truth person
cells. Also the quality of the box embedding itself: for each person cell, the IoU of its decoded box with its
person's ground-truth box (letterboxed input pixels), by person size in cells; and its bias and spread: per
person, the mean over its cells of log(decoded width / true width) and log(decoded height / true height) (> 0:
boxes too large), and the standard deviation of log(decoded width) over its cells (how much the cells of one
person disagree).

Usage: python benchmarks/ap_decomposition.py [--model RUN] [--size 512] [--split val|train] [--limit 32]
"""
from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path

import numpy as np

from bbe_mobile.boxes import anchor_centers, decode_boxes, pairwise_iou
from bbe_mobile.evaluate import coco_metrics, prediction_results
from bbe_mobile.export.runtime import KerasRunner
from bbe_mobile.letterbox import canvas_side, letterbox_masks
from bbe_mobile.modeling.bundle import load_bundle
from bbe_mobile.modeling.targets import build_targets, mask_boxes
from bbe_mobile.predictor import Predictor
from bbe_mobile.training.data import CocoPersons

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
SIZE_BINS = ((0, 40, "< 40 cells"), (40, 370, "40-369 cells"), (370, 10**9, ">= 370 cells"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--size", type=int, default=512, help="letterbox size (longer side, input pixels)")
    parser.add_argument("--split", choices=["val", "train"], default="val")
    parser.add_argument("--limit", type=int, default=32, help="first N images with 2+ people")
    args = parser.parse_args()
    coco = SHARED / "data" / "coco-person-mini"
    ds = CocoPersons(str(coco / args.split), str(coco / f"instances_person_{args.split}.json"))
    ids = [i for i in ds.image_ids if ds.people_count(i) >= 2][: args.limit]
    bundle = load_bundle(args.model, input_size=canvas_side(args.size))
    predictor = Predictor(KerasRunner(bundle), size=args.size)
    stride = bundle.config.stride
    results: dict[str, list] = {"model maps": [], "ground-truth person map": [], "ground-truth offsets": []}
    sizes, ious, log_ratios, spreads = [], [], [], []
    for image_id in ids:
        masks, crowd = ds.masks(image_id)
        prob, offsets, box = predictor.forward(ds.image(image_id))
        canvas_masks = letterbox_masks(masks, box)
        t = build_targets(canvas_masks, crowd, stride)
        person = t.weights > 0
        maps = {"model maps": (prob, offsets),
                "ground-truth person map": ((t.person >= 0.5).astype(np.float32), offsets),
                "ground-truth offsets": (prob, np.where(person[..., None], t.offsets, offsets))}
        for name, (p, o) in maps.items():
            results[name] += prediction_results(predictor.group(p, o, box), image_id, ds.category_id)
        cx, cy = anchor_centers(*prob.shape, box.side / prob.shape[0])
        decoded = decode_boxes(offsets[person], cx[person], cy[person])
        truth = mask_boxes(canvas_masks)
        for k in np.unique(t.owner[person]):
            sel = t.owner[person] == k
            sizes.append(int(sel.sum()))
            ious.append(pairwise_iou(decoded[sel], truth[k - 1: k])[:, 0])
            extents = np.log(decoded[sel, 2:] - decoded[sel, :2])  # (n, 2) log width, log height
            log_ratios.append(extents.mean(axis=0) - np.log(truth[k - 1, 2:] - truth[k - 1, :2]))
            spreads.append(extents[:, 0].std())
    print(f"{len(ids)} {args.split} images with 2+ people, letterbox {args.size}, model {bundle.name} "
          f"({args.model or 'bundled'})")
    for name, res in results.items():
        with contextlib.redirect_stdout(io.StringIO()):
            m = coco_metrics(ds, res, ids)
        print(f"  {name:<26} mask AP {m['AP']:.3f}  AP50 {m['AP50']:.3f}  AR100 {m['AR100']:.3f}")
    sizes_a = np.array(sizes)
    print("  box embedding (per person: mean over its cells of IoU(decoded box, true box)):")
    for lo, hi, label in SIZE_BINS:
        sel = [k for k, s in enumerate(sizes) if lo <= s < hi]
        if sel:
            mean_iou = np.mean([ious[k].mean() for k in sel])
            good = np.mean([(ious[k] >= 0.5).mean() for k in sel])
            bias_w, bias_h = np.mean([log_ratios[k] for k in sel], axis=0)
            spread = np.mean([spreads[k] for k in sel])
            print(f"    {label:<13} {len(sel):4d} people  mean IoU {mean_iou:.2f}  cells with IoU >= 0.5: {good:.2f}  "
                  f"log(w/true w) {bias_w:+.2f}  log(h/true h) {bias_h:+.2f}  spread of log w {spread:.2f}")
    print(f"    all           {len(sizes_a):4d} people")


if __name__ == "__main__":
    main()
