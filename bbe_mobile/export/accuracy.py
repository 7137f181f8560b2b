"""Accuracy of an artifact against its Keras model: person mask AP (pycocotools' definition) of both on the
labelled held-out images beside the verification images, the drop and its bootstrap spread
(docs/export.md, "Accuracy gate").

The images: the COCO json ``instances_person_<dir>.json`` beside the verification directory, restricted to the
images no model trained on (``training.data.split_val``: every 2+ person image and the first 300 single-person
ones); the first ``limit`` of them in json order, the multi-person ones first (all of them for ``limit`` 100).
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.evaluate import prediction_results
from bbe_mobile.predictor import Predictor
from bbe_mobile.training.data import CocoPersons, split_val

AP_DROP_LIMIT = 0.01  # a gated artifact's mask AP may be at most this much below the Keras model's
GATED_PRECISIONS = ("fp32", "fp16")  # 8-bit variants: reported only (docs/export.md)
MIN_GATING_IMAGES = 100  # fewer labelled images: the AP is reported, it does not gate
BOOTSTRAP_SAMPLES = 500
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class AccuracySet:
    """Labelled images for the accuracy check: the dataset and the chosen held-out image ids."""

    dataset: CocoPersons
    image_ids: tuple[int, ...]


def accuracy_set(directory: str | Path, limit: int) -> AccuracySet | None:
    """The first ``limit`` held-out labelled images of ``directory`` (multi-person ones first), or None when no
    COCO json sits beside it or ``limit`` is 0."""
    d = Path(directory)
    annotations = d.parent / f"instances_person_{d.name}.json"
    if limit <= 0 or not annotations.is_file():
        return None
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints while indexing
        dataset = CocoPersons(str(d), str(annotations))
    held = split_val(dataset)[1]
    multi = [i for i in held if dataset.people_count(i) >= 2]
    single = [i for i in held if dataset.people_count(i) == 1]
    n_multi = min(len(multi), max(limit // 2, limit - len(single)))
    ids = multi[:n_multi] + single[: limit - n_multi]
    dataset.image_ids = ids
    dataset.check_files()
    return AccuracySet(dataset, tuple(ids))


def predict_results(runner, grouper, images: AccuracySet) -> list[dict]:
    """COCO results of ``runner`` (grouped with ``grouper``) on every image of ``images``."""
    predictor = Predictor(runner, grouper, runner.input_size)
    results = []
    for image_id in images.image_ids:
        prediction = predictor.predict(images.dataset.image(image_id))
        results += prediction_results(prediction, image_id, images.dataset.category_id)
    return results


def per_image_evaluation(images: AccuracySet, results: list[dict]) -> list[dict | None]:
    """pycocotools' per-image matching (segm, person, area "all", up to 100 detections) of ``results``, one
    entry per image of ``images`` (None: no ground truth and no detection)."""
    from pycocotools.cocoeval import COCOeval  # noqa: PLC0415

    coco = images.dataset.coco
    with contextlib.redirect_stdout(io.StringIO()):
        detections = coco.loadRes(results) if results else coco.loadRes(np.zeros((0, 7)))
        evaluator = COCOeval(coco, detections, iouType="segm")
        evaluator.params.imgIds = list(images.image_ids)
        evaluator.params.catIds = [images.dataset.category_id]
        evaluator.evaluate()
    position = {image_id: k for k, image_id in enumerate(evaluator.params.imgIds)}  # sorted, unique; area "all" first
    return [evaluator.evalImgs[position[image_id]] for image_id in images.image_ids]


def mask_ap(entries: list[dict | None]) -> float:
    """COCO mask AP (mean precision over IoU 0.50:0.95 and 101 recall points, as ``COCOeval.accumulate`` and
    ``summarize`` compute it) of the per-image evaluations ``entries`` (repeats allowed: bootstrap samples)."""
    entries = [e for e in entries if e is not None]
    gt_ignore = np.concatenate([e["gtIgnore"] for e in entries]) if entries else np.zeros(0)
    positives = int(np.count_nonzero(gt_ignore == 0))
    if positives == 0:
        return -1.0
    scores = np.concatenate([e["dtScores"][:100] for e in entries])
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["dtMatches"][:, :100] for e in entries], axis=1)[:, order] != 0
    ignored = np.concatenate([e["dtIgnore"][:, :100] for e in entries], axis=1)[:, order].astype(bool)
    tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
    precisions = np.zeros((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)))
    for t in range(len(IOU_THRESHOLDS)):
        recall = tp[t] / positives
        precision = tp[t] / (fp[t] + tp[t] + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope, right to left
        at = np.searchsorted(recall, RECALL_THRESHOLDS, side="left")
        valid = at < len(precision)
        precisions[t, valid] = precision[at[valid]]
    return float(precisions.mean())


def paired_ap_differences(entries: list, reference: list, samples: int, seed: int = 0) -> np.ndarray:
    """Mask AP of ``entries`` minus that of ``reference`` (per-image evaluations of the same images) on each of
    ``samples`` paired bootstrap resamples (the images drawn with replacement, the same draw for both): (samples,)."""
    rng = np.random.default_rng(seed)
    n = len(entries)
    differences = []
    for _ in range(samples):
        sample = rng.integers(0, n, n)
        differences.append(mask_ap([entries[k] for k in sample]) - mask_ap([reference[k] for k in sample]))
    return np.asarray(differences)


def compare_accuracy(artifact_runner, reference_runner, grouper, images: AccuracySet, precision: str,
                     cache: dict | None = None, seed: int = 0) -> dict:
    """Mask AP of both runners on ``images``, the drop (reference - artifact), its bootstrap spread (images
    resampled with replacement, ``BOOTSTRAP_SAMPLES`` times, both models on the same sample) and whether it
    gates ``precision``. ``cache``: keeps the reference's evaluation between calls (one convert run)."""
    key = ("reference", reference_runner.input_size, images.image_ids)
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = per_image_evaluation(images, predict_results(reference_runner, grouper, images))
    reference = cache[key]
    artifact = per_image_evaluation(images, predict_results(artifact_runner, grouper, images))
    n = len(images.image_ids)
    drops = paired_ap_differences(reference, artifact, BOOTSTRAP_SAMPLES, seed)
    ap_reference, ap_artifact = mask_ap(reference), mask_ap(artifact)
    gates = precision in GATED_PRECISIONS and n >= MIN_GATING_IMAGES
    reason = ("gates this precision" if gates else
              f"reported only: fewer than {MIN_GATING_IMAGES} images" if precision in GATED_PRECISIONS else
              "reported only: 8-bit variants are gated by the map-level bounds (docs/export.md)")
    return {"images": n, "multi_person_images": sum(images.dataset.people_count(i) >= 2 for i in images.image_ids),
            "ap_reference": ap_reference, "ap_artifact": ap_artifact, "ap_drop": ap_reference - ap_artifact,
            "ap_drop_std": float(np.std(drops)), "ap_drop_p05": float(np.percentile(drops, 5)),
            "ap_drop_p95": float(np.percentile(drops, 95)), "bootstrap_samples": BOOTSTRAP_SAMPLES,
            "limit": AP_DROP_LIMIT, "gates": gates, "gate": reason}
