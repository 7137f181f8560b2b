"""The one letterbox every path uses (predict, eval, verify, bench; the apps do the same, docs/grouper.md).

The image is scaled by ``scale = size / max(h0, w0)`` so its longer side is ``size`` pixels, and placed at the
top-left of a square canvas whose side is ``size`` rounded up to a multiple of 16, the rest black.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


def canvas_side(size: int) -> int:
    """Model input side for a letterbox of ``size``: the next multiple of 16 (pixels)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return -(-size // 16) * 16


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterboxed image: original ``(h0, w0)``, ``scale`` (input px per original px),
    content ``(h, w)`` and square canvas ``side`` (input pixels)."""

    image_hw: tuple[int, int]
    scale: float
    content_hw: tuple[int, int]
    side: int

    @classmethod
    def fit(cls, image_hw: tuple[int, int], size: int) -> "Letterbox":
        h0, w0 = image_hw
        if h0 <= 0 or w0 <= 0:
            raise ValueError(f"image must be non-empty, got {h0}x{w0}")
        scale = size / max(h0, w0)
        content = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        return cls((h0, w0), scale, content, canvas_side(size))


def letterbox_image(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 image (h0, w0, 3) -> canvas (side, side, 3) float32 in [0, 255] (bilinear) and its geometry."""
    box = Letterbox.fit(image.shape[:2], size)
    h, w = box.content_hw
    canvas = np.zeros((box.side, box.side, 3), np.float32)
    canvas[:h, :w] = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR), np.float32)
    return canvas, box


def letterbox_masks(masks: np.ndarray, box: Letterbox) -> np.ndarray:
    """Masks (N, h0, w0) -> (N, side, side) uint8 through the same letterbox (nearest neighbour)."""
    h, w = box.content_hw
    out = np.zeros((len(masks), box.side, box.side), np.uint8)
    for k, m in enumerate(masks):
        out[k, :h, :w] = np.asarray(Image.fromarray(m.astype(np.uint8)).resize((w, h), Image.NEAREST))
    return out


def read_image(path: str) -> np.ndarray:
    """Read an image file as RGB uint8 (h0, w0, 3); ValueError with the path if it is not a readable image."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise ValueError(f"image not found: {path}") from None
    except Exception as exc:  # PIL raises several types for bad files
        raise ValueError(f"not a readable image: {path} ({type(exc).__name__})") from None
