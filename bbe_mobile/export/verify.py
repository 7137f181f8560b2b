"""Verify an exported artifact against its Keras reference on real images (``bbe-mobile verify``).

For each image (letterboxed exactly as at inference) both models run; compared are the raw outputs (max/mean
absolute error of ``person_prob``; of ``box_offsets`` on the reference's person cells), the semantic person
mask (probability >= t_fg, at original image resolution, IoU pooled over all images) and the instances after
the grouper (matched one to one by mask IoU with the Hungarian algorithm: mean IoU of the matched pairs, and
how many images have a different instance count). Decisions the artifact's measured error could flip do not count
(``decisions.py``): float noise never fails an artifact. Thresholds depend on the precision (``THRESHOLDS``,
docs/export.md).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.export.decisions import near_decisions
from bbe_mobile.export.images import ExportError, image_files
from bbe_mobile.grouper import group, labels_to_image
from bbe_mobile.letterbox import letterbox_image, read_image
from bbe_mobile.utils.atomic import write_json


class VerifyError(ValueError):
    """Verification could not run (bad arguments, no images, unreadable artifact)."""


@dataclass(frozen=True)
class Thresholds:
    """Limits one artifact must meet; ``None`` = reported only. Errors are upper limits, IoUs lower limits,
    ``count_mismatch_rate`` the largest fraction of images whose instance count may differ."""

    prob_max_abs: float | None
    prob_mean_abs: float
    offsets_mean_abs: float
    mask_iou: float
    instance_iou: float
    count_mismatch_rate: float


THRESHOLDS = {
    "fp32": Thresholds(prob_max_abs=2e-3, prob_mean_abs=2e-4, offsets_mean_abs=2e-3, mask_iou=0.995,
                       instance_iou=0.98, count_mismatch_rate=0.05),
    "fp16": Thresholds(prob_max_abs=0.05, prob_mean_abs=3e-3, offsets_mean_abs=0.02, mask_iou=0.98,
                       instance_iou=0.95, count_mismatch_rate=0.10),
    # weight-only 8-bit (activations stay float)
    "dynamic-int8": Thresholds(prob_max_abs=None, prob_mean_abs=0.02, offsets_mean_abs=0.08, mask_iou=0.95,
                               instance_iou=0.90, count_mismatch_rate=0.25),
    "palette6": Thresholds(prob_max_abs=None, prob_mean_abs=0.02, offsets_mean_abs=0.08, mask_iou=0.95,
                           instance_iou=0.90, count_mismatch_rate=0.25),
    # activations quantised too (TFLite full int8), or 4-bit weights
    "int8": Thresholds(prob_max_abs=None, prob_mean_abs=0.03, offsets_mean_abs=0.12, mask_iou=0.93,
                       instance_iou=0.90, count_mismatch_rate=0.30),
    "palette4": Thresholds(prob_max_abs=None, prob_mean_abs=0.04, offsets_mean_abs=0.15, mask_iou=0.90,
                           instance_iou=0.85, count_mismatch_rate=0.35),
}
THRESHOLDS["int8-selective"] = THRESHOLDS["int8"]  # full int8 with its worst ops in float: the same limits
# Core ML "int8" is weight-only linear quantisation: it gets the weight-only limits.
COREML_INT8 = THRESHOLDS["dynamic-int8"]


def thresholds_for(precision: str, backend: str) -> Thresholds:
    if backend == "coreml" and precision == "int8":
        return COREML_INT8
    if precision not in THRESHOLDS:
        raise VerifyError(f"no verification thresholds for precision {precision!r}")
    return THRESHOLDS[precision]


def select_images(directory: str | os.PathLike, limit: int, flag: str = "--images") -> list[Path]:
    """``limit`` verification images of ``directory``: if a COCO person json sits next to it
    (``instances_person_<dir>.json`` in the parent), half of them (first by file name) have 2+ people and the
    rest 1 person, so instance agreement is really exercised; otherwise the first ``limit`` by file name.
    ``flag``: the calling command's option for the directory, named in the error."""
    if limit <= 0:
        raise VerifyError(f"--num-images must be positive, got {limit}")
    try:
        files = image_files(directory)
    except ExportError as exc:
        raise VerifyError(f"verification images: {exc} (pass {flag} DIR)") from None
    d = Path(directory)
    annotations = d.parent / f"instances_person_{d.name}.json"
    if not annotations.is_file():
        return files[:limit]
    doc = json.loads(annotations.read_text())
    people: dict[int, int] = {}
    for ann in doc.get("annotations", []):
        if not ann.get("iscrowd"):
            people[ann["image_id"]] = people.get(ann["image_id"], 0) + 1
    names = {img["file_name"]: people.get(img["id"], 0) for img in doc.get("images", [])}
    multi = [f for f in files if names.get(f.name, 0) >= 2]
    single = [f for f in files if names.get(f.name, 0) == 1]
    chosen = multi[: limit // 2]
    chosen += single[: limit - len(chosen)]
    if len(chosen) < limit:
        rest = [f for f in files if f not in set(chosen)]
        chosen += rest[: limit - len(chosen)]
    return sorted(chosen)


def _masks(prob, offsets, stride, grouper, box) -> tuple[np.ndarray, np.ndarray]:
    """(semantic person mask, instance label map) at original image resolution."""
    cells = group(prob, offsets, stride, grouper)
    labels = labels_to_image(cells.labels, stride, box.scale, box.image_hw)
    semantic = labels_to_image((prob >= grouper.t_fg).astype(np.int32), stride, box.scale, box.image_hw) > 0
    return semantic, labels


def _instance_ious(ref_labels: np.ndarray, art_labels: np.ndarray) -> tuple[list[float], int, int]:
    """Hungarian matching of instances by mask IoU: (IoUs of matched pairs with IoU > 0, number of reference
    instances, number of artifact instances). Labels need not be contiguous: an instance counts if it has a
    pixel."""
    from scipy.optimize import linear_sum_assignment  # noqa: PLC0415

    n_ref, n_art = int(ref_labels.max()), int(art_labels.max())
    if n_ref == 0 or n_art == 0:
        return [], len(np.unique(ref_labels[ref_labels > 0])), len(np.unique(art_labels[art_labels > 0]))
    # joint histogram of (ref label, art label) gives every intersection at once
    joint = np.bincount(ref_labels.ravel().astype(np.int64) * (n_art + 1) + art_labels.ravel(),
                        minlength=(n_ref + 1) * (n_art + 1)).reshape(n_ref + 1, n_art + 1)
    inter = joint[1:, 1:].astype(np.float64)
    area_ref = joint[1:, :].sum(axis=1)[:, None]
    area_art = joint[:, 1:].sum(axis=0)[None, :]
    iou = inter / np.maximum(area_ref + area_art - inter, 1)
    rows, cols = linear_sum_assignment(-iou)
    return ([float(iou[r, c]) for r, c in zip(rows, cols) if iou[r, c] > 0], int((area_ref > 0).sum()),
            int((area_art > 0).sum()))


def compare_outputs(p_ref, o_ref, p_art, o_art, box, grouper) -> dict:
    """Figures of one image from both models' outputs (``p_*`` (H, W), ``o_*`` (H, W, 4)) and its letterbox
    ``box``. Cells whose person decision the artifact's measured error could flip are left out of both person
    masks, those whose instance it could change out of both instance masks (``decisions.near_decisions``); an
    instance left without a pixel is not counted."""
    err = np.abs(p_art - p_ref)
    person = p_ref >= grouper.t_fg
    oerr = np.abs(o_art - o_ref)[person] if person.any() else np.abs(o_art - o_ref)
    stride = box.side / p_ref.shape[0]
    near = near_decisions(p_ref, o_ref, p_art, o_art, stride, grouper)
    counted = labels_to_image((~near.cells).astype(np.int32), stride, box.scale, box.image_hw) > 0
    person_counted = labels_to_image((~near.person_cells).astype(np.int32), stride, box.scale, box.image_hw) > 0
    sem_ref, lab_ref = _masks(p_ref, o_ref, stride, grouper, box)
    sem_art, lab_art = _masks(p_art, o_art, stride, grouper, box)
    ious, n_ref, n_art = _instance_ious(np.where(counted, lab_ref, 0), np.where(counted, lab_art, 0))
    return {"prob_max_abs": float(err.max()), "prob_sum_abs": float(err.sum()), "prob_n": err.size,
            "offsets_max_abs": float(oerr.max()), "offsets_sum_abs": float(oerr.sum()), "offsets_n": oerr.size,
            "inter": int((sem_ref & sem_art & person_counted).sum()),
            "union": int(((sem_ref | sem_art) & person_counted).sum()),
            "instances_reference": int(lab_ref.max()), "instances_artifact": int(lab_art.max()),
            "counted_reference": n_ref, "counted_artifact": n_art, "matched_ious": ious,
            "near_cells": int(near.cells.sum()), "near_instances": near.removable + near.addable,
            "prob_error": near.prob_error, "iou_error": near.iou_error}


def compare(artifact_runner, reference_runner, files: list[Path], grouper=None) -> dict:
    """Run both runners on ``files``; the figures of the module docstring plus per-image rows."""
    grouper = grouper or reference_runner.grouper
    size = artifact_runner.input_size
    if reference_runner.input_size != size:
        raise VerifyError(f"reference input side {reference_runner.input_size} != artifact {size}")
    rows = []
    art_seconds = 0.0
    for path in files:
        canvas, box = letterbox_image(read_image(str(path)), size)
        p_ref, o_ref = reference_runner.run(canvas)
        start = time.perf_counter()
        p_art, o_art = artifact_runner.run(canvas)
        art_seconds += time.perf_counter() - start
        if p_art.shape != p_ref.shape or o_art.shape != o_ref.shape:
            raise VerifyError(f"output shapes differ: artifact {p_art.shape}/{o_art.shape}, "
                              f"reference {p_ref.shape}/{o_ref.shape}")
        rows.append({"image": path.name, **compare_outputs(p_ref, o_ref, p_art, o_art, box, grouper)})
    return summarise(rows, 1000 * art_seconds / max(len(files), 1))


def summarise(rows: list[dict], artifact_ms: float) -> dict:
    """The report's figures from the per-image rows of ``compare_outputs`` (each with its ``image`` name)."""
    def total(key):
        return sum(r[key] for r in rows)

    matched = [v for r in rows for v in r["matched_ious"]]
    union = total("union")
    return {
        "n_images": len(rows),
        "prob_max_abs": max((r["prob_max_abs"] for r in rows), default=0.0),
        "prob_mean_abs": total("prob_sum_abs") / max(total("prob_n"), 1),
        "offsets_max_abs": max((r["offsets_max_abs"] for r in rows), default=0.0),
        "offsets_mean_abs": total("offsets_sum_abs") / max(total("offsets_n"), 1),
        "mask_iou": total("inter") / union if union else None,
        "instance_iou": float(np.mean(matched)) if matched else None,
        "matched_instances": len(matched),
        "instances_reference": total("instances_reference"), "instances_artifact": total("instances_artifact"),
        "instances_compared_reference": total("counted_reference"),
        "instances_compared_artifact": total("counted_artifact"),
        "count_abs_diff": sum(abs(r["counted_reference"] - r["counted_artifact"]) for r in rows),
        "count_mismatch_rate": (sum(r["counted_reference"] != r["counted_artifact"] for r in rows) / len(rows)
                                if rows else 0.0),
        "cells_near_decision": total("near_cells"),
        "instances_near_decision": total("near_instances"),
        "decision_prob_error": max((r["prob_error"] for r in rows), default=0.0),
        "decision_iou_error": max((r["iou_error"] for r in rows), default=0.0),
        "artifact_ms_per_image": artifact_ms,
        "images": [_image_row(r) for r in rows],
    }


def _image_row(row: dict) -> dict:
    union = row["union"]
    return {"image": row["image"], "prob_max_abs": row["prob_max_abs"],
            "mask_iou": row["inter"] / union if union else None, "instances_reference": row["instances_reference"],
            "instances_artifact": row["instances_artifact"], "cells_near_decision": row["near_cells"],
            "instances_near_decision": row["near_instances"], "matched_ious": [round(v, 4) for v in row["matched_ious"]]}


def checks(metrics: dict, limits: Thresholds) -> list[dict]:
    """One row per threshold: name, value, limit, ok. A figure that is undefined (no person anywhere, no
    instances in either model) passes and says so."""
    out = []
    for name in ("prob_max_abs", "prob_mean_abs", "offsets_mean_abs", "count_mismatch_rate"):
        limit = getattr(limits, name)
        if limit is not None:
            out.append({"name": name, "value": metrics[name], "limit": f"<= {limit:g}", "ok": metrics[name] <= limit})
    for name in ("mask_iou", "instance_iou"):
        limit = getattr(limits, name)
        value = metrics[name]
        compared = metrics["instances_compared_reference"] + metrics["instances_compared_artifact"]
        if value is None and name == "instance_iou" and compared:
            out.append({"name": name, "value": None, "limit": f">= {limit:g}", "ok": False,
                        "note": "no instance matched"})
        elif value is None and name == "instance_iou" and metrics["instances_reference"]:
            out.append({"name": name, "value": None, "limit": f">= {limit:g}", "ok": True,
                        "note": "undefined (every instance sits on a decision the error could flip)"})
        elif value is None:
            out.append({"name": name, "value": None, "limit": f">= {limit:g}", "ok": True,
                        "note": "undefined (no person in either output)"})
        else:
            out.append({"name": name, "value": value, "limit": f">= {limit:g}", "ok": value >= limit})
    return out


def verify_runners(artifact_runner, reference_runner, files: list[Path], precision: str, backend: str,
                   artifact_label: str, reference_label: str, accuracy_images=None, cache: dict | None = None) -> dict:
    """The report of ``artifact_runner`` against ``reference_runner``: map-level figures on ``files`` and, with
    ``accuracy_images`` (``accuracy.AccuracySet``), the mask AP of both (``cache``: reference AP evaluations kept
    between calls)."""
    from bbe_mobile.export import accuracy  # noqa: PLC0415

    limits = thresholds_for(precision, backend)
    start = time.perf_counter()
    metrics = compare(artifact_runner, reference_runner, files)
    rows = checks(metrics, limits)
    ap = None
    if accuracy_images is not None:
        ap = accuracy.compare_accuracy(artifact_runner, reference_runner, reference_runner.grouper, accuracy_images,
                                       precision, cache)
        if ap["gates"]:
            rows.append({"name": "ap_drop", "value": ap["ap_drop"], "limit": f"<= {ap['limit']:g}",
                         "ok": ap["ap_drop"] <= ap["limit"]})
    passed = all(r["ok"] for r in rows)
    return {"artifact": artifact_label, "reference": reference_label, "backend": backend, "precision": precision,
            "status": "passed" if passed else "failed", "message": "" if passed else failure_summary({"checks": rows}),
            "thresholds": asdict(limits), "checks": rows, "metrics": metrics, "accuracy": ap,
            "image_dir": str(files[0].parent) if files else None, "seconds": time.perf_counter() - start}


def _skipped(artifact_label: str, reference_label: str, precision: str, backend: str, message: str) -> dict:
    return {"artifact": artifact_label, "reference": reference_label, "backend": backend, "precision": precision,
            "status": "skipped", "message": message, "checks": [], "metrics": None}


def verify_runner_path(artifact_path, bundle, files: list[Path], precision: str | None = None,
                       artifact_label: str | None = None, accuracy_images=None, cache: dict | None = None) -> dict:
    """Verify the artifact at ``artifact_path`` against the Keras ``bundle`` (rebuilt at the artifact's side);
    ``accuracy_images``/``cache``: as ``verify_runners``."""
    from bbe_mobile.export.runtime import CoreMLUnavailable, KerasRunner, load_runner  # noqa: PLC0415

    runner = load_runner(str(artifact_path))
    if runner.metadata["model_name"] != bundle.name:
        raise VerifyError(f"{artifact_path} was exported from model {runner.metadata['model_name']!r}, the reference "
                          f"is {bundle.name!r}: pass the right --reference")
    precision = precision or runner.precision
    label = artifact_label or str(artifact_path)
    reference = KerasRunner(bundle.resized(runner.input_size))
    try:
        return verify_runners(runner, reference, files, precision, runner.backend, label, bundle.name,
                              accuracy_images, cache)
    except CoreMLUnavailable as exc:
        return _skipped(label, bundle.name, precision, runner.backend, str(exc))


def verify(artifact: str, reference: str | None, images: str, num_images: int, num_accuracy: int = 0) -> dict:
    """``bbe-mobile verify``: artifact path, reference bundle (None = bundled default), image directory;
    ``num_accuracy`` labelled held-out images of it for the mask AP (0: none)."""
    from bbe_mobile.export.accuracy import accuracy_set  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415

    if not Path(artifact).exists():
        raise VerifyError(f"artifact not found: {artifact}")
    files = select_images(images, num_images)
    accuracy_images = accuracy_set(images, num_accuracy)
    bundle = load_bundle(reference)
    return verify_runner_path(artifact, bundle, files, accuracy_images=accuracy_images)


def failure_summary(report: dict) -> str:
    bad = [r for r in report["checks"] if not r["ok"]]
    return ", ".join(f"{r['name']} {_fmt(r['value'])} (limit {r['limit']})" for r in bad) or "ok"


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def format_report(report: dict) -> str:
    lines = [f"{report['artifact']}  vs  {report['reference']}  ({report['backend']} {report['precision']})"]
    if report["status"] == "skipped":
        lines.append(f"SKIPPED: {report['message']}")
        return "\n".join(lines)
    m = report["metrics"]
    lines.append(f"images: {m['n_images']} from {report['image_dir']}; instances reference {m['instances_reference']}"
                 f", artifact {m['instances_artifact']}, matched {m['matched_instances']}; "
                 f"artifact {m['artifact_ms_per_image']:.1f} ms/image")
    for r in report["checks"]:
        note = f"  ({r['note']})" if r.get("note") else ""
        lines.append(f"  {'ok  ' if r['ok'] else 'FAIL'}  {r['name']:<20} {_fmt(r['value']):>10}  {r['limit']}{note}")
    lines.append(f"  info  prob_max_abs {_fmt(m['prob_max_abs'])}, offsets_max_abs {_fmt(m['offsets_max_abs'])}, "
                 f"count_abs_diff {m['count_abs_diff']}")
    lines.append(f"  info  decisions the error could flip (prob error {_fmt(m['decision_prob_error'])}, IoU error "
                 f"{_fmt(m['decision_iou_error'])}): {m['cells_near_decision']} cells not counted, "
                 f"{m['instances_near_decision']} instances could vanish or appear")
    ap = report.get("accuracy")
    if ap:
        lines.append(f"  info  mask AP on {ap['images']} held-out labelled images ({ap['multi_person_images']} "
                     f"multi-person): Keras {ap['ap_reference']:.4f}, artifact {ap['ap_artifact']:.4f}, drop "
                     f"{ap['ap_drop']:.4f} (bootstrap std {ap['ap_drop_std']:.4f}, 90 % {ap['ap_drop_p05']:.4f} to "
                     f"{ap['ap_drop_p95']:.4f}); {ap['gate']}")
    else:
        lines.append("  info  mask AP not measured (no COCO json beside the images, or --num-accuracy 0)")
    lines.append("PASSED" if report["status"] == "passed" else f"FAILED: {report['message']}")
    return "\n".join(lines)


def write_report(report: dict, path: str | os.PathLike) -> None:
    """Write ``report`` as JSON to ``path`` atomically."""
    write_json(path, report, indent=1)
