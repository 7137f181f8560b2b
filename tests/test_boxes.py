import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bbe_mobile.boxes import Anchor, anchor_centers, box_area, decode_boxes, encode_boxes, pairwise_iou

coord = st.floats(-500, 500, allow_nan=False)
size = st.floats(2.5, 800, allow_nan=False)  # log-scales inside the +-4 clamp


def test_anchor_is_96_squared_with_aspect_1_5():
    a = Anchor()
    assert math.isclose(a.w * a.h, 96.0 ** 2)
    assert math.isclose(a.h / a.w, 1.5)


def test_anchor_centers_are_cell_centres():
    cx, cy = anchor_centers(2, 3, 4)
    assert cx.tolist() == [[2, 6, 10], [2, 6, 10]]
    assert cy.tolist() == [[2, 2, 2], [6, 6, 6]]


@settings(max_examples=200)
@given(coord, coord, size, size, coord, coord)
def test_decode_inverts_encode(x1, y1, w, h, cx, cy):
    box = np.array([x1, y1, x1 + w, y1 + h])
    offsets = encode_boxes(box, np.float64(cx), np.float64(cy))
    np.testing.assert_allclose(decode_boxes(offsets, np.float64(cx), np.float64(cy)), box, atol=1e-6)


def test_zero_offsets_decode_to_the_anchor():
    box = decode_boxes(np.zeros(4), 50.0, 60.0)
    a = Anchor()
    np.testing.assert_allclose(box, [50 - a.w / 2, 60 - a.h / 2, 50 + a.w / 2, 60 + a.h / 2])


def test_log_scales_are_clamped_before_exp():
    box = decode_boxes(np.array([0, 0, 100.0, -100.0]), 0.0, 0.0)
    a = Anchor()
    np.testing.assert_allclose(box[2] - box[0], a.w * math.exp(4))
    np.testing.assert_allclose(box[3] - box[1], a.h * math.exp(-4))


@settings(max_examples=200)
@given(st.lists(st.tuples(coord, coord, size, size), min_size=1, max_size=6),
       st.lists(st.tuples(coord, coord, size, size), min_size=1, max_size=6))
def test_iou_is_symmetric_bounded_and_one_on_itself(a, b):
    a = np.array([[x, y, x + w, y + h] for x, y, w, h in a])
    b = np.array([[x, y, x + w, y + h] for x, y, w, h in b])
    iou = pairwise_iou(a, b)
    assert iou.shape == (len(a), len(b))
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))
    np.testing.assert_allclose(iou, pairwise_iou(b, a).T)
    np.testing.assert_allclose(np.diag(pairwise_iou(a, a)), 1.0)


def test_iou_known_value_and_area():
    assert pairwise_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 0, 3, 2]]))[0, 0] == 2 / 6
    assert box_area(np.array([3, 3, 1, 5])) == 0
