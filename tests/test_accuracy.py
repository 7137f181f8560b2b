"""The accuracy gate (bbe_mobile/export/accuracy.py): held-out labelled images, mask AP as pycocotools computes
it, the bootstrap spread of the drop, and which precisions it gates. Tiny model, a few real images."""
from __future__ import annotations

import numpy as np
import pytest

from bbe_mobile.evaluate import coco_metrics
from bbe_mobile.export import accuracy, verify
from bbe_mobile.export.runtime import KerasRunner
from bbe_mobile.modeling.bundle import load_bundle
from bbe_mobile.training.data import split_val
from test_export import SHARED, needs_shared, write_images

pytestmark = needs_shared


@pytest.fixture(scope="module")
def images():
    return accuracy.accuracy_set(SHARED / "val", 6)


@pytest.fixture(scope="module")
def keras(tiny_bundle):
    return KerasRunner(load_bundle(tiny_bundle))


def test_images_are_held_out_and_include_multi_person_ones(images):
    held = set(split_val(images.dataset)[1])
    assert len(images.image_ids) == 6 and set(images.image_ids) <= held
    people = [images.dataset.people_count(i) for i in images.image_ids]
    assert min(people[:3]) >= 2 and people[3:] == [1, 1, 1]
    hundred = accuracy.accuracy_set(SHARED / "val", 100)
    assert sum(hundred.dataset.people_count(i) >= 2 for i in hundred.image_ids) == 32  # every multi-person dev image
    assert accuracy.accuracy_set(SHARED / "val", 0) is None


def test_mask_ap_is_pycocotools_ap_and_a_model_against_itself_drops_nothing(images, keras):
    results = accuracy.predict_results(keras, keras.grouper, images)
    assert results, "the decisive tiny model should find people"
    entries = accuracy.per_image_evaluation(images, results)
    assert accuracy.mask_ap(entries) == pytest.approx(coco_metrics(images.dataset, results, list(images.image_ids))["AP"],
                                                      abs=1e-12)
    report = accuracy.compare_accuracy(keras, keras, keras.grouper, images, "fp32")
    assert report["ap_drop"] == 0 and report["ap_drop_std"] == 0 and report["images"] == 6
    assert report["multi_person_images"] == 3 and not report["gates"] and "fewer than 100" in report["gate"]


def truth_results(images, keep=1.0) -> list[dict]:
    """The ground truth as COCO results (score 1): AP 1; ``keep``: the fraction of people kept (a worse
    "artifact")."""
    anns = [a for a in images.dataset.coco.loadAnns(images.dataset.coco.getAnnIds(imgIds=list(images.image_ids)))
            if not a["iscrowd"]]
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"],
             "score": 1.0 - 0.001 * k} for k, a in enumerate(anns[: int(len(anns) * keep)])]


def test_the_gate_applies_to_fp32_and_fp16_only(images, keras, monkeypatch, tmp_path):
    """Reference: the ground truth; artifact: 60 % of it. fp32 fails on ap_drop; int8 reports the same drop and
    passes."""
    monkeypatch.setattr(accuracy, "MIN_GATING_IMAGES", 6)
    calls = []
    monkeypatch.setattr(accuracy, "predict_results",
                        lambda runner, grouper, imgs: calls.append(1) or truth_results(imgs, 1.0 if len(calls) == 1
                                                                                       else 0.6))
    files = sorted(write_images(tmp_path, 2).iterdir())
    report = verify.verify_runners(keras, keras, files, "fp32", "tflite", "a", "b", images)
    ap = report["accuracy"]
    assert ap["gates"] and ap["ap_reference"] > 0.99 and ap["ap_drop"] > 0.2, ap
    assert ap["ap_drop_std"] > 0 and ap["ap_drop_p05"] <= ap["ap_drop"] <= ap["ap_drop_p95"]
    assert report["status"] == "failed" and report["message"].startswith("ap_drop"), report["message"]
    assert "mask AP on 6 held-out labelled images (3 multi-person)" in verify.format_report(report)
    calls.clear()
    report = verify.verify_runners(keras, keras, files, "int8", "tflite", "a", "b", images)
    assert report["status"] == "passed" and not report["accuracy"]["gates"]
    assert report["accuracy"]["ap_drop"] > 0.2 and "8-bit" in report["accuracy"]["gate"]
