"""Mask AP of grouper modes (the paper's, refine, variants) on the two dev sets: the 32 multi-person val images
and the first 300 single-person val images of coco-person-mini, one model, one letterbox size. The model's maps
are computed once per image and cached (``--cache``, an .npz per set); each variant only regroups them.

Usage: python benchmarks/grouper_modes_ap.py [--model DIR] [--size 512] [--cache DIR] [--variants a,b,...]
                                             [--versus VARIANT]
Prints one Markdown row per variant: AP, AP50, AP75, APL, AR100 on each dev set. ``--versus paper`` adds a
second table: each variant's AP minus that variant's on each dev set, with the spread of a paired bootstrap
(images resampled with replacement, both groupings on the same sample): is a difference more than noise?
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bbe_mobile.evaluate import coco_metrics, prediction_results, subset_ids  # noqa: E402
from bbe_mobile.export.accuracy import AccuracySet, mask_ap, paired_ap_differences, per_image_evaluation  # noqa: E402
from bbe_mobile.letterbox import Letterbox, canvas_side  # noqa: E402
from bbe_mobile.training.data import CocoPersons  # noqa: E402
from bbe_mobile.utils.paths import COCO_MINI_VAL, COCO_MINI_VAL_ANNOTATIONS  # noqa: E402

DEV_SETS = {"multi": ("multi", None), "single": ("single", 300)}  # the dev sets of HELPERS/README
VARIANTS = {  # name -> GrouperConfig overrides of the model's grouper
    "paper": {"mode": "paper"},
    "refine": {"mode": "refine", "refine_rounds": 1},
    "refine x2": {"mode": "refine", "refine_rounds": 2},
    "refine x3": {"mode": "refine", "refine_rounds": 3},
    "refine mean": {"mode": "refine", "refine_rounds": 1, "refine_statistic": "mean"},
    "refine mean x2": {"mode": "refine", "refine_rounds": 2, "refine_statistic": "mean"},
    "paper t_iou 0.4": {"mode": "paper", "t_iou": 0.4},
    "refine t_iou 0.4": {"mode": "refine", "t_iou": 0.4},
    "refine t_iou 0.2": {"mode": "refine", "t_iou": 0.2},
    "paper t_nms 0.3": {"mode": "paper", "t_nms": 0.3},
    "refine t_nms 0.3": {"mode": "refine", "t_nms": 0.3},
    "refine t_nms 0.2": {"mode": "refine", "t_nms": 0.2},
    "refine t_nms 0.5": {"mode": "refine", "t_nms": 0.5},
    "refine x2 t_nms 0.3": {"mode": "refine", "refine_rounds": 2, "t_nms": 0.3},
    "refine t_nms 0.3 t_iou 0.4": {"mode": "refine", "t_nms": 0.3, "t_iou": 0.4},
}
VARIANT_BASE = {"refine_statistic": "median"}  # a variant's fields not named above, whatever the model's default
METRICS = ("AP", "AP50", "AP75", "APL", "AR100")


def cached_maps(predictor, dataset: CocoPersons, ids: list[int], path: Path) -> dict:
    """{image id: (prob, offsets, Letterbox)} from ``path`` if it holds exactly ``ids``, else computed and saved."""
    if path.is_file():
        with np.load(path) as z:
            if list(z["ids"]) == ids:
                return {i: (z[f"p{i}"], z[f"o{i}"], Letterbox(tuple(z[f"hw{i}"]), float(z[f"s{i}"]),
                                                                tuple(z[f"c{i}"]), int(z[f"side{i}"])))
                        for i in ids}
    maps = {i: predictor.forward(dataset.image(i)) for i in ids}
    arrays = {"ids": np.asarray(ids)}
    for i, (prob, offsets, box) in maps.items():
        arrays.update({f"p{i}": prob, f"o{i}": offsets, f"hw{i}": box.image_hw, f"s{i}": box.scale,
                       f"c{i}": box.content_hw, f"side{i}": box.side})
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return maps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--cache", default="/tmp/bbe_grouper_modes_cache", help="directory of the cached maps")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--versus", default=None, help="paired bootstrap of each variant's AP against this one")
    parser.add_argument("--samples", type=int, default=1000, help="bootstrap samples of --versus")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(",")]
    if args.versus is not None and args.versus not in names:
        names.insert(0, args.versus)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")

    from bbe_mobile.export.runtime import load_runner  # noqa: PLC0415 (TensorFlow only when run)
    from bbe_mobile.predictor import Predictor  # noqa: PLC0415

    predictor = Predictor(load_runner(args.model, input_size=canvas_side(args.size)), size=args.size)
    dataset = CocoPersons(str(COCO_MINI_VAL), str(COCO_MINI_VAL_ANNOTATIONS))
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = {}
    for set_name, (subset, limit) in DEV_SETS.items():
        ids = subset_ids(dataset, subset, limit)
        model_tag = Path(args.model).name if args.model else "bundled"
        sets[set_name] = (ids, cached_maps(predictor, dataset, ids, cache / f"{model_tag}_{args.size}_{set_name}.npz"))
    header = " | ".join(f"{s} {m}" for s in DEV_SETS for m in METRICS)
    print(f"model {args.model or 'bundled'}, letterbox {args.size}, base grouper {predictor.grouper}")
    print(f"| grouping | {header} |\n|---|" + "---|" * (len(DEV_SETS) * len(METRICS)))
    per_image = {}  # (variant, set) -> pycocotools' per-image evaluations, for --versus
    for name in names:
        config = dataclasses.replace(predictor.grouper, **{**VARIANT_BASE, **VARIANTS[name]})
        row = []
        for set_name, (ids, maps) in sets.items():
            results = [r for i in ids for r in prediction_results(predictor.group(*maps[i], config), i,
                                                                  dataset.category_id)]
            metrics = coco_metrics(dataset, results, ids)
            row += [f"{metrics[m]:.3f}" for m in METRICS]
            if args.versus is not None:
                per_image[name, set_name] = per_image_evaluation(AccuracySet(dataset, tuple(ids)), results)
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)
    if args.versus is not None:
        print(f"\nAP minus {args.versus}'s, paired bootstrap ({args.samples} samples): difference, std, 5-95 %")
        print("| grouping | " + " | ".join(DEV_SETS) + " |\n|---|" + "---|" * len(DEV_SETS))
        for name in (n for n in names if n != args.versus):
            cells = [paired_difference(per_image[name, s], per_image[args.versus, s], args.samples) for s in DEV_SETS]
            print(f"| {name} | " + " | ".join(f"{d:+.4f} ± {sd:.4f} ({lo:+.4f} to {hi:+.4f})"
                                              for d, sd, lo, hi in cells) + " |", flush=True)


def paired_difference(entries: list, reference: list, samples: int, seed: int = 0) -> tuple[float, ...]:
    """Mask AP of ``entries`` minus that of ``reference`` (per-image evaluations of the same images), the std and
    the 5th and 95th percentiles of the difference over ``samples`` paired bootstrap resamples of the images."""
    differences = paired_ap_differences(entries, reference, samples, seed)
    return (mask_ap(entries) - mask_ap(reference), float(np.std(differences)),
            float(np.percentile(differences, 5)), float(np.percentile(differences, 95)))


if __name__ == "__main__":
    main()
