"""Per-cell training targets from instance masks (paper sections 3.1 and 3.2).

Rule for a cell (an ``s x s`` block of input pixels, ``s`` = stride):

- ``person``: the fraction of the cell's pixels covered by any person mask, crowd regions included (soft label).
- The cell is a *person cell* when that fraction is >= 0.5.
- Its *owner* is the instance (crowd regions included) covering most of its pixels; equal coverage goes to the
  instance with the smaller mask (the one more likely in front), then to the earlier annotation.
- ``weights`` is 1 on person cells whose owner is a non-crowd instance, else 0; ``offsets`` hold the owner's
  box encoded against the cell's anchor there (0 elsewhere). A box is the tight box of the instance's
  (transformed) mask: x1 = first column, x2 = last column + 1, in input pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils

from bbe_mobile.boxes import Anchor, anchor_centers, encode_boxes


@dataclass(frozen=True)
class Targets:
    """``person`` (H, W) float32 in [0, 1]; ``offsets`` (H, W, 4) float32; ``weights`` (H, W) float32 in {0, 1};
    ``owner`` (H, W) int32 (0 = none, k = instance k-1 of the input order)."""

    person: np.ndarray
    offsets: np.ndarray
    weights: np.ndarray
    owner: np.ndarray


def annotation_masks(annotations: list[dict], height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """COCO annotations (polygons or RLE) -> masks (N, H, W) uint8 and crowd flags (N,) bool."""
    masks = np.zeros((len(annotations), height, width), np.uint8)
    crowd = np.zeros(len(annotations), bool)
    for k, ann in enumerate(annotations):
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, height, width)) if seg else None
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = seg
        if rle is not None:
            masks[k] = mask_utils.decode(rle)
        crowd[k] = bool(ann.get("iscrowd", 0))
    return masks, crowd


def mask_boxes(masks: np.ndarray) -> np.ndarray:
    """Tight boxes (N, 4) float64 x1 y1 x2 y2 of masks (N, H, W); an empty mask gives a zero box."""
    boxes = np.zeros((len(masks), 4))
    for k, m in enumerate(masks):
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        if rows.size:
            boxes[k] = cols[0], rows[0], cols[-1] + 1, rows[-1] + 1
    return boxes


def _cell_sums(masks: np.ndarray, stride: int) -> np.ndarray:
    """(N, H, W) -> (N, ceil(H/s), ceil(W/s)) number of covered pixels per cell (zero padding at bottom/right)."""
    n, h, w = masks.shape
    hc, wc = -(-h // stride), -(-w // stride)
    padded = np.zeros((n, hc * stride, wc * stride), np.int32)
    padded[:, :h, :w] = masks
    return padded.reshape(n, hc, stride, wc, stride).sum(axis=(2, 4))


def build_targets(masks: np.ndarray, crowd: np.ndarray, stride: int, anchor: Anchor = Anchor()) -> Targets:
    """Targets at ``stride`` (input pixels per cell) from masks (N, H, W) and crowd flags (N,)."""
    masks = np.asarray(masks).astype(bool)
    n, h, w = masks.shape
    hc, wc = -(-h // stride), -(-w // stride)
    cell_area = float(stride * stride)
    union = masks.any(axis=0)[None] if n else np.zeros((1, h, w), bool)
    person = _cell_sums(union, stride)[0] / cell_area
    if n == 0:
        zeros = np.zeros((hc, wc), np.float32)
        return Targets(person.astype(np.float32), np.zeros((hc, wc, 4), np.float32), zeros, zeros.astype(np.int32))

    coverage = _cell_sums(masks, stride)
    areas = masks.reshape(n, -1).sum(axis=1)
    order = np.lexsort((np.arange(n), areas))  # smaller mask first, then annotation order
    best = order[np.argmax(coverage[order], axis=0)]
    best_cover = np.take_along_axis(coverage, best[None], axis=0)[0]
    is_person = person >= 0.5
    owner = np.where(is_person & (best_cover > 0), best + 1, 0).astype(np.int32)
    weights = (owner > 0) & ~crowd[np.maximum(owner - 1, 0)]

    boxes = mask_boxes(masks)
    cx, cy = anchor_centers(hc, wc, stride)
    offsets = np.zeros((hc, wc, 4))
    if weights.any():
        offsets[weights] = encode_boxes(boxes[owner[weights] - 1], cx[weights], cy[weights], anchor)
    return Targets(person.astype(np.float32), offsets.astype(np.float32), weights.astype(np.float32), owner)


def instance_balanced_weights(weights: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Box-loss weights (H, W) float32 where every instance counts the same: each weighted cell of instance k
    gets 1 / (number of weighted cells of k), so a person of 10 cells weighs as much as one of 1,000.
    ``weights`` (H, W) in {0, 1} and ``owner`` (H, W) int32 as in ``Targets``."""
    mask = weights > 0
    counts = np.bincount(owner[mask], minlength=int(owner.max(initial=0)) + 1)
    out = np.zeros(weights.shape, np.float32)
    out[mask] = 1.0 / counts[owner[mask]]
    return out
