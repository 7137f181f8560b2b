"""The video tracker, exactly as ``docs/tracker.md`` specifies: smoothing of the person probability with a
scene-change reset, stable person IDs by mask IoU at model stride, and the main person. Pure NumPy.

Every step is pure: ``(state, this frame) -> (state, output)``; states are frozen and never mutated.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackerConfig:
    """Smoothing (weight of the new frame), scene change, association, track life and main-person parameters
    (frames, IoUs and probabilities in [0, 1]); ``docs/tracker.md`` gives each one's meaning."""

    smoothing: float = 0.6
    t_scene: float = 0.6
    t_fg: float = 0.5
    t_match: float = 0.2
    min_hits: int = 3
    max_age: int = 15
    w_area: float = 1.0
    w_center: float = 0.5
    w_age: float = 0.25
    age_frames: int = 30
    switch_margin: float = 0.1
    switch_frames: int = 10

    def validate(self) -> None:
        ranges = {"smoothing": (0.0, 1.0, False), "t_scene": (0.0, 1.0, True), "t_fg": (0.0, 1.0, True),
                  "t_match": (0.0, 1.0, False)}
        for name, (low, high, low_included) in ranges.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and (low <= value if low_included else low < value) and value <= high):
                raise ValueError(f"TrackerConfig.{name} must be in {'[' if low_included else '('}{low}, {high}], "
                                 f"got {value}")
        for name in ("w_area", "w_center", "w_age", "switch_margin"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"TrackerConfig.{name} must be finite and >= 0, got {value}")
        for name, low in (("min_hits", 1), ("max_age", 0), ("age_frames", 1), ("switch_frames", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"TrackerConfig.{name} must be an integer >= {low}, got {value!r}")


@dataclass(frozen=True)
class Track:
    """One track: ``id`` (0 while tentative), consecutive ``hits`` and ``misses``, ``age`` (frames since birth) and
    ``mask``, its last matched cells (flat raster indices, ascending, int64)."""

    id: int
    hits: int
    misses: int
    age: int
    mask: np.ndarray


@dataclass(frozen=True)
class TrackerState:
    """Everything a video stream carries from frame to frame; ``TrackerState()`` starts a new video.
    ``smoothed``: the last smoothed probability map (H, W) float32 or None; ``shape``: the map shape the tracks'
    masks refer to."""

    smoothed: np.ndarray | None = None
    tracks: tuple[Track, ...] = ()
    shape: tuple[int, int] | None = None
    next_id: int = 1
    main_id: int = 0
    challenger_id: int = 0
    challenger_frames: int = 0


@dataclass(frozen=True)
class TrackedFrame:
    """One frame's tracker output: ``ids`` (M,) int32 per grouper instance (0: a tentative track), ``main_id``
    (0: none) and whether smoothing was reset by a scene change."""

    ids: np.ndarray
    main_id: int
    scene_change: bool


def _check_map(prob: np.ndarray) -> np.ndarray:
    prob = np.asarray(prob)
    if prob.ndim != 2:
        raise ValueError(f"prob must be (H, W), got shape {prob.shape}")
    if not (np.issubdtype(prob.dtype, np.floating) or np.issubdtype(prob.dtype, np.integer)):
        raise ValueError(f"prob must be a float array, got dtype {prob.dtype}")
    prob = np.ascontiguousarray(prob, dtype=np.float32)
    if not np.isfinite(prob).all():
        raise ValueError("prob contains NaN or inf")
    return prob


def smooth(previous: np.ndarray | None, prob: np.ndarray, config: TrackerConfig) -> tuple[np.ndarray, bool]:
    """Step 1: (new smoothed map (H, W) float32, scene change). ``previous``: the last smoothed map or None."""
    prob = _check_map(prob)
    if previous is None or previous.shape != prob.shape:
        return prob, True
    p0, p1 = previous.astype(np.float64), prob.astype(np.float64)  # float64 comparisons, as in the spec
    was, now = p0 >= config.t_fg, p1 >= config.t_fg
    inter = int(np.count_nonzero(was & now))
    union = int(np.count_nonzero(was | now))
    if union > 0 and (union - inter) > config.t_scene * union:
        return prob, True
    return (p0 + config.smoothing * (p1 - p0)).astype(np.float32), False


def _check_labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an (H, W) integer map, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0")
    return labels.astype(np.int64, copy=False)


def _compare_candidates(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """Order of (inter, union, track position, detection): IoU descending by cross products, then positions."""
    left, right = a[0] * b[1], b[0] * a[1]
    if left != right:
        return -1 if left > right else 1
    return -1 if a[2:] < b[2:] else (1 if a[2:] > b[2:] else 0)


def associate(tracks: tuple[Track, ...], flat_labels: np.ndarray, detections: int, t_match: float) -> dict[int, int]:
    """Step 2: {track position: detection number (1-based)} of the greedy assignment by descending mask IoU."""
    if not tracks or not detections:
        return {}
    areas = np.bincount(flat_labels, minlength=detections + 1)
    candidates = []
    for k, track in enumerate(tracks):
        inters = np.bincount(flat_labels[track.mask], minlength=detections + 1)
        for d in np.flatnonzero(inters[1:]) + 1:
            inter = int(inters[d])
            union = len(track.mask) + int(areas[d]) - inter
            if inter >= t_match * union:
                candidates.append((inter, union, k, int(d)))
    candidates.sort(key=functools.cmp_to_key(_compare_candidates))
    taken: dict[int, int] = {}
    used = set()
    for _, _, k, d in candidates:
        if k not in taken and d not in used:
            taken[k] = d
            used.add(d)
    return taken


def _main_score(n: int, row_sum: int, col_sum: int, age: int, content_hw: tuple[float, float],
                config: TrackerConfig) -> float:
    """Step 4's score of a matched confirmed track of ``n`` cells whose row and column indices sum to ``row_sum``,
    ``col_sum``."""
    content_h, content_w = content_hw
    area = min(1.0, n / (content_h * content_w))
    cx = col_sum / n + 0.5
    cy = row_sum / n + 0.5
    ux = (cx - content_w / 2) / (content_w / 2)
    uy = (cy - content_h / 2) / (content_h / 2)
    center = max(0.0, 1.0 - (ux * ux + uy * uy) / 2)
    grown = min(age, config.age_frames) / config.age_frames
    return config.w_area * area + config.w_center * center + config.w_age * grown


def update_tracks(state: TrackerState, labels: np.ndarray, config: TrackerConfig = TrackerConfig(),
                  content_hw: tuple[float, float] | None = None) -> tuple[TrackerState, TrackedFrame]:
    """Steps 2-4 on this frame's grouper ``labels`` (H, W) (instances 1..M): the new state (its ``smoothed`` map
    unchanged) and the frame's IDs and main person. ``content_hw``: the map extent showing the image, in cells
    (default: the whole map)."""
    config.validate()
    labels = _check_labels(labels)
    h, w = labels.shape
    content_h, content_w = (float(h), float(w)) if content_hw is None else map(float, content_hw)
    if content_hw is not None and not (math.isfinite(content_h) and math.isfinite(content_w)
                                       and content_h > 0 and content_w > 0):
        raise ValueError(f"content_hw must be finite and > 0, got {content_hw}")
    flat = labels.ravel()
    detections = int(flat.max()) if flat.size else 0
    tracks = state.tracks if state.shape == (h, w) else ()
    taken = associate(tracks, flat, detections, config.t_match)

    person = np.flatnonzero(flat)
    order = person[np.argsort(flat[person], kind="stable")]  # by label, ascending cell index within one
    bounds = np.searchsorted(flat[order], np.arange(1, detections + 2))
    cells = [order[:0]] + [order[bounds[d - 1]:bounds[d]] for d in range(1, detections + 1)]
    rows, cols = np.divmod(person, w)  # index sums per label: float64 sums of integers < 2**53 are exact
    row_sums = np.bincount(flat[person], weights=rows, minlength=detections + 1)
    col_sums = np.bincount(flat[person], weights=cols, minlength=detections + 1)

    next_id = state.next_id
    survivors, owner = [], {}
    for k, track in enumerate(tracks):
        if k in taken:
            d = taken[k]
            hits = track.hits + 1
            track_id = track.id
            if track_id == 0 and hits >= config.min_hits:
                track_id, next_id = next_id, next_id + 1
            track = Track(track_id, hits, 0, track.age + 1, cells[d])
            owner[d] = len(survivors)
        else:
            if track.id == 0 or track.misses + 1 > config.max_age:
                continue
            track = Track(track.id, 0, track.misses + 1, track.age + 1, track.mask)
        survivors.append(track)
    for d in range(1, detections + 1):
        if d not in owner and len(cells[d]):
            track_id = 0
            if config.min_hits <= 1:
                track_id, next_id = next_id, next_id + 1
            owner[d] = len(survivors)
            survivors.append(Track(track_id, 1, 0, 0, cells[d]))
    ids = np.array([survivors[owner[d]].id if d in owner else 0 for d in range(1, detections + 1)], np.int32)

    detection_of = {position: d for d, position in owner.items()}
    scores = {t.id: _main_score(len(t.mask), int(row_sums[detection_of[k]]), int(col_sums[detection_of[k]]), t.age,
                                (content_h, content_w), config)
              for k, t in enumerate(survivors) if t.id and t.misses == 0}
    leader = min(scores, key=lambda i: (-scores[i], i)) if scores else 0
    main_id, challenger_id, challenger_frames = state.main_id, 0, 0
    if not any(t.id == main_id for t in survivors if t.id):
        main_id = leader
    elif leader and leader != main_id and scores[leader] > scores.get(main_id, 0.0) + config.switch_margin:
        challenger_frames = state.challenger_frames + 1 if leader == state.challenger_id else 1
        challenger_id = leader
        if challenger_frames >= config.switch_frames:
            main_id, challenger_id, challenger_frames = leader, 0, 0
    new_state = dataclasses.replace(state, tracks=tuple(survivors), shape=(h, w), next_id=next_id, main_id=main_id,
                                    challenger_id=challenger_id, challenger_frames=challenger_frames)
    return new_state, TrackedFrame(ids, main_id, False)


def track_frame(state: TrackerState, prob: np.ndarray, group_fn, config: TrackerConfig = TrackerConfig(),
                content_hw: tuple[float, float] | None = None):
    """All steps on one frame: smooth ``prob`` (H, W), group it with ``group_fn(smoothed) -> Instances`` (the
    grouper with this frame's offsets) and track the instances. Returns (state, instances, TrackedFrame)."""
    config.validate()
    smoothed, scene_change = smooth(state.smoothed, prob, config)
    instances = group_fn(smoothed)
    state, frame = update_tracks(dataclasses.replace(state, smoothed=smoothed), instances.labels, config, content_hw)
    return state, instances, dataclasses.replace(frame, scene_change=scene_change)
