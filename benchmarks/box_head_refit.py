"""Is the box head's last layer underfit? Refit it in closed form on training images and write the refit bundle.

The box offsets are a 1x1 convolution (with bias) of the decoder's features, so for fixed features the offsets
that minimise a weighted squared error have a closed form (ridge regression, pulled towards the trained weights).
On N training images (letterboxed at --size, no augmentation), every person cell with box-loss weight gives its
features and its target offsets; a person's cells are subsampled to at most --cap. --weighting says how much each
person counts: ``cell`` (every cell the same, as the training loss), ``person`` (every person the same, as
``--balance-instances``) or ``sqrt`` (a person of n cells weighs sqrt(n)). Prints the weighted RMSE of each
offset before and after, and writes a bundle (the same network and grouper, new box_offsets weights) for
``ap_decomposition.py`` and ``eval`` to score on the dev images.

Only models without a box tower (the 1x1 conv reads ``decoder_conv1_relu``).

Usage: python benchmarks/box_head_refit.py MODEL OUT [--images 400] [--weighting cell] [--ridge 1e-3] [--cap 0]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from bbe_mobile.letterbox import canvas_side, letterbox_image, letterbox_masks  # noqa: E402
from bbe_mobile.modeling.bundle import load_bundle, save_bundle  # noqa: E402
from bbe_mobile.modeling.targets import build_targets  # noqa: E402
from bbe_mobile.training.data import CocoPersons  # noqa: E402
from bbe_mobile.utils.paths import COCO_MINI, SHARED  # noqa: E402

TRAIN_SETS = ((COCO_MINI / "train", COCO_MINI / "instances_person_train.json"),
              (SHARED / "data" / "coco-person-extra" / "images",
               SHARED / "data" / "coco-person-extra" / "instances_person_extra.json"))
PERSON_WEIGHT_POWER = {"cell": 1.0, "sqrt": 0.5, "person": 0.0}  # a person of n cells weighs n ** power


def collect(model, stride: int, size: int, images: int, cap: int, rng) -> tuple[np.ndarray, ...]:
    """Features (N, C) float64, target offsets (N, 4), the owner's cell count (N,) of sampled person cells."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    probe = keras.Model(model.input, model.get_layer("decoder_conv1_relu").output)
    forward = tf.function(lambda x: probe(x, training=False))
    pool = [(ds, i) for ds in (CocoPersons(str(d), str(j)) for d, j in TRAIN_SETS) for i in ds.image_ids]
    features, targets, counts = [], [], []
    for index in rng.permutation(len(pool))[:images]:
        ds, image_id = pool[index]
        masks, crowd = ds.masks(image_id)
        if len(masks) == 0:
            continue
        canvas, box = letterbox_image(ds.image(image_id), size)
        t = build_targets(letterbox_masks(masks, box), crowd, stride)
        person = t.weights > 0
        cells = np.asarray(forward(canvas[None].astype(np.float32)))[0][person]
        owner, offsets = t.owner[person], t.offsets[person]
        for k in np.unique(owner):
            mine = np.flatnonzero(owner == k)
            picked = rng.choice(mine, cap, replace=False) if 0 < cap < len(mine) else mine
            features.append(cells[picked])
            targets.append(offsets[picked])
            counts.append(np.full(len(picked), len(mine), np.float64))
    return (np.concatenate(features).astype(np.float64), np.concatenate(targets).astype(np.float64),
            np.concatenate(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model bundle or snapshot directory")
    parser.add_argument("out", help="directory of the refit bundle (must not exist)")
    parser.add_argument("--images", type=int, default=400, help="training images sampled (seed 0)")
    parser.add_argument("--size", type=int, default=512, help="letterbox size, px")
    parser.add_argument("--weighting", choices=sorted(PERSON_WEIGHT_POWER), default="cell")
    parser.add_argument("--ridge", type=float, default=1e-3,
                        help="pull towards the trained weights, relative to the mean diagonal of the normal matrix")
    parser.add_argument("--cap", type=int, default=0, help="most cells per person (0: all)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        parser.error(f"{args.out} exists")
    bundle = load_bundle(args.model, input_size=canvas_side(args.size))
    if bundle.config.box_tower:
        parser.error("the model has a box tower: its box conv does not read decoder_conv1_relu")
    rng = np.random.default_rng(0)
    features, targets, counts = collect(bundle.model, bundle.stride, args.size, args.images, args.cap, rng)
    sampled = np.minimum(counts, args.cap) if args.cap > 0 else counts
    weight = counts ** PERSON_WEIGHT_POWER[args.weighting] / sampled  # a person's cells share its weight
    x = np.concatenate([features, np.ones((len(features), 1))], axis=1)
    layer = bundle.model.get_layer("box_offsets")
    kernel, bias = layer.get_weights()
    trained = np.concatenate([kernel[0, 0], bias[None]]).astype(np.float64)  # (C + 1, 4)
    normal = (x * weight[:, None]).T @ x
    ridge = args.ridge * np.trace(normal) / len(normal) * np.eye(len(normal))
    refit = np.linalg.solve(normal + ridge, (x * weight[:, None]).T @ targets + ridge @ trained)

    def rmse(w: np.ndarray) -> np.ndarray:
        return np.sqrt((weight[:, None] * (x @ w - targets) ** 2).sum(axis=0) / weight.sum())

    print(f"{len(x)} person cells of {args.images} training images, weighting {args.weighting}, ridge {args.ridge}")
    print("weighted RMSE of dx dy dw dh: trained " + " ".join(f"{v:.3f}" for v in rmse(trained))
          + "  refit " + " ".join(f"{v:.3f}" for v in rmse(refit)))
    layer.set_weights([refit[:-1][None, None].astype(np.float32), refit[-1].astype(np.float32)])
    save_bundle(args.out, bundle.model, bundle.config, bundle.input_size, bundle.grouper, bundle.name,
                {**bundle.info, "box_head_refit": {"images": args.images, "weighting": args.weighting,
                                                   "ridge": args.ridge, "cap": args.cap}})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
