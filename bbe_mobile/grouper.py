"""The paper's instance grouper (section 3.3), exactly as ``docs/grouper.md`` specifies. Pure NumPy.

Cost: O(H·W) for peaks, O(Nc·K) for NMS (K <= max_instances kept), O(Np·K) for the assignment.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from bbe_mobile.boxes import Anchor, decode_boxes, pairwise_iou


@dataclass(frozen=True)
class GrouperConfig:
    """Grouper thresholds (probabilities and IoUs in [0, 1]) and the anchor (input pixels)."""

    t_c: float = 0.6
    t_nms: float = 0.4
    t_fg: float = 0.5
    t_iou: float = 0.3
    max_instances: int = 20
    anchor_w: float = Anchor().w
    anchor_h: float = Anchor().h
    max_log_scale: float = Anchor().max_log_scale

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.anchor_w, self.anchor_h, self.max_log_scale)

    def validate(self) -> None:
        for name in ("t_c", "t_nms", "t_fg", "t_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"GrouperConfig.{name} must be in [0, 1], got {value}")
        if isinstance(self.max_instances, bool) or not isinstance(self.max_instances, numbers.Integral) \
                or self.max_instances < 0:
            raise ValueError(f"GrouperConfig.max_instances must be an integer >= 0, got {self.max_instances!r}")
        for name in ("anchor_w", "anchor_h", "max_log_scale"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"GrouperConfig.{name} must be finite and > 0, got {value}")


@dataclass(frozen=True)
class Instances:
    """Grouper output: ``labels`` (H, W) int32 (0 = background), ``boxes`` (M, 4) float32 x1 y1 x2 y2 in
    input pixels, ``scores`` (M,) float32 mean probability of each instance's cells."""

    labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _check_inputs(prob: np.ndarray, offsets: np.ndarray, stride: float) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``prob`` widened to float64 (exactly, from float32) and ``offsets`` as float32."""
    prob = np.asarray(prob)
    offsets = np.asarray(offsets)
    if prob.ndim != 2:
        raise ValueError(f"prob must be (H, W), got shape {prob.shape}")
    if offsets.ndim != 3 or offsets.shape[:2] != prob.shape or offsets.shape[2] != 4:
        raise ValueError(f"offsets must be (H, W, 4) = {prob.shape + (4,)}, got shape {offsets.shape}")
    checked = []
    for name, array in (("prob", prob), ("offsets", offsets)):
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{name} must be a float array, got dtype {array.dtype}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or inf")
        checked.append(array)
    if not (np.isfinite(stride) and stride > 0):
        raise ValueError(f"stride must be finite and > 0, got {stride}")
    # float32 inputs, float64 arithmetic (docs/grouper.md, "Precision").
    return checked[0].astype(np.float64), checked[1]


def _decode_cells(offsets: np.ndarray, cells: np.ndarray, width: int, stride: float, anchor) -> np.ndarray:
    """Decoded boxes (N, 4) float64 of the flat cell indices ``cells`` of an (H, W, 4) offsets map."""
    rows, cols = np.divmod(cells, width)
    return decode_boxes(offsets.reshape(-1, 4)[cells], (cols + 0.5) * stride, (rows + 0.5) * stride, anchor)


def find_peaks(prob: np.ndarray, t_c: float) -> np.ndarray:
    """Flat raster indices of cells with p >= t_c and p >= each in-map 8-neighbour, ascending."""
    h, w = prob.shape
    padded = np.full((h + 2, w + 2), -np.inf)
    padded[1:-1, 1:-1] = prob
    is_peak = prob >= t_c
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di or dj:
                is_peak &= prob >= padded[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
    return np.flatnonzero(is_peak)


def nms(boxes: np.ndarray, scores: np.ndarray, t_nms: float, max_keep: int) -> np.ndarray:
    """Greedy NMS: positions into ``boxes`` (N, 4) that are kept, in keep order. Scores descending, ties by
    position ascending; a box is suppressed by an IoU > t_nms with a kept box."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and len(keep) < max_keep:
        best = order[0]
        keep.append(best)
        rest = order[1:]
        order = rest[pairwise_iou(boxes[rest], boxes[best : best + 1])[:, 0] <= t_nms]
    return np.asarray(keep, dtype=np.int64)


