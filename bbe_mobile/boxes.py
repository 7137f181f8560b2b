"""Box embedding: the anchor, Girshick encode/decode and IoU (paper sections 3.2 and 4.3).

All boxes are ``x1, y1, x2, y2`` in input pixels, pixel ``k`` spanning ``[k, k + 1)``.
Arithmetic is float64 (see ``docs/grouper.md``, "Precision").
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ANCHOR_AREA = 96.0 ** 2
ANCHOR_ASPECT = 1.5  # height / width


@dataclass(frozen=True)
class Anchor:
    """Anchor box size in input pixels (default: area 96², h/w = 1.5) and the clamp of log-scales."""

    w: float = math.sqrt(ANCHOR_AREA / ANCHOR_ASPECT)
    h: float = math.sqrt(ANCHOR_AREA * ANCHOR_ASPECT)
    max_log_scale: float = 4.0


def anchor_centers(height: int, width: int, stride: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the output cells in input pixels: cell (i, j) sits at ((j + 0.5)·stride, (i + 0.5)·stride).

    Returns ``(cx, cy)``, each ``(H, W)`` float64.
    """
    cy, cx = np.meshgrid((np.arange(height) + 0.5) * stride, (np.arange(width) + 0.5) * stride, indexing="ij")
    return cx, cy


def decode_boxes(offsets: np.ndarray, cx: np.ndarray, cy: np.ndarray, anchor: Anchor = Anchor()) -> np.ndarray:
    """Offsets ``(..., 4)`` (dx, dy, dw, dh) at anchor centres ``cx, cy`` (...) -> boxes ``(..., 4)`` float64."""
    o = np.asarray(offsets, dtype=np.float64)
    m = anchor.max_log_scale
    half_w = np.exp(np.minimum(np.maximum(o[..., 2], -m), m))
    half_w *= anchor.w / 2
    half_h = np.exp(np.minimum(np.maximum(o[..., 3], -m), m))
    half_h *= anchor.h / 2
    bx = o[..., 0] * anchor.w
    bx += cx
    by = o[..., 1] * anchor.h
    by += cy
    boxes = np.empty_like(o)  # the layout of the offsets: coordinate-major input gives coordinate-major rows
    np.subtract(bx, half_w, out=boxes[..., 0])
    np.subtract(by, half_h, out=boxes[..., 1])
    np.add(bx, half_w, out=boxes[..., 2])
    np.add(by, half_h, out=boxes[..., 3])
    return boxes


def encode_boxes(boxes: np.ndarray, cx: np.ndarray, cy: np.ndarray, anchor: Anchor = Anchor()) -> np.ndarray:
    """Boxes ``(..., 4)`` x1 y1 x2 y2 (positive size) at anchor centres -> offsets ``(..., 4)`` float64."""
    b = np.asarray(boxes, dtype=np.float64)
    w = b[..., 2] - b[..., 0]
    h = b[..., 3] - b[..., 1]
    bx = b[..., 0] + w / 2
    by = b[..., 1] + h / 2
    return np.stack([(bx - cx) / anchor.w, (by - cy) / anchor.h, np.log(w / anchor.w), np.log(h / anchor.h)], axis=-1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Area of boxes ``(..., 4)``; negative extents count as 0."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.maximum(b[..., 2] - b[..., 0], 0) * np.maximum(b[..., 3] - b[..., 1], 0)


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4) -> (N, M) float64 (0 where the union is 0).

    Computed as an (M, N) array (long contiguous rows: N is the large side in the grouper) and returned
    transposed."""
    a = np.asarray(a, dtype=np.float64).T.copy()  # (4, N) contiguous rows
    b = np.asarray(b, dtype=np.float64)[:, :, None]  # (M, 4, 1)
    iw = np.minimum(b[:, 2], a[2])
    iw -= np.maximum(b[:, 0], a[0])
    np.maximum(iw, 0, out=iw)
    ih = np.minimum(b[:, 3], a[3])
    ih -= np.maximum(b[:, 1], a[1])
    np.maximum(ih, 0, out=ih)
    inter = iw
    inter *= ih
    area_a = np.maximum(a[2] - a[0], 0) * np.maximum(a[3] - a[1], 0)
    union = box_area(b[:, :, 0])[:, None] + area_a
    union -= inter
    # a zero union means zero areas, so inter is 0 and the IoU 0 (a masked divide is several times slower)
    np.maximum(union, np.finfo(np.float64).tiny, out=union)
    return np.divide(inter, union, out=inter).T
