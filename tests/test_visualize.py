"""Overlay labels: sized to the image and readable on any background (instance colour + contrasting outline)."""
import numpy as np
import pytest

from bbe_mobile.grouper import Instances
from bbe_mobile.letterbox import Letterbox
from bbe_mobile.predictor import Prediction
from bbe_mobile.visualize import instance_colors, label_style, outline_color, overlay


def one_person(h: int, w: int) -> Prediction:
    """A prediction with one instance: a box over the image's left half (no mask pixels), score 0.87."""
    labels = np.zeros((h, w), np.int32)
    boxes = np.array([[0.1 * w, 0.1 * h, 0.5 * w, 0.9 * h]], np.float32)
    cells = Instances(np.zeros((4, 4), np.int32), boxes, np.array([0.87], np.float32))
    return Prediction(labels, boxes, np.array([0.87], np.float32), np.zeros((4, 4), np.float32), cells,
                      Letterbox((h, w), 1.0, (h, w), max(h, w)))


def label_pixels(picture, color, box_px: tuple[int, int, int, int]) -> int:
    """Pixels within 40 (max over RGB, 0..255) of ``color`` inside ``box_px`` (x1, y1, x2, y2) of a PIL image
    (glyph edges are anti-aliased)."""
    x1, y1, x2, y2 = box_px
    region = np.asarray(picture)[y1:y2, x1:x2].astype(int)
    return int((np.abs(region - np.asarray(color)).max(axis=-1) <= 40).sum())


@pytest.mark.parametrize("background", [0, 128, 255])
def test_label_has_the_instance_colour_and_a_contrasting_outline(background):
    h, w = 480, 640
    picture = overlay(np.full((h, w, 3), background, np.uint8), one_person(h, w))
    color = tuple(int(c) for c in instance_colors(1)[0])
    stroke = outline_color(color)
    style = label_style((h, w))
    x0, y0 = int(0.1 * w), int(0.1 * h)
    area = (x0, y0, x0 + 6 * style["font_px"], y0 + 3 * style["font_px"])  # where "0.87" is written
    assert label_pixels(picture, color, area) > 20
    assert label_pixels(picture, stroke, area) > 20 or background == stroke[0]
    assert stroke != color


def test_label_size_follows_the_image():
    small, large = label_style((120, 160)), label_style((1080, 1920))
    assert small["font_px"] == 10 and large["font_px"] == round(0.035 * 1080)
    assert large["stroke_px"] > small["stroke_px"] and large["line_px"] > small["line_px"]
    color = tuple(int(c) for c in instance_colors(1)[0])
    counts = []
    for h, w in ((240, 320), (960, 1280)):
        picture = overlay(np.full((h, w, 3), 128, np.uint8), one_person(h, w))
        counts.append(label_pixels(picture, color, (int(0.1 * w) + 3, int(0.1 * h) + 3, int(0.5 * w) - 3,
                                                    int(0.9 * h) - 3)))
    assert counts[1] > 8 * counts[0] > 0  # 4x the side: ~16x the glyph area


def test_outline_colour_contrasts():
    assert outline_color((255, 255, 0)) == (0, 0, 0)
    assert outline_color((0, 0, 255)) == (255, 255, 255)
