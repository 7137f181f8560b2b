"""Figure-4-style overlays: one colour per instance, its box and score."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bbe_mobile.predictor import Prediction


def instance_colors(count: int) -> np.ndarray:
    """``count`` well-separated RGB colours (golden-ratio hues), uint8 (count, 3)."""
    hues = (np.arange(count) * 0.618033988749895) % 1.0
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.85, 1.0)] for h in hues], np.uint8).reshape(-1, 3)


def label_style(image_hw: tuple[int, int]) -> dict:
    """Sizes in pixels for an image of ``image_hw`` (height, width) pixels: label text height ``font_px`` (3.5 %
    of the shorter side, at least 10), its outline ``stroke_px`` and the box line ``line_px``."""
    short = min(image_hw)
    font_px = max(10, round(0.035 * short))
    return {"font_px": font_px, "stroke_px": max(1, round(font_px / 8)), "line_px": max(2, round(short / 250))}


def outline_color(color) -> tuple[int, int, int]:
    """Black for a light ``color`` (RGB 0..255), white for a dark one (relative luminance 0.5 as the split)."""
    r, g, b = (float(c) / 255 for c in color)
    return (0, 0, 0) if 0.2126 * r + 0.7152 * g + 0.0722 * b >= 0.5 else (255, 255, 255)


def overlay(image: np.ndarray, prediction: Prediction, alpha: float = 0.55, colors: np.ndarray | None = None,
            captions: list[str] | None = None) -> Image.Image:
    """RGB uint8 image (h0, w0, 3) with each instance's mask tinted, its box outlined and its score written in
    the instance colour with a contrasting outline, sized to the image (``label_style``). ``colors`` (M, 3) uint8
    (default: ``instance_colors``) and ``captions`` (M texts written before the score) are per instance."""
    colors = instance_colors(len(prediction.scores)) if colors is None else colors
    out = image.astype(np.float32)
    for k in range(len(prediction.scores)):
        mask = prediction.labels == k + 1
        out[mask] = (1 - alpha) * out[mask] + alpha * colors[k]
    picture = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    style = label_style(image.shape[:2])
    font = ImageFont.load_default(size=style["font_px"])
    pad = style["line_px"] + style["stroke_px"]
    for k, (box, score) in enumerate(zip(prediction.boxes, prediction.scores)):
        color = tuple(int(c) for c in colors[k])
        draw.rectangle([float(v) for v in box], outline=color, width=style["line_px"])
        text = f"{captions[k]} {score:.2f}" if captions else f"{score:.2f}"
        draw.text((float(box[0]) + pad, float(box[1]) + pad), text, fill=color, font=font,
                  stroke_width=style["stroke_px"], stroke_fill=outline_color(color))
    return picture
