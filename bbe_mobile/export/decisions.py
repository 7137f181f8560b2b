"""Which of the grouper's decisions on a reference output an artifact's measured numeric error could flip.

An artifact that differs from its reference by at most ``eps`` per probability can flip every comparison of a
reference value that lies within ``eps`` of its threshold (``t_fg``, ``t_c``) and every order of two values
within ``2 eps`` of each other (a peak against its neighbours, two peak scores in NMS); likewise for box IoUs
(``t_iou``, ``t_nms``, the best against the second-best kept box of a cell). Verification does not count such
decisions against the artifact (docs/export.md, "Decisions the error could flip"). The error is measured on the
image itself and capped at ``FLOAT_NOISE_CAP``: float noise is excused, quantisation error is not.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bbe_mobile.boxes import decode_boxes, pairwise_iou
from bbe_mobile.grouper import GrouperConfig, find_peaks, nms

# The largest error excused, in probability and in IoU: the fp32 limit on prob_max_abs (verify.THRESHOLDS).
# An fp32 artifact's own error is far below it (LiteRT 2e-6); a quantised one's larger error still counts.
FLOAT_NOISE_CAP = 2e-3


@dataclass(frozen=True)
class NearDecisions:
    """``cells`` (H, W) bool: cells whose grouping the error could change: person decision (``t_fg``),
    assignment (``t_iou``, best vs second-best kept box), every cell of a reference instance whose seed could
    vanish (its peak or NMS decision could flip: ``removable`` such instances), and every cell that could join a
    seed that could appear (``addable``). ``prob_error``/``iou_error``: the error bounds used (measured,
    capped)."""

    cells: np.ndarray
    removable: int
    addable: int
    prob_error: float
    iou_error: float


def _flippable_threshold(values: np.ndarray, threshold: float, eps: float) -> np.ndarray:
    """``values >= threshold`` can change under changes of at most ``eps``: threshold - eps <= v < threshold + eps."""
    return (values >= threshold - eps) & (values < threshold + eps)


def _flippable_order(a: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    """``a >= b`` can change when each side moves by at most ``eps``: -2 eps <= a - b < 2 eps."""
    return (a - b >= -2 * eps) & (a - b < 2 * eps)


def _neighbour_max(prob: np.ndarray) -> np.ndarray:
    """Largest in-map 8-neighbour of every cell (-inf for a 1x1 map)."""
    h, w = prob.shape
    padded = np.full((h + 2, w + 2), -np.inf)
    padded[1:-1, 1:-1] = prob
    shifted = [padded[1 + di: 1 + di + h, 1 + dj: 1 + dj + w] for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
    return np.max(shifted, axis=0)


def _cell_boxes(offsets: np.ndarray, cells: np.ndarray, stride: float, config: GrouperConfig) -> np.ndarray:
    rows, cols = np.divmod(cells, offsets.shape[1])
    return decode_boxes(offsets.reshape(-1, 4)[cells].astype(np.float64), (cols + 0.5) * stride,
                        (rows + 0.5) * stride, config.anchor)


def near_decisions(p_ref: np.ndarray, o_ref: np.ndarray, p_art: np.ndarray, o_art: np.ndarray, stride: float,
                   config: GrouperConfig, cap: float = FLOAT_NOISE_CAP) -> NearDecisions:
    """The decisions of grouping ``p_ref`` (H, W) / ``o_ref`` (H, W, 4) that the artifact's error (``p_art``,
    ``o_art``: the same image through the artifact) could flip.

    Probability error: max |p_art - p_ref| over the map. IoU error: max |IoU_art - IoU_ref| over every IoU the
    grouper computes on this image (each candidate cell's box and each peak box against the reference's peak
    boxes), the boxes decoded from each model's own offsets at the same cells. Both capped at ``cap``."""
    p_ref = np.asarray(p_ref, np.float64)
    flat = p_ref.ravel()
    eps_p = min(float(np.abs(np.asarray(p_art, np.float64) - p_ref).max()) if p_ref.size else 0.0, cap)
    near = _flippable_threshold(flat, config.t_fg, eps_p)
    nb = _neighbour_max(p_ref).ravel() if p_ref.size else flat
    # cells whose peak status could flip: p on t_c (and not clearly below a neighbour), or p tied with its
    # largest neighbour (and not clearly below t_c)
    flip = np.flatnonzero((_flippable_threshold(flat, config.t_c, eps_p) & (flat >= nb - 2 * eps_p))
                          | ((flat >= config.t_c - eps_p) & _flippable_order(flat, nb, eps_p)))
    peaks = find_peaks(p_ref, config.t_c)
    seeds = np.union1d(peaks, flip)  # every cell that is, or could become, a peak
    if not seeds.size or config.max_instances == 0:
        return NearDecisions(near.reshape(p_ref.shape), 0, 0, eps_p, 0.0)
    candidates = np.flatnonzero(flat >= config.t_fg - eps_p)  # every cell that is, or could become, a person
    seed_ref, seed_art = _cell_boxes(o_ref, seeds, stride, config), _cell_boxes(o_art, seeds, stride, config)
    cell_ref = _cell_boxes(o_ref, candidates, stride, config)
    iou_ref, pairs_ref = pairwise_iou(cell_ref, seed_ref), pairwise_iou(seed_ref, seed_ref)
    eps_iou = min(max(float(np.abs(pairwise_iou(_cell_boxes(o_art, candidates, stride, config), seed_art)
                                   - iou_ref).max(initial=0.0)),
                      float(np.abs(pairwise_iou(seed_art, seed_art) - pairs_ref).max(initial=0.0))), cap)
    if eps_p == 0 and eps_iou == 0:  # the same grouping inputs: nothing can flip
        return NearDecisions(near.reshape(p_ref.shape), 0, 0, eps_p, eps_iou)
    is_peak = np.isin(seeds, peaks)
    kept = np.flatnonzero(is_peak)[nms(seed_ref[is_peak], flat[seeds[is_peak]], config.t_nms, config.max_instances)]
    # NMS decisions that could flip: an overlap on t_nms, or two overlapping seeds whose score order could swap
    # (any two when the max_instances cut applies)
    overlapping = pairs_ref > config.t_nms - eps_iou
    if len(nms(seed_ref[is_peak], flat[seeds[is_peak]], config.t_nms, int(is_peak.sum()))) > config.max_instances:
        overlapping[:] = True
    scores = flat[seeds]
    unsure = (_flippable_threshold(pairs_ref, config.t_nms, eps_iou)
              | (overlapping & _flippable_order(scores[:, None], scores[None, :], eps_p)))
    np.fill_diagonal(unsure, False)
    unsure_seed = np.isin(seeds, flip) | unsure.any(axis=1)
    is_kept = np.zeros(len(seeds), bool)
    is_kept[kept] = True
    ranked = -np.sort(-iou_ref[:, kept], axis=1)
    best = ranked[:, 0] if kept.size else np.full(len(candidates), -np.inf)
    second = ranked[:, 1] if kept.size > 1 else np.full(len(candidates), -np.inf)
    owner = kept[np.argmax(iou_ref[:, kept], axis=1)] if kept.size else np.zeros(len(candidates), np.int64)
    could_join = best >= config.t_iou - eps_iou
    # (an exact IoU tie goes to the earlier kept box: the kept order can change with the scores)
    cell_near = _flippable_threshold(best, config.t_iou, eps_iou) | (could_join & (best - second <= 2 * eps_iou)
                                                                     & (eps_iou > 0 or eps_p > 0))
    # Seeds that could vanish (kept, ``removable``) or appear (not kept, ``addable``), to a fixed point: a kept
    # seed whose own decision could flip may vanish; a seed not kept may appear unless a seed kept for sure
    # suppresses it for sure; a kept seed that such a seed could suppress may vanish in turn.
    competitive = (pairs_ref > config.t_nms - eps_iou) & (scores[:, None] >= scores[None, :] - 2 * eps_p)
    may_vanish = unsure_seed & is_kept
    while True:
        sure_kept = is_kept & ~may_vanish
        surely_suppressed = (sure_kept[None, :] & (scores[None, :] > scores[:, None] + 2 * eps_p)
                             & (pairs_ref > config.t_nms + eps_iou)).any(axis=1)
        may_appear = ~is_kept & ~surely_suppressed
        grown = may_vanish | (is_kept & (competitive & may_appear[:, None]).any(axis=0))
        if (grown == may_vanish).all():
            break
        may_vanish = grown
    removable, addable = np.flatnonzero(may_vanish), np.flatnonzero(may_appear)
    cell_near |= could_join & np.isin(owner, removable)  # a seed that could vanish takes its cells with it
    for k in addable:  # a seed that could appear takes the cells it could win
        cell_near |= (iou_ref[:, k] >= config.t_iou - eps_iou) & (iou_ref[:, k] >= best - 2 * eps_iou)
    near[candidates[cell_near]] = True
    return NearDecisions(near.reshape(p_ref.shape), len(removable), len(addable), eps_p, eps_iou)
