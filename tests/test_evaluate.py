import numpy as np

from bbe_mobile.evaluate import METRIC_NAMES, coco_metrics, encode_rle, format_table, oracle_results, person_iou
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.training.data import CocoPersons


def test_ground_truth_as_results_scores_ap_one(coco_val):
    ds = CocoPersons(*coco_val)
    ids = [i for i in ds.image_ids if ds.people_count(i) >= 2][:3]
    results = []
    for i in ids:
        masks, crowd = ds.masks(i)
        results += [{"image_id": i, "category_id": ds.category_id, "segmentation": encode_rle(m), "score": 1.0}
                    for m, c in zip(masks, crowd) if not c]
    m = coco_metrics(ds, results, ids)
    assert set(METRIC_NAMES) <= set(m) and m["AP"] > 0.99
    assert "| AP | AP50 |" in format_table(m)


def test_oracle_ap_at_stride_1_is_high(coco_val):
    """The method's ceiling on real crowded images (the README reports the full figure)."""
    ds = CocoPersons(*coco_val)
    ids = [i for i in ds.image_ids if ds.people_count(i) >= 2][:4]
    m = coco_metrics(ds, oracle_results(ds, ids, 1, GrouperConfig()), ids)
    assert m["AP"] > 0.7


def test_person_iou():
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2] = True
    b[:, :2] = True
    assert person_iou(a, b) == 4 / 12
    assert person_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) is None
