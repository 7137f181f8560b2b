"""The instance grouper of ``docs/grouper.md``: the paper's (section 3.3) and the refined mode. Pure NumPy.

Cost: O(H·W) for the peaks, O(Nc·K) for NMS (K <= max_instances kept), O(Np·K) for each assignment of the Np
person cells, O(Np) for the medians of a refinement round (np.partition). Only the person cells are decoded.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from bbe_mobile.boxes import Anchor, decode_boxes, pairwise_iou

GROUPER_MODES = ("paper", "refine")
NMS_BLOCK = 64  # candidates whose pairwise IoUs one NMS step computes at once


@dataclass(frozen=True)
class GrouperConfig:
    """Grouper thresholds (probabilities and IoUs in [0, 1]), the anchor (input pixels) and the mode:
    ``paper`` (the paper's peak boxes) or ``refine`` (``refine_rounds`` rounds of median refinement)."""

    t_c: float = 0.6
    t_nms: float = 0.4
    t_fg: float = 0.5
    t_iou: float = 0.3
    max_instances: int = 20
    anchor_w: float = Anchor().w
    anchor_h: float = Anchor().h
    max_log_scale: float = Anchor().max_log_scale
    mode: str = "paper"
    refine_rounds: int = 1

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.anchor_w, self.anchor_h, self.max_log_scale)

    def validate(self) -> None:
        for name in ("t_c", "t_nms", "t_fg", "t_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"GrouperConfig.{name} must be in [0, 1], got {value}")
        for name in ("max_instances", "refine_rounds"):
            value = getattr(self, name)
            low = 1 if name == "refine_rounds" else 0
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"GrouperConfig.{name} must be an integer >= {low}, got {value!r}")
        for name in ("anchor_w", "anchor_h", "max_log_scale"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"GrouperConfig.{name} must be finite and > 0, got {value}")
        if self.mode not in GROUPER_MODES:
            raise ValueError(f"GrouperConfig.mode must be one of {', '.join(GROUPER_MODES)}, got {self.mode!r}")


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
    """Validate and return ``prob`` and ``offsets`` as contiguous float32 (widened to float64 where used)."""
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
    return checked[0], checked[1]


def _decode_cells(offsets: np.ndarray, cells: np.ndarray, width: int, stride: float, anchor: Anchor) -> np.ndarray:
    """Decoded boxes of the flat cell indices ``cells`` of a float32 (H, W, 4) offsets map, coordinate-major:
    (4, N) float64 rows x1, y1, x2, y2 (float32 offsets widened exactly, docs/grouper.md step 1)."""
    rows, cols = np.divmod(cells, width)
    # one 16-byte gather per cell (a (N, 4) float32 row gather is ~10x slower), then float64 rows
    gathered = offsets.reshape(-1, 4).view(np.complex128)[:, 0][cells].view(np.float32).reshape(-1, 4)
    rows_first = np.ascontiguousarray(gathered.T, dtype=np.float64)
    boxes = decode_boxes(rows_first.T, (cols + 0.5) * stride, (rows + 0.5) * stride, anchor)
    return np.ascontiguousarray(boxes.T)


def find_peaks(prob: np.ndarray, t_c: float) -> np.ndarray:
    """Flat raster indices of cells with p >= t_c and p >= each in-map 8-neighbour, ascending. ``prob`` may be
    float32: the comparisons are exact (t_c is compared in float64)."""
    window = prob.copy()  # 3x3 maximum over in-map cells: rows, then columns
    np.maximum(window[:, 1:], prob[:, :-1], out=window[:, 1:])
    np.maximum(window[:, :-1], prob[:, 1:], out=window[:, :-1])
    rows = window.copy()
    np.maximum(window[1:], rows[:-1], out=window[1:])
    np.maximum(window[:-1], rows[1:], out=window[:-1])
    return np.flatnonzero((prob >= np.float64(t_c)) & (prob >= window))


