import numpy as np
import pytest

from bbe_mobile.boxes import anchor_centers, decode_boxes
from bbe_mobile.grouper import GrouperConfig, group
from hypothesis import given, settings
from hypothesis import strategies as st

from bbe_mobile.modeling.targets import annotation_masks, build_targets, instance_balanced_weights, mask_boxes


def test_box_is_the_tight_pixel_box_of_the_mask():
    masks = np.zeros((1, 20, 30), np.uint8)
    masks[0, 5:9, 10:21] = 1
    assert mask_boxes(masks).tolist() == [[10, 5, 21, 9]]


def test_stride_1_offsets_decode_to_the_instance_box():
    masks = np.zeros((1, 40, 40), np.uint8)
    masks[0, 10:30, 5:15] = 1
    t = build_targets(masks, np.array([False]), 1)
    cx, cy = anchor_centers(40, 40, 1)
    decoded = decode_boxes(t.offsets, cx, cy)[t.weights > 0]
    np.testing.assert_allclose(decoded, np.broadcast_to([5, 10, 15, 30], decoded.shape), atol=1e-4)
    assert t.person.sum() == 200 and t.weights.sum() == 200


def test_crowd_counts_as_person_without_box_targets():
    masks = np.zeros((1, 8, 8), np.uint8)
    masks[0, :4, :4] = 1
    t = build_targets(masks, np.array([True]), 4)
    assert t.person[0, 0] == 1.0 and t.weights.sum() == 0 and t.owner[0, 0] == 1


def test_overlap_rule_most_coverage_then_smaller_mask_then_first():
    masks = np.zeros((3, 4, 12), np.uint8)
    masks[0, :, 0:12] = 1          # large person covering everything
    masks[1, :, 0:3] = 1           # covers 3/4 of cell 0: less than masks[0] (4/4) -> cell 0 goes to 0
    masks[2, :, 4:8] = 1           # covers cell 1 fully, like masks[0]: tie -> smaller mask (2) wins
    t = build_targets(masks, np.zeros(3, bool), 4)
    assert t.owner[0].tolist() == [1, 3, 1]


def test_soft_person_fraction_and_threshold():
    masks = np.zeros((1, 4, 8), np.uint8)
    masks[0, :2, :4] = 1  # half of cell 0
    masks[0, :1, 4:8] = 1  # a quarter of cell 1
    t = build_targets(masks, np.array([False]), 4)
    assert t.person[0].tolist() == [0.5, 0.25]
    assert t.weights[0].tolist() == [1.0, 0.0]


def test_no_annotation_gives_empty_targets():
    t = build_targets(np.zeros((0, 8, 12), np.uint8), np.zeros(0, bool), 4)
    assert t.person.shape == (2, 3) and not t.person.any() and t.offsets.shape == (2, 3, 4)


def test_polygon_and_rle_annotations_decode():
    poly = {"segmentation": [[1, 1, 6, 1, 6, 6, 1, 6]], "iscrowd": 0}
    from pycocotools import mask as mask_utils
    square = np.zeros((10, 10), np.uint8, order="F")
    square[2:5, 2:5] = 1
    rle = mask_utils.encode(square)
    rle["counts"] = rle["counts"].decode()
    masks, crowd = annotation_masks([poly, {"segmentation": rle, "iscrowd": 1}], 10, 10)
    assert masks[0].sum() > 20 and masks[1].sum() == 9 and crowd.tolist() == [False, True]


def test_perfect_maps_from_real_annotations_regroup_into_the_instances(coco_val):
    """Targets at stride 1 -> perfect maps -> grouper gives back every well-separated instance."""
    from bbe_mobile.training.data import CocoPersons

    ds = CocoPersons(*coco_val)
    image_id = next(i for i in ds.image_ids if ds.people_count(i) >= 2)
    masks, crowd = ds.masks(image_id)
    t = build_targets(masks, crowd, 1)
    prob = (t.person >= 0.5).astype(np.float32)
    r = group(prob, t.offsets, 1.0, GrouperConfig(t_iou=0.5))
    matched = 0
    for k in np.flatnonzero(~crowd):
        own = t.owner == k + 1
        if own.sum() < 100:
            continue
        labels, counts = np.unique(r.labels[own], return_counts=True)
        matched += counts.max() / own.sum() > 0.9 and labels[counts.argmax()] > 0
    assert matched >= 2


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5))
def test_instance_balanced_weights_give_every_person_weight_one(seed, people):
    rng = np.random.default_rng(seed)
    masks = np.zeros((people, 40, 40), np.uint8)
    for k in range(people):
        y, x = rng.integers(0, 36, 2)
        h, w = rng.integers(1, 41 - y), rng.integers(1, 41 - x)
        masks[k, y:y + h, x:x + w] = 1
    crowd = rng.random(people) < 0.2
    t = build_targets(masks, crowd, 4)
    balanced = instance_balanced_weights(t.weights, t.owner)
    assert np.all(balanced[t.weights == 0] == 0)
    owners = np.unique(t.owner[t.weights > 0])
    for k in owners:
        assert balanced[t.owner == k].sum() == pytest.approx(1.0, rel=1e-5)
    assert balanced.sum() == pytest.approx(len(owners), rel=1e-5)
