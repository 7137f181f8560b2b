import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bbe_mobile.golden import read_golden
from bbe_mobile.grouper import GrouperConfig, boxes_to_image, group, labels_to_image
from conftest import GOLDEN

CASES = json.loads((GOLDEN / "index.json").read_text())["cases"]


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name):
    doc, prob, offsets, labels = read_golden(GOLDEN, name)
    result = group(prob, offsets, doc["stride"], GrouperConfig(**doc["config"]))
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.boxes.reshape(-1, 4), np.array(doc["boxes"]).reshape(-1, 4), atol=doc["tolerance"])
    np.testing.assert_allclose(result.scores, doc["scores"], atol=doc["tolerance"])
    if "image" in doc:
        img = doc["image"]
        expected = np.fromfile(GOLDEN / img["labels_file"], "<i4").reshape(img["height"], img["width"])
        hw = (img["height"], img["width"])
        np.testing.assert_array_equal(labels_to_image(result.labels, doc["stride"], img["scale"], hw), expected)
        np.testing.assert_allclose(boxes_to_image(result.boxes, img["scale"], hw).reshape(-1, 4),
                                   np.array(img["boxes"]).reshape(-1, 4), atol=doc["tolerance"])


def test_golden_covers_the_required_cases():
    required = {"no_person", "one_pixel", "plateau", "equal_peaks", "touching", "overlapping", "borders",
                "many_peaks", "bench_129_10"}
    assert required <= set(CASES)
    assert any(c.startswith("coco_") for c in CASES)


@st.composite
def maps(draw):
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    prob = draw(arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
    offsets = draw(arrays(np.float32, (h, w, 4), elements=st.floats(-2, 2, width=32)))
    return prob, offsets


@settings(max_examples=150, deadline=None)
@given(maps(), st.floats(0.5, 1.0), st.integers(0, 25))
def test_grouper_properties(m, t_iou, max_instances):
    prob, offsets = m
    config = GrouperConfig(t_iou=t_iou, max_instances=max_instances)
    r = group(prob, offsets, 4.0, config)
    assert r.labels.dtype == np.int32 and r.labels.shape == prob.shape
    assert r.boxes.dtype == np.float32 and r.scores.dtype == np.float32
    assert len(r) <= max_instances
    assert np.all(prob[r.labels > 0] >= config.t_fg)
    assert np.all((r.scores >= 0) & (r.scores <= 1))
    assert set(range(1, len(r) + 1)) <= set(np.unique(r.labels).tolist()) <= set(range(len(r) + 1))
    for k in range(len(r)):
        np.testing.assert_allclose(r.scores[k], prob[r.labels == k + 1].astype(np.float64).mean(), rtol=1e-6)
    again = group(np.asfortranarray(prob), offsets.copy(), 4.0, config)
    np.testing.assert_array_equal(again.labels, r.labels)
    np.testing.assert_array_equal(again.boxes, r.boxes)


def test_all_zero_map_has_no_instance():
    r = group(np.zeros((33, 17), np.float32), np.zeros((33, 17, 4), np.float32), 4)
    assert len(r) == 0 and not r.labels.any()


@pytest.mark.parametrize("prob,offsets,message", [
    (np.zeros((4,)), np.zeros((4, 4)), "prob must be"),
    (np.zeros((4, 4)), np.zeros((4, 4, 3)), "offsets must be"),
    (np.zeros((4, 4)), np.zeros((4, 5, 4)), "offsets must be"),
    (np.full((2, 2), np.nan), np.zeros((2, 2, 4)), "prob contains NaN"),
    (np.zeros((2, 2)), np.full((2, 2, 4), np.inf), "offsets contains NaN or inf"),
    (np.zeros((2, 2), bool), np.zeros((2, 2, 4)), "float array"),
])
def test_bad_inputs_raise(prob, offsets, message):
    with pytest.raises(ValueError, match=message):
        group(prob, offsets, 4)


def test_bad_config_and_stride_raise():
    p, o = np.zeros((2, 2), np.float32), np.zeros((2, 2, 4), np.float32)
    with pytest.raises(ValueError, match="t_iou"):
        group(p, o, 4, GrouperConfig(t_iou=1.5))
    with pytest.raises(ValueError, match="stride"):
        group(p, o, 0)


def test_labels_and_boxes_to_image():
    labels = np.array([[0, 1], [2, 0]], np.int32)
    up = labels_to_image(labels, 4, 0.5, (16, 16))
    assert up.shape == (16, 16) and up[0, 15] == 1 and up[15, 0] == 2 and up[0, 0] == 0
    boxes = boxes_to_image(np.array([[-4, 2, 10, 40]], np.float32), 0.5, (16, 16))
    np.testing.assert_allclose(boxes, [[0, 4, 16, 16]])
