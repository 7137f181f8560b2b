"""COCO evaluation with the paper's protocol (section 4.5): single scale, larger side resized to ``size``,
at most 20 people per image; mask AP/AR by pycocotools, plus semantic person IoU."""
from __future__ import annotations

import contextlib
import io

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from bbe_mobile.grouper import GrouperConfig, boxes_to_image, group, labels_to_image
from bbe_mobile.letterbox import Letterbox
from bbe_mobile.modeling.targets import build_targets
from bbe_mobile.predictor import Prediction, Predictor
from bbe_mobile.training.data import CocoPersons

METRIC_NAMES = ("AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR100", "ARS", "ARM", "ARL")


def encode_rle(mask: np.ndarray) -> dict:
    """Bool mask (h, w) -> COCO RLE with ``counts`` as a str (json-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def prediction_results(prediction: Prediction, image_id: int, category_id: int) -> list[dict]:
    """COCO results entries (segmentation RLE, bbox xywh, score) for one image."""
    out = []
    for k, mask in enumerate(prediction.masks()):
        x1, y1, x2, y2 = (float(v) for v in prediction.boxes[k])
        out.append({"image_id": int(image_id), "category_id": int(category_id), "segmentation": encode_rle(mask),
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(prediction.scores[k])})
    return out


def coco_metrics(dataset: CocoPersons, results: list[dict], image_ids: list[int]) -> dict:
    """Mask AP/AR (pycocotools, person category, the given images) of COCO results -> {METRIC_NAMES: value}."""
    if not results:
        return {name: 0.0 for name in METRIC_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        detections = dataset.coco.loadRes(results)
        evaluator = COCOeval(dataset.coco, detections, iouType="segm")
        evaluator.params.imgIds = list(image_ids)
        evaluator.params.catIds = [dataset.category_id]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) for name, v in zip(METRIC_NAMES, evaluator.stats)}


def subset_ids(dataset: CocoPersons, subset: str = "all", limit: int | None = None) -> list[int]:
    """Image ids to score, in json order: ``all``, ``multi`` (2+ people) or ``single`` (exactly one person), then
    the first ``limit``. The dev evaluation sets are ``multi`` (the 32 held-out val images) and ``single`` with
    limit 300 (see ``data.split_val``)."""
    if subset not in ("all", "multi", "single"):
        raise ValueError(f"subset must be all, multi or single, got {subset!r}")
    ids = [img["id"] for img in dataset.coco.dataset["images"]]
    if subset != "all":
        ids = [i for i in ids if (dataset.people_count(i) >= 2) == (subset == "multi") and dataset.people_count(i)]
    return ids[:limit] if limit else ids


def person_iou(predicted: np.ndarray, truth: np.ndarray) -> float | None:
    """IoU of two bool masks; None when both are empty."""
    union = np.logical_or(predicted, truth).sum()
    return float(np.logical_and(predicted, truth).sum() / union) if union else None


def evaluate(predictor: Predictor, dataset: CocoPersons, image_ids: list[int] | None = None,
             progress: bool = True) -> tuple[list[dict], dict]:
    """Run ``predictor`` on the images and score them. Returns (COCO results, metrics): the 12 figures of
    METRIC_NAMES plus ``person_iou`` (mean per-image semantic IoU over images with people),
    ``person_iou_pooled`` and ``images``."""
    from tqdm import tqdm  # noqa: PLC0415

    image_ids = list(dataset.image_ids if image_ids is None else image_ids)
    results, ious = [], []
    inter = union = 0
    for image_id in tqdm(image_ids, disable=not progress, unit="img", desc="eval"):
        prediction = predictor.predict(dataset.image(image_id))
        results.extend(prediction_results(prediction, image_id, dataset.category_id))
        masks, _ = dataset.masks(image_id)
        if len(masks):
            truth = masks.any(axis=0)
            predicted = prediction.person_mask(predictor.grouper.t_fg)
            inter += int(np.logical_and(predicted, truth).sum())
            union += int(np.logical_or(predicted, truth).sum())
            ious.append(person_iou(predicted, truth))
    metrics = coco_metrics(dataset, results, image_ids)
    metrics["person_iou"] = float(np.mean(ious)) if ious else 0.0
    metrics["person_iou_pooled"] = inter / union if union else 0.0
    metrics["images"] = len(image_ids)
    return results, metrics


def format_table(metrics: dict) -> str:
    """The paper's 12-column table (Markdown) for one row of metrics."""
    header = "| " + " | ".join(METRIC_NAMES) + " |"
    rule = "|" + "|".join("-------" for _ in METRIC_NAMES) + "|"
    row = "| " + " | ".join(f"{metrics[name]:.3f}" for name in METRIC_NAMES) + " |"
    return "\n".join([header, rule, row])


def oracle_results(dataset: CocoPersons, image_ids: list[int], stride: int, grouper: GrouperConfig) -> list[dict]:
    """The method's ceiling: targets built from the ground truth at ``stride`` (original image pixels) turned
    into perfect maps (probability 1 on person cells, exact offsets) and grouped. Returns COCO results."""
    results = []
    for image_id in image_ids:
        masks, crowd = dataset.masks(image_id)  # (N, h0, w0), also for N = 0
        h0, w0 = masks.shape[1:]
        targets = build_targets(masks, crowd, stride)
        prob = (targets.person >= 0.5).astype(np.float32)
        cells = group(prob, targets.offsets, stride, grouper)
        box = Letterbox((h0, w0), 1.0, (h0, w0), max(h0, w0))
        prediction = Prediction(labels_to_image(cells.labels, stride, 1.0, (h0, w0)),
                                boxes_to_image(cells.boxes, 1.0, (h0, w0)), cells.scores, prob, cells, box)
        results.extend(prediction_results(prediction, image_id, dataset.category_id))
    return results