def assign_pixels(cell_boxes: np.ndarray, kept_boxes: np.ndarray, t_iou: float) -> np.ndarray:
    """Label (1-based kept number, 0 = none) of each cell box (N, 4) against kept boxes (K, 4): the kept box of
    maximum IoU (ties to the earlier one) if that IoU >= t_iou. One pass per kept box over contiguous columns
    (K <= max_instances), the same arithmetic as ``pairwise_iou``."""
    x1, y1, x2, y2 = np.asarray(cell_boxes, np.float64).T.copy()
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    best_iou = np.full(len(area), -1.0)
    best = np.zeros(len(area), np.int32)
    iw, ih, union = np.empty_like(area), np.empty_like(area), np.empty_like(area)
    for k, (kx1, ky1, kx2, ky2) in enumerate(np.asarray(kept_boxes, np.float64)):
        np.minimum(x2, kx2, out=iw)
        iw -= np.maximum(x1, kx1)
        np.maximum(iw, 0, out=iw)
        np.minimum(y2, ky2, out=ih)
        ih -= np.maximum(y1, ky1)
        np.maximum(ih, 0, out=ih)
        iw *= ih  # intersection
        np.add(area, max(kx2 - kx1, 0) * max(ky2 - ky1, 0), out=union)
        union -= iw
        np.maximum(union, np.finfo(np.float64).tiny, out=union)
        iw /= union  # IoU
        better = iw > best_iou  # strict: equal IoUs stay with the earlier kept box
        best_iou[better] = iw[better]
        best[better] = k + 1
    return np.where(best_iou >= t_iou, best, 0).astype(np.int32)


def group(prob: np.ndarray, offsets: np.ndarray, stride: float, config: GrouperConfig = GrouperConfig()) -> Instances:
    """Group a probability map ``prob`` (H, W) and box offsets ``offsets`` (H, W, 4) (dx, dy, dw, dh) at
    ``stride`` input pixels per cell into person instances (``docs/grouper.md``)."""
    config.validate()
    prob, offsets = _check_inputs(prob, offsets, stride)
    h, w = prob.shape
    empty = Instances(np.zeros((h, w), np.int32), np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    if h == 0 or w == 0:
        return empty

    flat_prob = prob.ravel()
    peaks = find_peaks(prob, config.t_c)
    if peaks.size == 0:
        return empty
    peak_boxes = _decode_cells(offsets, peaks, w, stride, config.anchor)
    kept_boxes = peak_boxes[nms(peak_boxes, flat_prob[peaks], config.t_nms, config.max_instances)]

    person = np.flatnonzero(flat_prob >= config.t_fg)
    person_labels = assign_pixels(_decode_cells(offsets, person, w, stride, config.anchor), kept_boxes, config.t_iou)

    counts = np.bincount(person_labels, minlength=len(kept_boxes) + 1)[1:]
    sums = np.bincount(person_labels, weights=flat_prob[person], minlength=len(kept_boxes) + 1)[1:]
    present = counts > 0
    renumber = np.zeros(len(kept_boxes) + 1, np.int32)
    renumber[1:][present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)

    labels = np.zeros(h * w, np.int32)
    labels[person] = renumber[person_labels]
    return Instances(
        labels.reshape(h, w),
        kept_boxes[present].astype(np.float32),
        (sums[present] / counts[present]).astype(np.float32),
    )


def boxes_to_image(boxes: np.ndarray, scale: float, image_hw: tuple[int, int]) -> np.ndarray:
    """Input-pixel boxes (M, 4) -> original-image pixels through the top-left letterbox of factor ``scale``,
    clipped to the image. float32."""
    h0, w0 = image_hw
    out = np.asarray(boxes, np.float64) / scale
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w0)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h0)
    return out.astype(np.float32)


def labels_to_image(labels: np.ndarray, stride: float, scale: float, image_hw: tuple[int, int]) -> np.ndarray:
    """Label map (H, W) at ``stride`` -> (h0, w0) int32 label map of the original image (nearest cell through
    the top-left letterbox of factor ``scale``)."""
    h, w = labels.shape
    h0, w0 = image_hw
    rows = np.clip(np.floor((np.arange(h0) + 0.5) * scale / stride).astype(np.int64), 0, h - 1)
    cols = np.clip(np.floor((np.arange(w0) + 0.5) * scale / stride).astype(np.int64), 0, w - 1)
    return labels[rows[:, None], cols[None, :]].astype(np.int32)
