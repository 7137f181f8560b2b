"""The instance grouper of ``docs/grouper.md``: the paper's (section 3.3) and the refined mode. Pure NumPy.

Cost: O(H·W) for the peaks, O(Nc·K) for NMS (K <= max_instances kept), O(Np·K) for each assignment of the Np
person cells (each kept box only visits the cells that can overlap it), O(Np) for the medians of a refinement
round (np.partition; np.add.at for the mean statistic). Only the person cells are decoded. Each assignment
first tries one guessed box per cell and keeps it when the Jaccard bound proves it the strict maximum
(``assign_from_guess``): on well separated people that is one IoU per cell, and only the other cells pay for the
full O(K) pass. A refinement round that keeps every box reassigns only the cells whose label the Jaccard bound
(their IoU floor from the previous assignment) leaves open (``_reassign_certified``).
"""
from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass

import numpy as np

from bbe_mobile.boxes import Anchor, decode_rows, pairwise_iou

GROUPER_MODES = ("paper", "refine")
REFINE_STATISTICS = ("median", "mean")
NMS_BLOCK = 64  # candidates whose pairwise IoUs one NMS step computes at once
JACCARD_MARGIN = 1e-9  # slack of the settling test of ``assign_from_guess`` (IoU rounding errors are ~1e-15)
CHUNK_CELLS = 16  # consecutive person cells (raster order) that share one bounding test in the assignment
GUESS_MIN_BOXES = 3  # fewer boxes: the plain assignment is cheaper than trying a guess first


@dataclass(frozen=True)
class GrouperConfig:
    """Grouper thresholds (probabilities and IoUs in [0, 1]), the anchor (input pixels) and the mode:
    ``paper`` (the paper's peak boxes) or ``refine`` (``refine_rounds`` rounds of refinement, each box replaced by the
    per-coordinate ``refine_statistic``, ``median`` or ``mean``, of its cells' boxes)."""

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
    refine_statistic: str = "median"

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
        if self.refine_statistic not in REFINE_STATISTICS:
            raise ValueError(f"GrouperConfig.refine_statistic must be one of {', '.join(REFINE_STATISTICS)}, "
                             f"got {self.refine_statistic!r}")


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
        if array.dtype.kind not in "fiu":  # floating or integer
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
    row = cells // width
    centres = np.empty((2, len(cells)))  # (2, N) column, row
    np.subtract(cells, row * width, out=centres[0])
    centres[1] = row
    centres += 0.5
    centres *= stride
    # one 16-byte gather per cell (a (N, 4) float32 row gather is ~10x slower), then float64 rows
    gathered = offsets.reshape(-1, 4).view(np.complex128)[:, 0][cells].view(np.float32).reshape(-1, 4)
    return decode_rows(np.ascontiguousarray(gathered.T, dtype=np.float64), centres, anchor)


def float32_threshold(t: float) -> np.float32:
    """The smallest float32 >= ``t`` (a float64): for a float32 p, ``p >= t`` exactly when ``p >= float32_threshold(t)``
    (comparing float32 arrays to a float32 scalar avoids widening them)."""
    low = np.float32(t)
    return low if np.float64(low) >= t else np.nextafter(low, np.float32(np.inf))


def find_peaks(prob: np.ndarray, t_c: float) -> np.ndarray:
    """Flat raster indices of cells with p >= t_c and p >= each in-map 8-neighbour, ascending. ``prob`` may be
    float32: the comparisons are exact (t_c is compared in float64)."""
    # 3x3 maximum over in-map cells: along rows on the flat map (each cell with its right, then its left
    # neighbour: long contiguous runs, where 2-D row slices run one short loop per row), the row ends, which took a
    # cell of the next or previous row, redone per column; then the same along columns
    rows = np.empty(prob.shape, prob.dtype)
    if prob.shape[1] > 1:
        flat, flat_rows = prob.ravel(), rows.reshape(-1)
        np.maximum(flat[:-1], flat[1:], out=flat_rows[:-1])
        np.maximum(flat_rows[1:-1], flat[:-2], out=flat_rows[1:-1])
        np.maximum(prob[:, 0], prob[:, 1], out=rows[:, 0])
        np.maximum(prob[:, -1], prob[:, -2], out=rows[:, -1])
    else:
        rows[:] = prob
    window = np.empty_like(rows)
    np.maximum(rows[:-1], rows[1:], out=window[:-1])
    window[-1] = rows[-1]
    np.maximum(window[1:], rows[:-1], out=window[1:])
    peak = prob >= window
    peak &= prob >= (float32_threshold(t_c) if prob.dtype == np.float32 else np.float64(t_c))
    return np.flatnonzero(peak)