def nms(boxes: np.ndarray, scores: np.ndarray, t_nms: float, max_keep: int) -> np.ndarray:
    """Greedy NMS: positions into ``boxes`` (N, 4) that are kept, in keep order. Scores descending, ties by
    position ascending; a box is suppressed by an IoU > t_nms with a kept box. Works on blocks of NMS_BLOCK
    candidates: the block's pairwise IoUs at once, then the rest filtered by the block's kept boxes."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        block, order = order[:NMS_BLOCK], order[NMS_BLOCK:]
        overlaps = (pairwise_iou(boxes[block], boxes[block]) > t_nms).tolist()
        alive = [True] * len(block)
        kept_here = []
        for a in range(len(block)):
            if alive[a]:
                kept_here.append(a)
                if len(keep) + len(kept_here) == max_keep:
                    break
                alive = [x and not o for x, o in zip(alive, overlaps[a])]
        keep.extend(int(block[a]) for a in kept_here)
        if order.size and len(keep) < max_keep:
            order = order[(pairwise_iou(boxes[order], boxes[block[kept_here]]) <= t_nms).all(axis=1)]
    return np.asarray(keep, dtype=np.int64)


def assign_cells(cell_boxes: np.ndarray, kept_boxes: np.ndarray, t_iou: float) -> np.ndarray:
    """Label (1-based kept number, 0 = none) of each cell box against kept boxes (K, 4); ``cell_boxes`` is
    coordinate-major (4, N) float64. The kept box of maximum IoU (ties to the earlier one) if that IoU >= t_iou.
    One pass per kept box over contiguous rows, the same arithmetic as ``pairwise_iou``."""
    x1, y1, x2, y2 = cell_boxes
    n = x1.shape[0]
    area = np.maximum(x2 - x1, 0)
    area *= np.maximum(y2 - y1, 0)
    best_iou = np.full(n, -1.0)
    best = np.zeros(n, np.int32)
    iw, ih, scratch = np.empty(n), np.empty(n), np.empty(n)
    better = np.empty(n, bool)
    zero = np.zeros(n)
    tiny = np.full(n, np.finfo(np.float64).tiny)
    for k, (kx1, ky1, kx2, ky2) in enumerate(np.asarray(kept_boxes, np.float64).tolist()):
        np.minimum(x2, kx2, out=iw)
        iw -= np.maximum(x1, kx1, out=scratch)
        np.maximum(iw, zero, out=iw)
        np.minimum(y2, ky2, out=ih)
        ih -= np.maximum(y1, ky1, out=scratch)
        np.maximum(ih, zero, out=ih)
        iw *= ih  # intersection
        np.add(area, max(kx2 - kx1, 0) * max(ky2 - ky1, 0), out=ih)
        ih -= iw  # union
        np.maximum(ih, tiny, out=ih)
        iw /= ih  # IoU
        np.greater(iw, best_iou, out=better)  # strict: equal IoUs stay with the earlier kept box
        np.copyto(best_iou, iw, where=better)
        np.copyto(best, k + 1, where=better)
    best[best_iou < t_iou] = 0
    return best


def median_boxes(cell_boxes: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Per-coordinate median (docs/grouper.md, "Refine": middle value, or the mean (a + b) / 2 of the two middle
    values of an even count) of the cell boxes (4, N) labelled 1..``count`` -> (count, 4) float64; a label
    without cells gets NaN."""
    order = np.argsort(labels.astype(np.min_scalar_type(count)), kind="stable")  # radix sort for small counts
    grouped = cell_boxes[:, order]
    ends = np.cumsum(np.bincount(labels, minlength=count + 1))
    medians = np.full((count, 4), np.nan)
    for k in range(1, count + 1):
        start, end = ends[k - 1], ends[k]
        if end > start:
            n = end - start
            low, high = (n - 1) // 2, n // 2
            part = np.partition(grouped[:, start:end], (low, high), axis=1)
            medians[k - 1] = (part[:, low] + part[:, high]) / 2
    return medians


def refine_round(cell_boxes: np.ndarray, labels: np.ndarray, count: int, t_nms: float,
                 t_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """One refinement round (docs/grouper.md, "Refine"): the median box of each of the ``count`` boxes' cells,
    boxes without cells dropped, duplicates removed by NMS scored by cell count, the survivors in their previous
    order, cells assigned again. Returns (boxes (K', 4) float64, labels of the cells against them)."""
    counts = np.bincount(labels, minlength=count + 1)[1:]
    present = np.flatnonzero(counts)
    medians = median_boxes(cell_boxes, labels, count)[present]
    survivors = medians[np.sort(nms(medians, counts[present].astype(np.float64), t_nms, len(present)))]
    return survivors, assign_cells(cell_boxes, survivors, t_iou)


def group(prob: np.ndarray, offsets: np.ndarray, stride: float, config: GrouperConfig = GrouperConfig()) -> Instances:
    """Group a probability map ``prob`` (H, W) and box offsets ``offsets`` (H, W, 4) (dx, dy, dw, dh) at
    ``stride`` input pixels per cell into person instances (``docs/grouper.md``, mode ``config.mode``)."""
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
    peak_boxes = _decode_cells(offsets, peaks, w, stride, config.anchor).T
    kept_boxes = peak_boxes[nms(peak_boxes, flat_prob[peaks], config.t_nms, config.max_instances)]

    person = np.flatnonzero(flat_prob >= np.float64(config.t_fg))
    cell_boxes = _decode_cells(offsets, person, w, stride, config.anchor)
    person_labels = assign_cells(cell_boxes, kept_boxes, config.t_iou)
    if config.mode == "refine":
        for _ in range(config.refine_rounds):
            kept_boxes, person_labels = refine_round(cell_boxes, person_labels, len(kept_boxes), config.t_nms,
                                                     config.t_iou)

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
