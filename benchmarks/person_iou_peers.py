"""Semantic person IoU of the bundled BBE model and MediaPipe's selfie segmenter on the same single-person
val images (the first N in json order: held out of training), in one run, with forward latency.

Usage: python benchmarks/person_iou_peers.py [--model DIR] [--limit 300] [--threads 2] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bbe_mobile.bench.peers import PeerSegmenter, time_calls  # noqa: E402
from bbe_mobile.bench.timing import summarize  # noqa: E402
from bbe_mobile.evaluate import person_iou  # noqa: E402
from bbe_mobile.export.runtime import load_runner  # noqa: E402
from bbe_mobile.letterbox import letterbox_image  # noqa: E402
from bbe_mobile.predictor import Predictor  # noqa: E402
from bbe_mobile.training.data import CocoPersons  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    coco = SHARED / "data" / "coco-person-mini"
    val = CocoPersons(str(coco / "val"), str(coco / "instances_person_val.json"))
    ids = [img["id"] for img in val.coco.dataset["images"] if val.people_count(img["id"]) == 1][: args.limit]
    predictor = Predictor(load_runner(args.model))
    peer = PeerSegmenter(str(SHARED / "peers" / "mediapipe" / "selfie_segmentation.tflite"), "mediapipe",
                         args.threads)
    ious = {"bbe": [], "mediapipe": []}
    pooled = {k: [0, 0] for k in ious}
    for image_id in ids:
        image = val.image(image_id)
        truth = val.masks(image_id)[0].any(axis=0)
        for key, mask in (("bbe", predictor.predict(image).person_mask(predictor.grouper.t_fg)),
                          ("mediapipe", peer.person_mask(image))):
            ious[key].append(person_iou(mask, truth))
            pooled[key][0] += int(np.logical_and(mask, truth).sum())
            pooled[key][1] += int(np.logical_or(mask, truth).sum())
    sample = val.image(ids[0])
    canvas, _ = letterbox_image(sample, predictor.size)
    tensor = peer.prepare(sample)
    latency = {"bbe": summarize(time_calls(lambda: predictor.runner.run(canvas), 30)),
               "mediapipe": summarize(time_calls(lambda: peer.forward(tensor), 30))}
    report = {"images": len(ids), "threads": args.threads, "model": predictor.runner.name,
              "input": {"bbe": predictor.size, "mediapipe": list(peer.input_hw)}}
    print(f"{len(ids)} single-person val images (json order), {args.threads} threads")
    print(f"{'model':<28} {'mean IoU':>9} {'pooled IoU':>11} {'forward ms':>11}")
    for key, label in (("bbe", f"BBE {predictor.runner.name} @{predictor.size}"),
                       ("mediapipe", "MediaPipe selfie @256 (LiteRT)")):
        report[key] = {"mean_iou": float(np.mean(ious[key])), "pooled_iou": pooled[key][0] / pooled[key][1],
                       "forward_ms": latency[key]["median_ms"]}
        print(f"{label:<28} {report[key]['mean_iou']:>9.3f} {report[key]['pooled_iou']:>11.3f} "
              f"{report[key]['forward_ms']:>11.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