def nms(boxes: np.ndarray, scores: np.ndarray, t_nms: float, max_keep: int,
        box_iou: np.ndarray | None = None) -> np.ndarray:
    """Greedy NMS: positions into ``boxes`` (N, 4) that are kept, in keep order. Scores descending, ties by
    position ascending; a box is suppressed by an IoU > t_nms with a kept box. ``box_iou``: the (N, N)
    ``pairwise_iou(boxes, boxes)`` when the caller has it. Without it, works on blocks of NMS_BLOCK candidates:
    the block's pairwise IoUs at once, then the rest filtered by the block's kept boxes."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    if box_iou is not None:
        return np.asarray(_greedy(order.tolist(), (box_iou > t_nms).tolist(), max_keep), dtype=np.int64)
    keep: list[int] = []
    while order.size and len(keep) < max_keep:
        block, order = order[:NMS_BLOCK], order[NMS_BLOCK:]
        kept_here = _greedy(list(range(len(block))), (pairwise_iou(boxes[block], boxes[block]) > t_nms).tolist(),
                            max_keep - len(keep))
        keep.extend(int(block[a]) for a in kept_here)
        if order.size and len(keep) < max_keep:
            order = order[(pairwise_iou(boxes[order], boxes[block[kept_here]]) <= t_nms).all(axis=1)]
    return np.asarray(keep, dtype=np.int64)


def _greedy(candidates: list[int], overlaps: list[list[bool]], max_keep: int) -> list[int]:
    """The greedy walk of NMS over ``candidates`` (numbers 0..n-1) in order; ``overlaps[a][b]``: candidate a
    suppresses candidate b. Returns the kept candidates, at most ``max_keep``."""
    suppressed = [False] * len(overlaps)
    kept: list[int] = []
    if max_keep <= 0:
        return kept
    for a in candidates:
        if not suppressed[a]:
            kept.append(a)
            if len(kept) == max_keep:
                break
            suppressed = [x or o for x, o in zip(suppressed, overlaps[a])]
    return kept


@dataclass(frozen=True)
class CellBoxes:
    """The decoded boxes of N cells, prepared for repeated assignments (docs/grouper.md steps 4 and 4b).

    ``boxes`` (4, N) float64 rows x1, y1, x2, y2; ``area`` (N,) as in ``pairwise_iou``; ``chunk_bounds`` (computed
    on first use): ``chunk_low`` (2, T) the smallest x1, y1 and ``chunk_high`` (2, T) the largest x2, y2 of each run
    of CHUNK_CELLS consecutive cells. A cell's IoU with a box is > 0 only if the two overlap strictly on both axes (a zero
    overlap gives a zero intersection), so a chunk whose bounds miss a kept box holds no cell with an IoU > 0
    against it. In raster order a kept box's cells then lie in the rows its chunks span."""

    boxes: np.ndarray
    area: np.ndarray

    @classmethod
    def from_rows(cls, boxes: np.ndarray) -> "CellBoxes":
        boxes = np.ascontiguousarray(boxes, dtype=np.float64)
        size = np.subtract(boxes[2:], boxes[:2])  # width, height
        _clamp_at_zero(size)
        return cls(boxes, np.multiply(size[0], size[1]))

    @functools.cached_property
    def chunk_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(``chunk_low``, ``chunk_high``)."""
        starts = np.arange(0, self.boxes.shape[1], CHUNK_CELLS)
        if starts.size == 0:
            return np.zeros((2, 0)), np.zeros((2, 0))
        return np.minimum.reduceat(self.boxes[:2], starts, axis=1), np.maximum.reduceat(self.boxes[2:], starts, axis=1)


def _clamp_at_zero(values: np.ndarray) -> np.ndarray:
    """``np.maximum(values, 0)`` in place for a float64 array: against a zero array, which runs about twice as fast as
    against the scalar here (NumPy 2.4)."""
    return np.maximum(values, np.zeros(values.shape), out=values)


def _as_cell_boxes(cell_boxes: np.ndarray | CellBoxes) -> CellBoxes:
    return cell_boxes if isinstance(cell_boxes, CellBoxes) else CellBoxes.from_rows(cell_boxes)


def _candidate_ranges(cells: CellBoxes, kept: np.ndarray, t_iou: float) -> list[tuple[int, int]]:
    """For each kept box (K, 4), the range [lo, hi) of cells outside which its IoU with every cell is 0: from the
    first to the last chunk whose bounds overlap it. All cells when t_iou is 0 (an IoU of 0 can then label)."""
    n = cells.area.shape[0]
    if t_iou <= 0 or n == 0:
        return [(0, n)] * len(kept)
    chunk_low, chunk_high = cells.chunk_bounds
    hits = (chunk_high > kept[:, :2, None]).all(axis=1)  # (K, T): x2 > kx1 and y2 > ky1 somewhere
    hits &= (chunk_low < kept[:, 2:, None]).all(axis=1)  # and x1 < kx2 and y1 < ky2
    first = hits.argmax(axis=1)
    last = hits.shape[1] - hits[:, ::-1].argmax(axis=1)
    found = hits[np.arange(len(kept)), first]
    return [(f * CHUNK_CELLS, min(l * CHUNK_CELLS, n)) if ok else (0, 0)
            for f, l, ok in zip(first.tolist(), last.tolist(), found.tolist())]


def assign_cells(cell_boxes: np.ndarray | CellBoxes, kept_boxes: np.ndarray, t_iou: float) -> np.ndarray:
    """Label (1-based kept number, 0 = none) of each cell box against kept boxes (K, 4); ``cell_boxes`` is
    coordinate-major (4, N) float64 or a ``CellBoxes``. The kept box of maximum IoU (ties to the earlier one) if
    that IoU >= t_iou. One pass per kept box over the range of cells that can overlap it, the same arithmetic as
    ``pairwise_iou``."""
    cells = _as_cell_boxes(cell_boxes)
    n = cells.area.shape[0]
    kept = np.asarray(kept_boxes, np.float64).reshape(-1, 4)
    best_iou = np.full(n, -1.0)
    best = np.zeros(n, np.int32)
    ranges = _candidate_ranges(cells, kept, t_iou)
    width = max((hi - lo for lo, hi in ranges), default=0)
    iw, ih, scratch, zero = np.empty(width), np.empty(width), np.empty(width), np.zeros(width)
    better = np.empty(width, bool)
    x1, y1, x2, y2 = cells.boxes
    for k, ((kx1, ky1, kx2, ky2), (lo, hi)) in enumerate(zip(kept.tolist(), ranges)):
        m = hi - lo
        if m <= 0:
            continue
        w_, h_, s_, z_, b_ = iw[:m], ih[:m], scratch[:m], zero[:m], better[:m]
        np.minimum(x2[lo:hi], kx2, out=w_)
        w_ -= np.maximum(x1[lo:hi], kx1, out=s_)
        np.maximum(w_, z_, out=w_)
        np.minimum(y2[lo:hi], ky2, out=h_)
        h_ -= np.maximum(y1[lo:hi], ky1, out=s_)
        np.maximum(h_, z_, out=h_)
        w_ *= h_  # intersection
        kept_area = max(kx2 - kx1, 0) * max(ky2 - ky1, 0)
        np.add(cells.area[lo:hi], kept_area, out=h_)
        h_ -= w_  # union
        if not kept_area >= 1e-300:  # else union >= kept_area * (1 - 2^-52) > 0: the clamp of pairwise_iou is a no-op
            np.maximum(h_, np.finfo(np.float64).tiny, out=h_)
        w_ /= h_  # IoU
        np.greater(w_, best_iou[lo:hi], out=b_)  # strict: equal IoUs stay with the earlier kept box
        np.maximum(best_iou[lo:hi], w_, out=best_iou[lo:hi])
        np.putmask(best[lo:hi], b_, k + 1)
    best[best_iou < t_iou] = 0
    return best


def median_boxes(cell_boxes: np.ndarray | CellBoxes, labels: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Per-coordinate median (docs/grouper.md, "Refine": middle value, or the mean (a + b) / 2 of the two middle
    values of an even count) of the cell boxes (4, N) labelled 1..count -> (count, 4) float64; a label without
    cells gets NaN. ``label_counts``: ``np.bincount(labels, minlength=count + 1)`` (index 0: unlabelled cells).
    Cells grouped by label (radix sort), each group partitioned in place."""
    rows = cell_boxes.boxes if isinstance(cell_boxes, CellBoxes) else np.asarray(cell_boxes, np.float64)
    count = len(label_counts) - 1
    order = np.argsort(labels.astype(np.min_scalar_type(count)), kind="stable")  # radix sort for small counts
    grouped = np.take(rows, order, axis=1)
    ends = np.cumsum(label_counts)
    starts, sizes = ends[:-1], np.diff(ends)  # group k (1..count) is grouped[:, starts[k-1]:ends[k]]
    for start, end in zip(starts.tolist(), ends[1:].tolist()):
        if end > start:
            grouped[:, start:end].partition(((end - start - 1) // 2, (end - start) // 2), axis=1)
    medians = np.full((4, count), np.nan)
    present = sizes > 0
    if present.any():
        low = np.take(grouped, (starts + (sizes - 1) // 2)[present], axis=1)
        medians[:, present] = (low + np.take(grouped, (starts + sizes // 2)[present], axis=1)) / 2
    return medians.T


def mean_boxes(cell_boxes: np.ndarray | CellBoxes, labels: np.ndarray, label_counts: np.ndarray) -> np.ndarray:
    """Per-coordinate mean (docs/grouper.md, "Refine") of the cell boxes (4, N) labelled 1..count -> (count, 4)
    float64: each coordinate summed in float64 in the order of the cells, then divided by the cell count; a label
    without cells gets NaN. ``label_counts``: ``np.bincount(labels, minlength=count + 1)``. The sums run on the
    complex pairs x1 + i·x2 and y1 + i·y2: np.add.at adds its values one by one in input order and a complex
    addition adds the two parts separately, so each coordinate gets exactly its own float64 sum, two at a time (a
    float64 sum per coordinate waits on its previous addition into the same label: half the waits)."""
    rows = cell_boxes.boxes if isinstance(cell_boxes, CellBoxes) else np.asarray(cell_boxes, np.float64)
    count = len(label_counts) - 1
    pairs = np.empty((2, rows.shape[1]), np.complex128)  # (2, N): x1 + i·x2, y1 + i·y2
    parts = pairs.view(np.float64).reshape(2, -1, 2)
    parts[:, :, 0] = rows[:2]
    parts[:, :, 1] = rows[2:]
    sums = np.zeros((2, count + 1), np.complex128)
    np.add.at(sums[0], labels, pairs[0])
    np.add.at(sums[1], labels, pairs[1])
    means = np.empty((count, 4))
    means[:, :2] = sums[:, 1:].real.T
    means[:, 2:] = sums[:, 1:].imag.T
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: a label without cells, NaN
        means /= label_counts[1:, None]
    return means


REFINE_BOXES = {"median": median_boxes, "mean": mean_boxes}  # refine_statistic -> its per-label box function


def guess_by_centre(boxes: np.ndarray, cells: CellBoxes, height: int, width: int, stride: float) -> np.ndarray:
    """A guessed box for each of ``cells``: the number (1-based, 0 = none) of the earliest of ``boxes`` (K, 4)
    whose central part (half its width and height) holds the centre of the cell's own box, looked up on the
    (H, W) grid of cells of ``stride`` input pixels. Only a starting point for ``assign_from_guess``: any guess gives
    the same labels, a good one saves work."""
    grid = np.zeros((height, width), np.int32)
    centre = (boxes[:, :2] + boxes[:, 2:]) / (2 * stride)  # (K, 2) x, y in cells
    quarter = (boxes[:, 2:] - boxes[:, :2]) / (4 * stride)
    ends = np.empty((2,) + centre.shape)  # first and last + 1 cell of each central part
    np.subtract(centre, quarter, out=ends[0])
    np.add(centre, quarter, out=ends[1])
    np.floor(ends, out=ends)
    ends[1] += 1
    np.clip(ends, 0, np.array([width, height], np.float64), out=ends)
    first, last = ends.astype(np.int64).tolist()
    for k in range(len(boxes) - 1, -1, -1):  # the earliest box painted last
        grid[first[k][1]:last[k][1], first[k][0]:last[k][0]] = k + 1
    at = np.add(cells.boxes[:2], cells.boxes[2:])  # (2, N): the cells' box centres, in cells, truncated
    at *= 0.5 / stride
    np.trunc(at, out=at)
    at[1] *= width  # flat index in float64 (exact below 2^53), cast once
    at[1] += at[0]
    with np.errstate(invalid="ignore"):  # a centre outside the map gives some cell, even past 2^63: a worse guess
        return np.take(grid, at[1].astype(np.intp), mode="clip")


def _settling_ious(others: np.ndarray) -> np.ndarray:
    """(K,) float64: for each of K boxes, the IoU above which a cell's IoU with it proves it the cell's strict
    maximum, (1 + max_{j != k} IoU(k, j)) / 2 + JACCARD_MARGIN (``assign_from_guess``); ``others`` (K, K): the
    boxes' IoUs with each other, diagonal 0."""
    settle = others.max(axis=1, initial=0.0)  # K = 0 (max_instances 0): empty
    settle += 1
    settle /= 2
    settle += JACCARD_MARGIN
    return settle


def assign_from_guess(cells: CellBoxes, boxes: np.ndarray, guess: np.ndarray, t_iou: float,
                      box_iou: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``assign_cells`` of ``cells`` against ``boxes`` (K, 4), starting from a guessed box per cell (``guess`` (N,)
    1-based, 0 = none: the box the cell's previous box refined into, or ``guess_by_centre``). ``box_iou``: the (K, K)
    ``pairwise_iou(boxes, boxes)`` when the caller has it. 1 - IoU is a metric (the Jaccard distance), so a cell
    whose IoU a with box g exceeds (1 + max_{j != g} IoU(g, j)) / 2 has an IoU < a with every other box: g is its
    strict argmax and only ``a >= t_iou`` remains to decide (JACCARD_MARGIN covers the rounding of the IoUs,
    ~1e-15). The other cells go through ``assign_cells``. The labels are exactly those of ``assign_cells``.
    Returns (labels (N,) int32, IoU floor (N,) float64: each settled cell's IoU with its guess, 0 for the others;
    for a labelled cell a lower bound of its IoU with its box, as ``refine_round`` needs)."""
    n, k = cells.area.shape[0], len(boxes)
    if k == 0 or n == 0:
        return np.zeros(n, np.int32), np.zeros(n)
    if k < GUESS_MIN_BOXES:
        return assign_cells(cells, boxes, t_iou), np.zeros(n)
    others = pairwise_iou(boxes, boxes) if box_iou is None else box_iou.copy()
    np.fill_diagonal(others, 0)
    # per guess (0: none, 1..k): x1, y1, x2, y2, area of the box and the IoU above which a cell settles on it
    table = np.empty((6, k + 1))
    table[:4, 1:] = boxes.T
    table[:4, 0] = table[:4, 1]  # no guess: any box, never settled (an IoU is <= 1)
    table[4] = np.maximum(table[2] - table[0], 0) * np.maximum(table[3] - table[1], 0)
    settle = table[5]
    settle[0] = 2.0
    settle[1:] = _settling_ious(others)
    guessed = np.take(table, guess, axis=1)
    overlap = np.minimum(cells.boxes[2:], guessed[2:4])  # (2, N): x and y extents of the intersections
    overlap -= np.maximum(cells.boxes[:2], guessed[:2], out=guessed[:2])
    _clamp_at_zero(overlap)
    iou = np.multiply(overlap[0], overlap[1])  # intersection (its own array: returned, guessed is not kept alive)
    union = np.add(cells.area, guessed[4], out=guessed[4])
    union -= iou
    if not table[4].min() >= 1e-300:  # else union >= box area * (1 - 2^-52) > 0 (see assign_cells)
        np.maximum(union, np.finfo(np.float64).tiny, out=union)
    iou /= union
    settled = iou > guessed[5]
    if t_iou <= settle[1:].min():  # a settled IoU is then >= t_iou
        labels = np.multiply(guess, settled, dtype=np.int32)
    else:
        labels = np.where(settled & (iou >= t_iou), guess, 0).astype(np.int32)
    if not settled.all():
        rest = np.flatnonzero(~settled)
        labels[rest] = assign_cells(np.take(cells.boxes, rest, axis=1), boxes, t_iou)
        iou[rest] = 0
    return labels, iou


def refine_round(cell_boxes: np.ndarray | CellBoxes, labels: np.ndarray, count: int, t_nms: float, t_iou: float,
                 statistic: str = "median", boxes: np.ndarray | None = None,
                 iou_floor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One refinement round (docs/grouper.md, "Refine"): the ``statistic`` (median or mean) box of each of the
    ``count`` boxes' cells (``labels`` (N,) 0..count), boxes without cells dropped, duplicates removed by NMS scored
    by cell count, the survivors in their previous order, cells assigned again (``assign_from_guess``, each starting
    from its own refined box). Returns (boxes (K', 4) float64, labels (N,) int32 of the cells against them, their IoU
    floor (N,) float64, as ``assign_from_guess``).

    When every box has cells and no two refined boxes overlap by more than t_nms (the usual case), NMS keeps them
    all, each cell's guess is its own label, and with ``boxes`` (count, 4), the boxes the cells were assigned to,
    and ``iou_floor`` (N,), a lower bound of each labelled cell's IoU with its box, ``_reassign_certified`` skips
    the cells the bound proves."""
    cells = _as_cell_boxes(cell_boxes)
    index = labels.astype(np.intp)  # bincount and take convert other integer types on every call
    label_counts = np.bincount(index, minlength=count + 1)
    counts = label_counts[1:]
    refined = REFINE_BOXES[statistic](cells, index, label_counts)
    if counts.all():
        certify = boxes is not None and iou_floor is not None
        ious = pairwise_iou(refined, np.concatenate((refined, boxes)) if certify else refined)  # (K, K) or (K, 2K)
        refined_iou = ious[:, :count]
        np.fill_diagonal(refined_iou, 0)
        if not (refined_iou > t_nms).any():
            if certify:
                return (refined,) + _reassign_certified(cells, refined, labels, index, iou_floor,
                                                        ious[:, count:].diagonal(), refined_iou, t_iou)
            return (refined,) + assign_from_guess(cells, refined, index, t_iou, refined_iou)
    present = np.flatnonzero(counts)
    refined = refined[present]
    refined_iou = pairwise_iou(refined, refined)
    kept = np.sort(nms(refined, counts[present], t_nms, len(present), refined_iou))
    refined_into = np.zeros(count + 1, np.intp)  # previous label -> number (1-based) of its surviving refined box
    refined_into[present[kept] + 1] = np.arange(1, len(kept) + 1)
    return (refined[kept],) + assign_from_guess(cells, refined[kept], refined_into[index], t_iou,
                                                refined_iou[np.ix_(kept, kept)])


def _reassign_certified(cells: CellBoxes, refined: np.ndarray, labels: np.ndarray, index: np.ndarray,
                        iou_floor: np.ndarray, moved: np.ndarray, others: np.ndarray,
                        t_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """``assign_from_guess`` of the N ``cells`` against ``refined`` (K, 4), box k refined from the box B_k that the
    cells labelled k (``labels`` (N,) int32, ``index`` the same as intp) were assigned to, for the cells whose
    label the bound below leaves open; the others keep their label. ``iou_floor`` (N,): a lower bound of each
    labelled cell's IoU with its B_k; ``moved`` (K,): IoU(B_k, R_k); ``others`` (K, K): the refined boxes' IoUs
    with each other, diagonal 0. The Jaccard distance is a metric, so IoU(c, R_k) >= IoU(c, B_k) + IoU(B_k, R_k) - 1:
    a cell whose bound exceeds both the settling IoU of ``assign_from_guess`` for R_k and t_iou (each plus
    JACCARD_MARGIN) is labelled k by the full assignment too. Returns (labels (N,) int32, IoU floor (N,))."""
    k = len(refined)
    shift = np.empty(k + 1)  # per label: IoU(B_k, R_k) - 1 (label 0: far below any threshold, never proved)
    shift[0] = -4.0
    np.subtract(moved, 1, out=shift[1:])
    need = np.full(k + 1, t_iou + JACCARD_MARGIN)  # per label: the IoU with R_k that proves the label
    np.maximum(need[1:], _settling_ious(others), out=need[1:])
    floor = np.take(shift, index)
    floor += iou_floor  # lower bound of each cell's IoU with its refined box
    proved = floor > np.take(need, index)
    if proved.all():
        return labels, floor
    rest = np.flatnonzero(~proved)
    rest_cells = CellBoxes(np.take(cells.boxes, rest, axis=1), cells.area[rest])
    new_labels = labels.copy()
    new_labels[rest], floor[rest] = assign_from_guess(rest_cells, refined, index[rest], t_iou, others)
    return new_labels, floor


@functools.lru_cache(maxsize=32)
def _validate_once(config: GrouperConfig, field_types: tuple[type, ...]) -> None:
    """``config.validate()``, remembered for valid configs (frozen, so they stay valid); errors are not cached.
    Keyed by the field types too: an equal config of other types (``True`` for ``1``, ``2.0`` for ``2``) may be
    invalid."""
    config.validate()


def group(prob: np.ndarray, offsets: np.ndarray, stride: float, config: GrouperConfig = GrouperConfig()) -> Instances:
    """Group a probability map ``prob`` (H, W) and box offsets ``offsets`` (H, W, 4) (dx, dy, dw, dh) at
    ``stride`` input pixels per cell into person instances (``docs/grouper.md``, mode ``config.mode``)."""
    try:
        _validate_once(config, tuple(map(type, vars(config).values())))
    except TypeError:  # an unhashable field: validate (and fail) without the cache
        config.validate()
    prob, offsets = _check_inputs(prob, offsets, stride)
    h, w = prob.shape
    if h == 0 or w == 0:
        return _no_instances(h, w)

    flat_prob = prob.ravel()
    peaks = find_peaks(prob, config.t_c)
    if peaks.size == 0:
        return _no_instances(h, w)
    person = np.flatnonzero(flat_prob >= float32_threshold(config.t_fg))
    cells = CellBoxes.from_rows(_decode_cells(offsets, person, w, stride, config.anchor))
    if config.t_c >= config.t_fg:  # every peak is a person cell: its box is decoded already
        peak_boxes = cells.boxes[:, np.searchsorted(person, peaks)].T
    else:
        peak_boxes = _decode_cells(offsets, peaks, w, stride, config.anchor).T
    peak_iou = pairwise_iou(peak_boxes, peak_boxes) if peaks.size <= NMS_BLOCK else None
    keep = nms(peak_boxes, flat_prob[peaks], config.t_nms, config.max_instances, peak_iou)
    kept_boxes = peak_boxes[keep]

    guess = guess_by_centre(kept_boxes, cells, h, w, stride)
    person_labels, iou_floor = assign_from_guess(cells, kept_boxes, guess, config.t_iou,
                                                 None if peak_iou is None else peak_iou[keep][:, keep])
    if config.mode == "refine":
        for _ in range(config.refine_rounds):
            kept_boxes, person_labels, iou_floor = refine_round(cells, person_labels, len(kept_boxes), config.t_nms,
                                                                config.t_iou, config.refine_statistic, kept_boxes,
                                                                iou_floor)

    index = person_labels.astype(np.intp)  # bincount converts other integer types on every call
    counts = np.bincount(index, minlength=len(kept_boxes) + 1)[1:]
    sums = np.bincount(index, weights=flat_prob[person], minlength=len(kept_boxes) + 1)[1:]
    present = counts > 0
    labels = np.zeros(h * w, np.int32)
    if present.all():
        labels[person] = person_labels
        return Instances(labels.reshape(h, w), kept_boxes.astype(np.float32), (sums / counts).astype(np.float32))
    renumber = np.zeros(len(kept_boxes) + 1, np.int32)
    renumber[1:][present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    labels[person] = renumber[index]
    return Instances(
        labels.reshape(h, w),
        kept_boxes[present].astype(np.float32),
        (sums[present] / counts[present]).astype(np.float32),
    )


def _no_instances(height: int, width: int) -> Instances:
    return Instances(np.zeros((height, width), np.int32), np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


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
