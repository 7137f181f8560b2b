"""Golden tracking sequences: per frame the grouper input and the expected smoothed map, labels, IDs and main
person (``docs/tracker.md``), which Python, Swift and Kotlin must reproduce bit for bit.

Format (``tests/golden/``, beside the grouper cases): ``tracking.json`` lists the sequence names; sequence ``NAME`` is
``NAME.json`` (sizes, frame count, stride, content extent in cells, grouper and tracker configs, per frame
``instances``, ``ids``, ``main_id``, ``scene_change``) plus raw little-endian row-major files of all frames one after
the other: ``NAME.prob.f32`` (T·H·W float32), ``NAME.offsets.f32`` (T·H·W·4 float32), and the expected
``NAME.smoothed.f32`` (T·H·W float32, bit-exact) and ``NAME.labels.i32`` (T·H·W int32, the grouper on the smoothed
map). Every frame's grouper decisions on its smoothed map are at least ``MIN_MARGIN`` from flipping.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from bbe_mobile.golden import MIN_MARGIN, _blank, _person, decision_margin, grouper_doc
from bbe_mobile.grouper import GrouperConfig, group
from bbe_mobile.tracker import TrackerConfig, TrackerState, track_frame
from bbe_mobile.utils.json_files import JsonFileError, read_json_object

INDEX = "tracking.json"
BACKGROUND = 0.05  # person probability of the background cells
BENCH_SEQUENCE = "track_bench_129_10"


@dataclasses.dataclass(frozen=True)
class TrackingSequence:
    """Frames of grouper input (``prob`` (T, H, W), ``offsets`` (T, H, W, 4)) with their configs."""

    name: str
    description: str
    prob: np.ndarray
    offsets: np.ndarray
    stride: float = 4.0
    grouper: GrouperConfig = GrouperConfig()
    tracker: TrackerConfig = TrackerConfig()
    content_hw: tuple[float, float] | None = None


def render(frames: list[list[tuple[tuple[float, float, float, float], float]]], h: int, w: int,
           stride: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Maps (T, H, W), (T, H, W, 4) of frames, each a list of people (box x1 y1 x2 y2 in input px, peak
    probability) painted back to front on a background of ``BACKGROUND``."""
    probs, offsets = [], []
    for people in frames:
        p, o = _blank(h, w)
        p += BACKGROUND
        for box, peak in people:
            _person(p, o, box, stride, peak=peak, edge=0.7)
        probs.append(p)
        offsets.append(o)
    return np.stack(probs), np.stack(offsets)


def _shift(box, dx: float, dy: float = 0.0):
    return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def sequences() -> list[TrackingSequence]:
    """The hand-made sequences and the 129x129, 10-people benchmark sequence."""
    out = []
    still, walker = (84, 20, 124, 112), (-30, 16, 14, 108)
    frames = [[(still, 0.9), (_shift(walker, 9 * t), 0.93)] for t in range(22)]
    out.append(TrackingSequence("track_crossing", "a person walks across the frame in front of one standing still",
                                *render(frames, 32, 48)))

    small, big, flash = (8, 40, 44, 110), (70, 10, 140, 124), (150, 30, 184, 100)
    frames = []
    for t in range(24):
        people = []
        if t < 8 or 10 <= t < 15 or t >= 20:
            people.append((_shift(small, t % 3), 0.92))
        if t in (2, 3):
            people.append((flash, 0.88))
        if t >= 4:
            people.append((big, 0.95))
        frames.append(people)
    out.append(TrackingSequence(
        "track_life", "birth after min_hits, a two-frame flash (smoothing hides its first frame) that dies tentative, a 2-frame gap that keeps the ID, "
        "a 5-frame gap that ends it (a new ID after), the main person switching to a bigger central person after "
        "switch_frames", *render(frames, 32, 48),
        tracker=TrackerConfig(min_hits=2, max_age=3, switch_frames=3), content_hw=(30.5, 48.0)))

    left, right, centre = (10, 20, 60, 110), (120, 30, 170, 120), (60, 10, 110, 100)
    frames = [[(left, 0.86 if t % 2 else 0.95)] for t in range(6)]
    frames += [[(right, 0.9), (centre, 0.85 if t % 2 else 0.94)] for t in range(6)]
    out.append(TrackingSequence("track_scene_cut", "a scene cut resets the smoothing; probabilities that alternate "
                                "between frames are averaged", *render(frames, 32, 48),
                                tracker=TrackerConfig(smoothing=0.5)))
    out.append(bench_sequence())
    return out


