import numpy as np
import pytest

from bbe_mobile.letterbox import Letterbox, canvas_side, letterbox_image, letterbox_masks


def test_canvas_side_rounds_up_to_16():
    assert canvas_side(512) == 512
    assert canvas_side(961) == 976
    with pytest.raises(ValueError):
        canvas_side(0)


def test_letterbox_places_content_top_left():
    image = np.full((100, 200, 3), 200, np.uint8)
    canvas, box = letterbox_image(image, 64)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.float32
    assert box.scale == 64 / 200 and box.content_hw == (32, 64)
    assert np.all(canvas[:32] == 200) and np.all(canvas[32:] == 0)


def test_masks_follow_the_image():
    masks = np.zeros((1, 100, 200), np.uint8)
    masks[0, :50, :100] = 1
    box = Letterbox.fit((100, 200), 64)
    out = letterbox_masks(masks, box)
    assert out.shape == (1, 64, 64) and out[0, :16, :32].all() and not out[0, 16:].any()
