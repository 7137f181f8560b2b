"""Figure-4-style overlays: one colour per instance, its box and score."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

from bbe_mobile.predictor import Prediction


def instance_colors(count: int) -> np.ndarray:
    """``count`` well-separated RGB colours (golden-ratio hues), uint8 (count, 3)."""
    hues = (np.arange(count) * 0.618033988749895) % 1.0
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.85, 1.0)] for h in hues], np.uint8).reshape(-1, 3)


def overlay(image: np.ndarray, prediction: Prediction, alpha: float = 0.55) -> Image.Image:
    """RGB uint8 image (h0, w0, 3) with each instance's mask tinted, its box outlined and its score written."""
    colors = instance_colors(len(prediction.scores))
    out = image.astype(np.float32)
    for k in range(len(prediction.scores)):
        mask = prediction.labels == k + 1
        out[mask] = (1 - alpha) * out[mask] + alpha * colors[k]
    picture = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for k, (box, score) in enumerate(zip(prediction.boxes, prediction.scores)):
        color = tuple(int(c) for c in colors[k])
        draw.rectangle([float(v) for v in box], outline=color, width=2)
        draw.text((float(box[0]) + 3, float(box[1]) + 2), f"{score:.2f}", fill=color)
    return picture