def bench_sequence(size: int = 129, people: int = 10, frames: int = 8, stride: float = 4.0) -> TrackingSequence:
    """``people`` people drifting on a ``size`` x ``size`` map for ``frames`` frames (the tracker benchmark case);
    the first seed whose every frame is margin-safe."""
    side = size * stride
    for seed in range(100):
        rng = np.random.default_rng(24_000 + seed)
        bw = rng.uniform(40, 70, people)
        boxes = np.stack([rng.uniform(0, side - bw), rng.uniform(0, side - 2 * bw)], 1)
        velocity = rng.uniform(-6, 6, (people, 2))
        peaks = rng.uniform(0.85, 0.98, people)
        seq = [[((x, y, x + w, y + 2 * w), peak) for (x, y), w, peak in zip(boxes + t * velocity, bw, peaks)]
               for t in range(frames)]
        candidate = TrackingSequence(BENCH_SEQUENCE, f"benchmark: {size}x{size} map, {people} people drifting for "
                                     f"{frames} frames", *render(seq, size, size, stride), stride=stride)
        if _margin(candidate) >= MIN_MARGIN:
            return candidate
    raise RuntimeError("no margin-safe tracking benchmark sequence")


def run_sequence(seq: TrackingSequence):
    """(smoothed (T, H, W), labels (T, H, W), per-frame records) of the tracker run over ``seq``."""
    state, smoothed, labels, records = TrackerState(), [], [], []
    for prob, offsets in zip(seq.prob, seq.offsets):
        state, instances, frame = track_frame(state, prob, lambda s: group(s, offsets, seq.stride, seq.grouper),
                                              seq.tracker, seq.content_hw)
        smoothed.append(state.smoothed)
        labels.append(instances.labels)
        records.append({"instances": len(instances), "ids": frame.ids.tolist(), "main_id": frame.main_id,
                        "scene_change": frame.scene_change})
    return np.stack(smoothed), np.stack(labels), records


def _margin(seq: TrackingSequence, smoothed: np.ndarray | None = None) -> float:
    """Smallest distance of a grouper decision from flipping over the frames' ``smoothed`` maps (run if None)."""
    smoothed = run_sequence(seq)[0] if smoothed is None else smoothed
    return min(decision_margin(s, o, seq.stride, seq.grouper) for s, o in zip(smoothed, seq.offsets))


def write_tracking_golden(out_dir: str | Path, seqs: list[TrackingSequence]) -> list[str]:
    """Write the sequences and ``tracking.json`` into ``out_dir``; returns the sequence names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for seq in seqs:
        smoothed, labels, records = run_sequence(seq)
        margin = _margin(seq, smoothed)
        if margin < MIN_MARGIN:
            raise RuntimeError(f"tracking sequence {seq.name}: a grouper decision lies {margin:.2e} from flipping")
        t, h, w = seq.prob.shape
        files = {key: f"{seq.name}.{key}.{ext}" for key, ext in
                 (("prob", "f32"), ("offsets", "f32"), ("smoothed", "f32"), ("labels", "i32"))}
        content = seq.content_hw or (float(h), float(w))
        doc = {"name": seq.name, "description": seq.description, "frames": t, "height": h, "width": w,
               "stride": seq.stride, "content_height": content[0], "content_width": content[1],
               "grouper": grouper_doc(seq.grouper), "tracker": dataclasses.asdict(seq.tracker),
               **{f"{key}_file": name for key, name in files.items()}, "expected": records}
        seq.prob.astype("<f4").tofile(out / files["prob"])
        seq.offsets.astype("<f4").tofile(out / files["offsets"])
        smoothed.astype("<f4").tofile(out / files["smoothed"])
        labels.astype("<i4").tofile(out / files["labels"])
        (out / f"{seq.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        names.append(seq.name)
    (out / INDEX).write_text(json.dumps({"format": 1, "sequences": names}, indent=1) + "\n")
    return names


def read_tracking_golden(directory: str | Path, name: str):
    """(doc, prob (T, H, W), offsets (T, H, W, 4), smoothed (T, H, W), labels (T, H, W)) of sequence ``name``."""
    d = Path(directory)
    try:
        doc = read_json_object(d / f"{name}.json")
    except JsonFileError as exc:
        raise ValueError(str(exc)) from None
    t, h, w = doc["frames"], doc["height"], doc["width"]
    arrays = [np.fromfile(d / doc[f"{key}_file"], dtype).reshape(shape) for key, dtype, shape in
              (("prob", "<f4", (t, h, w)), ("offsets", "<f4", (t, h, w, 4)), ("smoothed", "<f4", (t, h, w)),
               ("labels", "<i4", (t, h, w)))]
    return (doc, *arrays)


def read_tracking_index(directory: str | Path) -> list[str]:
    """Sequence names listed in ``directory/tracking.json``."""
    return json.loads((Path(directory) / INDEX).read_text())["sequences"]
