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
    centres = np.stack(np.broadcast_arrays(np.asarray(cx, np.float64), np.asarray(cy, np.float64), o[..., 0])[:2])
    return np.moveaxis(decode_rows(np.moveaxis(o, -1, 0), centres, anchor), 0, -1)


def decode_rows(offsets: np.ndarray, centres: np.ndarray, anchor: Anchor = Anchor()) -> np.ndarray:
    """Coordinate-major ``decode_boxes``: offsets ``(4, ...)`` rows dx, dy, dw, dh and anchor centres ``(2, ...)``
    rows cx, cy -> boxes ``(4, ...)`` float64 rows x1, y1, x2, y2 (docs/grouper.md step 1)."""
    o = np.asarray(offsets, dtype=np.float64)
    m = anchor.max_log_scale
    column = (-1,) + (1,) * (o.ndim - 1)
    half = np.clip(o[2:], -m, m)  # half width, half height (one clip: a maximum and a minimum with scalars are slower)
    np.exp(half, out=half)
    half *= np.array([anchor.w / 2, anchor.h / 2]).reshape(column)
    centre = o[:2] * np.array([anchor.w, anchor.h]).reshape(column)
    centre += centres
    boxes = np.empty((4,) + o.shape[1:])
    np.subtract(centre, half, out=boxes[:2])
    np.add(centre, half, out=boxes[2:])
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
    extent = np.minimum(b[:, 2:], a[2:])  # (M, 2, N): width and height of the intersections
    extent -= np.maximum(b[:, :2], a[:2])
    np.maximum(extent, 0, out=extent)
    inter = np.multiply(extent[:, 0], extent[:, 1])
    size_a = np.maximum(a[2:] - a[:2], 0)
    size_b = np.maximum(b[:, 2:, 0] - b[:, :2, 0], 0)
    union = np.add((size_b[:, 0] * size_b[:, 1])[:, None], size_a[0] * size_a[1])
    union -= inter
    # a zero union means zero areas, so inter is 0 and the IoU 0 (a masked divide is several times slower)
    np.maximum(union, np.finfo(np.float64).tiny, out=union)
    return np.divide(inter, union, out=inter).T
