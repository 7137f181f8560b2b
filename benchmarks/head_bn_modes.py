"""Train/inference mismatch of the heads' batch norm: per-cell box IoU on training samples, BN in inference mode
(moving averages, what `predict` and every export use) against batch-statistics mode (what the training loss
saw).

The samples are the training pipeline's own (``Sampler``: crop, rescale, copy-paste, seed 0), batched as in
training (8). The backbone's batch norm stays in inference mode in both arms, as `train` freezes it; only the
heads' (ASPP, decoder, box tower) switch. For each person cell with box-loss weight: IoU of the box its predicted
offsets decode to with the box its target offsets decode to (its person's box). Also the person map: mean
logistic loss over all cells.

Usage: python benchmarks/head_bn_modes.py RUN_OR_BUNDLE [...] [--images 50] [--crop 384]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bbe_mobile.boxes import anchor_centers, box_area, decode_boxes  # noqa: E402
from bbe_mobile.modeling.bundle import load_bundle  # noqa: E402
from bbe_mobile.training.data import AugmentConfig, CocoPersons, Sampler  # noqa: E402
from bbe_mobile.training.train import freeze_backbone_batch_norm  # noqa: E402
from bbe_mobile.utils.paths import COCO_MINI, SHARED  # noqa: E402

BATCH = 8


def matched_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a[k]`` and ``b[k]`` (N, 4) x1 y1 x2 y2 -> (N,)."""
    iw = np.maximum(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    ih = np.maximum(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    inter = iw * ih
    return inter / np.maximum(box_area(a) + box_area(b) - inter, np.finfo(np.float64).tiny)


def training_samples(count: int, crop: int, stride: int) -> list[tuple]:
    """The first ``count`` samples of the training pipeline, alternating the train sets (mini train, extra)."""
    sets = [CocoPersons(str(COCO_MINI / "train"), str(COCO_MINI / "instances_person_train.json")),
            CocoPersons(str(SHARED / "data" / "coco-person-extra" / "images"),
                        str(SHARED / "data" / "coco-person-extra" / "instances_person_extra.json"))]
    samplers = [Sampler(d, AugmentConfig(crop=crop), stride, seed=0) for d in sets]
    return [samplers[k % len(samplers)].sample(k // len(samplers)) for k in range(count)]


def scores(model, samples: list[tuple], stride: int, batch_stats: bool) -> dict:
    """Mean per-cell box IoU, share of cells at IoU >= 0.5 and mean logistic loss, over ``samples``."""
    ious, losses = [], []
    for start in range(0, len(samples), BATCH):
        chunk = samples[start:start + BATCH]
        images = np.stack([s[0] for s in chunk])
        logits, offsets = (np.asarray(o) for o in model(images, training=batch_stats))
        for k, (_, person, target, weights) in enumerate(chunk):
            p = person[..., 0]
            z = logits[k, ..., 0].astype(np.float64)
            losses.append(np.mean(np.maximum(z, 0) - z * p + np.log1p(np.exp(-np.abs(z)))))
            cells = weights[..., 0] > 0
            cx, cy = anchor_centers(*cells.shape, stride)
            ious.append(matched_iou(decode_boxes(offsets[k][cells], cx[cells], cy[cells]),
                                    decode_boxes(target[cells], cx[cells], cy[cells])))
    iou = np.concatenate(ious)
    return {"cells": iou.size, "iou": iou.mean(), "good": (iou >= 0.5).mean(), "semantic": float(np.mean(losses))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model bundles (a run directory's snapshots/step-N, or models/...)")
    parser.add_argument("--images", type=int, default=50, help="training samples")
    parser.add_argument("--crop", type=int, default=384, help="training crop side, px")
    args = parser.parse_args(argv)
    print(f"{args.images} training samples (crop {args.crop}, batch {BATCH}); per person cell: IoU of decoded "
          "predicted and target boxes")
    print("| model | heads' BN | cells | mean box IoU | cells at IoU >= 0.5 | semantic loss |")
    print("| --- | --- | --- | --- | --- | --- |")
    samples = None
    for path in args.models:
        bundle = load_bundle(path, input_size=args.crop)
        freeze_backbone_batch_norm(bundle.model)  # as `train` does
        stride = bundle.config.stride
        samples = samples or training_samples(args.images, args.crop, stride)
        for label, batch_stats in (("inference (moving averages)", False), ("batch statistics", True)):
            s = scores(bundle.model, samples, stride, batch_stats)
            print(f"| {path} | {label} | {s['cells']} | {s['iou']:.3f} | {s['good']:.3f} | {s['semantic']:.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
