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

# The largest error excused, in probability and in IoU: float noise, 25x an fp32 artifact's own (LiteRT 2e-6,
# the property tests 1e-5). Not more: the bundled model's saturated probability plateaus hold many near-ties, so
# a cap of 1e-4 already excused 140 seeds (8 of 32 instances not compared on 6 images) and 1e-3 excused 612
# (22 of 32): instance agreement would stop measuring quantised artifacts, whose larger error still counts.
FLOAT_NOISE_CAP = 5e-5
# The same for IoUs: an offsets error of 5e-5 moves a box corner by up to ~5e-5 x (anchor + half the box) pixels
# and an IoU by up to ~10x the offsets error on these boxes; 1e-3 leaves a factor 2.
IOU_NOISE_CAP = 1e-3


@dataclass(frozen=True)
class NearDecisions:
    """``person_cells`` (H, W) bool: cells whose person decision (``t_fg``) the error could flip. ``cells``: those
    and every cell whose instance the error could change: its assignment (``t_iou``, best against second-best
    kept box, a kept box that could move to a tied neighbour's), every cell of a reference instance whose seed
    could vanish (its peak on ``t_c``, or an NMS decision: ``removable`` such instances), every cell that could
    join a seed that could appear (``addable``). ``prob_error``/``iou_error``: the bounds used (measured, capped)."""

    person_cells: np.ndarray
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
                   config: GrouperConfig, cap: float = FLOAT_NOISE_CAP, iou_cap: float = IOU_NOISE_CAP) -> NearDecisions:
    """The decisions of grouping ``p_ref`` (H, W) / ``o_ref`` (H, W, 4) that the artifact's error (``p_art``,
    ``o_art``: the same image through the artifact) could flip.

    Probability error: max |p_art - p_ref| over the map. IoU error: max |IoU_art - IoU_ref| over every IoU the
    grouper could compute on this image (each candidate cell's box and each seed's box against every seed's
    box), the boxes decoded from each model's own offsets at the same cells. Capped at ``cap`` and ``iou_cap``.

    A peak tied with a neighbour does not vanish: one cell of a tied plateau stays a peak, so its instance keeps
    a seed among the plateau's cells (its "alternatives"); the cells whose assignment could change with that
    choice are near."""
    from scipy import ndimage  # noqa: PLC0415

    p_ref = np.asarray(p_ref, np.float64)
    shape, flat = p_ref.shape, p_ref.ravel()
    eps_p = min(float(np.abs(np.asarray(p_art, np.float64) - p_ref).max()) if p_ref.size else 0.0, cap)
    person_near = _flippable_threshold(flat, config.t_fg, eps_p)
    nb = _neighbour_max(p_ref).ravel() if p_ref.size else flat
    on_t_c = _flippable_threshold(flat, config.t_c, eps_p) & (flat >= nb - 2 * eps_p)  # could stop or start being one
    tied = (flat >= config.t_c - eps_p) & _flippable_order(flat, nb, eps_p) & ~on_t_c  # a plateau cell
    peaks = find_peaks(p_ref, config.t_c)
    seeds = np.union1d(peaks, np.flatnonzero(on_t_c | tied))  # every cell that is, or could become, a peak
    if not seeds.size or config.max_instances == 0:
        return NearDecisions(person_near.reshape(shape), person_near.reshape(shape), 0, 0, eps_p, 0.0)
    candidates = np.flatnonzero(flat >= config.t_fg - eps_p)  # every cell that is, or could become, a person
    seed_ref, seed_art = _cell_boxes(o_ref, seeds, stride, config), _cell_boxes(o_art, seeds, stride, config)
    iou_ref, pairs_ref = pairwise_iou(_cell_boxes(o_ref, candidates, stride, config), seed_ref), \
        pairwise_iou(seed_ref, seed_ref)
    eps_iou = min(max(float(np.abs(pairwise_iou(_cell_boxes(o_art, candidates, stride, config), seed_art)
                                   - iou_ref).max(initial=0.0)),
                      float(np.abs(pairwise_iou(seed_art, seed_art) - pairs_ref).max(initial=0.0))), iou_cap)
    if eps_p == 0 and eps_iou == 0:  # the same grouping inputs: nothing can flip
        return NearDecisions(person_near.reshape(shape), person_near.reshape(shape), 0, 0, eps_p, eps_iou)
    is_peak = np.isin(seeds, peaks)
    kept = np.flatnonzero(is_peak)[nms(seed_ref[is_peak], flat[seeds[is_peak]], config.t_nms, config.max_instances)]
    is_kept = np.zeros(len(seeds), bool)
    is_kept[kept] = True
    # plateaus: 8-connected groups of peaks and tied cells; a kept seed's alternatives are its group's seeds
    plateau_mask = np.zeros(flat.size, bool)
    plateau_mask[seeds[is_peak | np.isin(seeds, np.flatnonzero(tied))]] = True
    groups = ndimage.label(plateau_mask.reshape(shape), structure=np.ones((3, 3)))[0].ravel()[seeds]
    kept_group = {int(groups[k]): k for k in kept} if kept.size else {}
    alternative_of = np.array([kept_group.get(int(g), -1) if g else -1 for g in groups])  # kept seed or -1
    # NMS decisions that could flip: an overlap on t_nms, or two overlapping seeds whose score order could swap
    # (any two when the max_instances cut applies), leaving out pairs of alternatives of the same kept seed
    scores = flat[seeds]
    overlapping = pairs_ref > config.t_nms - eps_iou
    if len(nms(seed_ref[is_peak], flat[seeds[is_peak]], config.t_nms, int(is_peak.sum()))) > config.max_instances:
        overlapping[:] = True
    unsure = (_flippable_threshold(pairs_ref, config.t_nms, eps_iou)
              | (overlapping & _flippable_order(scores[:, None], scores[None, :], eps_p)))
    same_group = (groups[:, None] == groups[None, :]) & (groups[:, None] > 0)
    unsure &= ~same_group
    unsure_seed = np.isin(seeds, np.flatnonzero(on_t_c)) | unsure.any(axis=1)
    # Seeds that could vanish (kept, ``removable``) or appear (not kept, not an alternative: ``addable``), to a
    # fixed point: a kept seed whose own decision could flip may vanish; another seed may appear unless a seed
    # kept for sure suppresses it for sure; a kept seed that such a seed could suppress may vanish in turn.
    competitive = overlapping & (scores[:, None] >= scores[None, :] - 2 * eps_p)
    alternative = (alternative_of >= 0) & ~is_kept
    may_vanish = is_kept & (unsure_seed | (competitive & alternative[:, None] & ~same_group).any(axis=0))
    # a kept seed suppresses for sure only what each of its alternatives would suppress too
    members = [(alternative_of == k) | (np.arange(len(seeds)) == k) for k in range(len(seeds))]
    low_overlap = np.stack([pairs_ref[m].min(axis=0) for m in members])  # (kept or any seed, seed)
    low_score = np.array([scores[m].min() for m in members])
    while True:
        sure_kept = is_kept & ~may_vanish
        surely_suppressed = (sure_kept[None, :] & (low_score[None, :] > scores[:, None] + 2 * eps_p)
                             & (low_overlap.T > config.t_nms + eps_iou)).any(axis=1)
        may_appear = ~is_kept & (alternative_of < 0) & ~surely_suppressed
        grown = may_vanish | (is_kept & (competitive & may_appear[:, None]).any(axis=0))
        if (grown == may_vanish).all():
            break
        may_vanish = grown
    if not kept.size:  # nobody is assigned; a seed that could appear could take the cells it overlaps
        appear = iou_ref[:, may_appear].max(axis=1, initial=-np.inf) >= config.t_iou - eps_iou
        near = person_near.copy()
        near[candidates[appear]] = True
        return NearDecisions(person_near.reshape(shape), near.reshape(shape), 0, int(may_appear.sum()), eps_p,
                             eps_iou)
    # each kept instance's IoU with a cell ranges over its seed and its seed's alternatives
    low = np.stack([iou_ref[:, (alternative_of == k) | (np.arange(len(seeds)) == k)].min(axis=1) for k in kept], 1)
    high = np.stack([iou_ref[:, (alternative_of == k) | (np.arange(len(seeds)) == k)].max(axis=1) for k in kept], 1)
    tie_margin = 2 * eps_iou if eps_iou > 0 else (np.spacing(1.0) if eps_p > 0 else 0.0)  # equal IoUs: kept order
    best = np.argmax(low, axis=1)
    rows = np.arange(len(candidates))
    others_high = np.where(np.arange(len(kept))[None, :] == best[:, None], -np.inf, high).max(axis=1)
    surely_assigned = (low[rows, best] >= config.t_iou + eps_iou) & (low[rows, best] - others_high > tie_margin)
    surely_alone = high.max(axis=1) < config.t_iou - eps_iou
    could_join = high.max(axis=1) >= config.t_iou - eps_iou
    cell_near = ~(surely_assigned | surely_alone)
    cell_near |= could_join & np.isin(kept[best], np.flatnonzero(may_vanish))  # a seed that could vanish...
    for k in np.flatnonzero(may_appear):  # ...and one that could appear take their cells with them
        cell_near |= (iou_ref[:, k] >= config.t_iou - eps_iou) & (iou_ref[:, k] >= low[rows, best] - 2 * eps_iou)
    near = person_near.copy()
    near[candidates[cell_near]] = True
    return NearDecisions(person_near.reshape(shape), near.reshape(shape), int(may_vanish.sum()),
                         int(may_appear.sum()), eps_p, eps_iou)
