"""Golden vectors for the grouper: language-neutral cases that Python, Swift and Kotlin must reproduce exactly.

Format (``tests/golden/``): ``index.json`` lists the case names; case ``NAME`` is ``NAME.json`` (sizes, stride,
config, expected ``boxes`` and ``scores``, file names, optional ``image`` block for the letterbox upsampling)
plus raw little-endian row-major files ``NAME.prob.f32`` (H·W float32), ``NAME.offsets.f32`` (H·W·4 float32),
``NAME.labels.i32`` (H·W int32) and, with an ``image`` block, ``NAME.image_labels.i32`` (h0·w0 int32).
Every decision in a case is at least ``MIN_MARGIN`` away from a threshold or a tie (checked on generation).
A case's ``config`` lists ``mode`` and ``refine_rounds`` only for mode ``refine`` (absent: the paper's mode, so the
older cases stay byte-identical) and ``refine_statistic`` only when it is ``mean`` (absent: ``median``); a refine
case may reuse another case's input files (``prob_file``/``offsets_file``).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from bbe_mobile.boxes import anchor_centers, decode_boxes, encode_boxes, pairwise_iou
from bbe_mobile.grouper import (REFINE_BOXES, GrouperConfig, Instances, assign_cells, boxes_to_image, find_peaks,
                                group, labels_to_image, nms, refine_round)
from bbe_mobile.utils.json_files import JsonFileError, read_json_object, show_value

MIN_MARGIN = 1e-4
BENCH_SIZES = (65, 129, 257)
BENCH_PEOPLE = (1, 5, 10, 20)
REFINE_SUFFIX = "_refine"  # the refine-mode variant of case NAME is NAME_refine (same input files)
REFINE_BENCH_CASES = ("bench_65_10", "bench_129_1", "bench_129_5", "bench_129_10", "bench_129_20", "bench_257_10")
MEAN_SUFFIX = "_mean"  # the refine_statistic "mean" variant of refine case NAME is NAME_mean (same input files)
MEAN_BENCH_CASES = ("bench_129_10", "bench_129_20")


@dataclasses.dataclass(frozen=True)
class GoldenCase:
    """One grouper input with its description; ``image_hw``/``scale`` add a letterbox upsampling check."""

    name: str
    description: str
    prob: np.ndarray
    offsets: np.ndarray
    stride: float = 4.0
    config: GrouperConfig = GrouperConfig()
    image_hw: tuple[int, int] | None = None
    scale: float | None = None
    bench_people: int | None = None
    inputs_from: str | None = None  # name of an earlier case whose prob/offsets files this case reads


def _assignment_margins(cell_boxes: np.ndarray, boxes: np.ndarray, t_iou: float) -> list[float]:
    """Distances from flipping of the assignment of cell boxes (N, 4) to ``boxes`` (K, 4): the best IoU against
    t_iou, and the best against the second best where the best could pass t_iou."""
    if not len(cell_boxes) or not len(boxes):
        return []
    iou = np.sort(pairwise_iou(cell_boxes, boxes), axis=1)[:, ::-1]
    margins = [np.min(np.abs(iou[:, 0] - t_iou))]
    if iou.shape[1] > 1:
        contested = iou[:, 0] >= t_iou - MIN_MARGIN
        if contested.any():
            margins.append(np.min(iou[contested, 0] - iou[contested, 1]))
    return margins


def decision_margin(prob: np.ndarray, offsets: np.ndarray, stride: float, config: GrouperConfig) -> float:
    """Smallest distance of any grouper decision from flipping (thresholds and IoU ties), conservative."""
    prob = prob.astype(np.float64)
    margins = [np.inf, np.min(np.abs(prob - config.t_c)), np.min(np.abs(prob - config.t_fg))] if prob.size else [np.inf]
    if prob.size == 0:
        return np.inf
    h, w = prob.shape
    cx, cy = anchor_centers(h, w, stride)
    boxes = decode_boxes(offsets.reshape(-1, 4), cx.ravel(), cy.ravel(), config.anchor)
    peaks = find_peaks(prob, config.t_c)
    if peaks.size:
        kept = boxes[peaks][nms(boxes[peaks], prob.ravel()[peaks], config.t_nms, config.max_instances)]
        margins.append(np.min(np.abs(pairwise_iou(boxes[peaks], kept) - config.t_nms)))
        cells = boxes[prob.ravel() >= config.t_fg]
        margins += _assignment_margins(cells, kept, config.t_iou)
        if config.mode == "refine" and len(cells):
            rows = np.ascontiguousarray(cells.T)
            labels = assign_cells(rows, kept, config.t_iou)
            for _ in range(config.refine_rounds):
                label_counts = np.bincount(labels, minlength=len(kept) + 1)
                refined = REFINE_BOXES[config.refine_statistic](rows, labels, label_counts)[label_counts[1:] > 0]
                if len(refined) > 1:  # the duplicate removal: every pair of refined boxes against t_nms
                    pairs = pairwise_iou(refined, refined)[~np.eye(len(refined), dtype=bool)]
                    margins.append(np.min(np.abs(pairs - config.t_nms)))
                kept, labels, _ = refine_round(rows, labels, len(kept), config.t_nms, config.t_iou,
                                               config.refine_statistic)
                margins += _assignment_margins(cells, kept, config.t_iou)
    return float(min(margins))


def _nudge(prob: np.ndarray, config: GrouperConfig) -> np.ndarray:
    """Move probabilities lying within 2·MIN_MARGIN of t_c or t_fg away from the threshold (float32)."""
    p = prob.astype(np.float64)
    for t in (config.t_c, config.t_fg):
        near = np.abs(p - t) < 2 * MIN_MARGIN
        p[near] = t + np.where(p[near] >= t, 3 * MIN_MARGIN, -3 * MIN_MARGIN)
    return p.astype(np.float32)


def _blank(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((h, w), np.float32), np.zeros((h, w, 4), np.float32)


def _person(prob, offsets, box, stride, peak=0.95, edge=0.7, shape="ellipse"):
    """Paint one synthetic person whose instance box is ``box`` (input px) onto the maps, in front."""
    h, w = prob.shape
    cx, cy = anchor_centers(h, w, stride)
    bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    r2 = ((cx - bx) / rx) ** 2 + ((cy - by) / ry) ** 2
    inside = r2 <= 1 if shape == "ellipse" else (np.abs(cx - bx) <= rx) & (np.abs(cy - by) <= ry)
    prob[inside] = (peak - (peak - edge) * np.minimum(r2, 1))[inside] if shape == "ellipse" else peak
    offsets[inside] = encode_boxes(np.broadcast_to(np.asarray(box, float), (int(inside.sum()), 4)), cx[inside], cy[inside])


def edge_cases() -> list[GoldenCase]:
    """Hand-made cases: empty maps, one pixel, plateaus, ties, touching/overlapping people, borders, > 20 peaks."""
    cases = []
    p, o = _blank(16, 16)
    cases.append(GoldenCase("no_person", "all-zero map: no instance", p, o))
    p, o = _blank(0, 0)
    cases.append(GoldenCase("empty_map", "0x0 map: no instance", p, o))
    p, o = _blank(8, 8)
    p[3, 5] = 0.9
    cases.append(GoldenCase("one_pixel", "a single person cell, zero offsets: the anchor box", p, o))
    p, o = _blank(8, 8)
    p[2:5, 2:5] = 0.55
    cases.append(GoldenCase("below_t_c", "person cells (p >= t_fg) but no peak >= t_c: no instance", p, o))
    p, o = _blank(12, 12)
    _person(p, o, (8, 8, 40, 40), 4, shape="box", peak=0.8)
    cases.append(GoldenCase("plateau", "a plateau of equal probabilities: many peaks, NMS keeps the first in raster order", p, o))
    p, o = _blank(24, 48)
    _person(p, o, (10, 10, 60, 90), 4, peak=0.9)
    _person(p, o, (120, 10, 170, 90), 4, peak=0.9)
    cases.append(GoldenCase("equal_peaks", "two people with equal peak probability: raster order decides", p, o))
    p, o = _blank(32, 32)
    _person(p, o, (20, 10, 64, 110), 4, peak=0.93)
    _person(p, o, (64, 12, 108, 112), 4, peak=0.9)
    cases.append(GoldenCase("touching", "two people whose boxes touch", p, o))
    p, o = _blank(32, 32)
    _person(p, o, (20, 10, 80, 120), 4, peak=0.92)
    _person(p, o, (50, 14, 110, 124), 4, peak=0.96)
    cases.append(GoldenCase("overlapping", "two heavily overlapping people (box IoU about 0.33, both kept)", p, o))
    p, o = _blank(16, 16)
    _person(p, o, (-20, -30, 20, 30), 4, peak=0.9)
    _person(p, o, (44, 34, 84, 94), 4, peak=0.85)
    cases.append(GoldenCase("borders", "people cut by the map's top-left and bottom-right borders", p, o))
    p, o = _blank(40, 40)
    for k in range(25):
        i, j = divmod(k, 5)
        _person(p, o, (j * 32 + 2, i * 32 + 2, j * 32 + 30, i * 32 + 30), 4, peak=0.9 - 0.01 * k, edge=0.62, shape="ellipse")
    cases.append(GoldenCase("many_peaks", "25 separate people: only max_instances = 20 are kept", p, o))
    p, o = _blank(16, 16)
    _person(p, o, (10, 10, 50, 50), 4, peak=0.9)
    p[12:14, 12:14] = 0.55  # person cells, not peaks
    o[12:14, 12:14] = np.array([3.0, -2.0, 5.0, -6.0], np.float32)  # far boxes, log-scales beyond the clamp
    cases.append(GoldenCase("unassigned", "person cells whose boxes overlap no kept box stay 0; dw/dh clamped", p, o))
    p, o = _blank(16, 16)
    _person(p, o, (10, 10, 50, 50), 4, peak=0.9)
    p[12, 12] = 0.45
    o[12, 12] = np.array([1.5, 1.0, 0.5, 0.3], np.float32)
    cases.append(GoldenCase("dropped_instance", "t_c < t_fg: a kept box with no cell is dropped and labels renumbered",
                            p, o, config=GrouperConfig(t_c=0.4, t_fg=0.6)))
    p, o = _blank(20, 20)
    _person(p, o, (5, 5, 45, 65), 4, peak=0.9)
    _person(p, o, (30, 20, 75, 80), 4, peak=0.8)
    cases.append(GoldenCase("custom_config", "non-default thresholds and stride 4.5",
                            p, o, stride=4.5, config=GrouperConfig(t_c=0.7, t_nms=0.2, t_iou=0.5, max_instances=1)))
    return [dataclasses.replace(c, prob=_nudge(c.prob, c.config)) for c in cases]


def synthetic_people(size: int, people: int, seed: int, coverage: float = 0.3, stride: float = 4.0):
    """A size x size map with ``people`` elliptic people covering about ``coverage`` of the cells, overlapping."""
    rng = np.random.default_rng(seed)
    p, o = _blank(size, size)
    side = size * stride
    area = coverage * side * side / people / (np.pi / 4)
    for _ in range(people):
        bw = np.sqrt(area / 2.0) * rng.uniform(0.85, 1.15)
        bh = 2.0 * bw
        x1 = rng.uniform(-0.1 * bw, side - 0.9 * bw)
        y1 = rng.uniform(-0.1 * bh, side - 0.9 * bh)
        _person(p, o, (x1, y1, x1 + bw, y1 + bh), stride, peak=rng.uniform(0.85, 0.99), edge=0.65)
    person = p > 0
    o[person] += rng.normal(0, 0.01, (int(person.sum()), 4)).astype(np.float32)
    p[~person] = rng.uniform(0.0, 0.3, int((~person).sum())).astype(np.float32)
    return p, o


def bench_cases() -> list[GoldenCase]:
    """The benchmark cases: map sizes 65, 129, 257 with 1, 5, 10 and 20 people (30% coverage), margin-checked."""
    cases = []
    for size in BENCH_SIZES:
        for people in BENCH_PEOPLE:
            for seed in range(100):
                p, o = synthetic_people(size, people, seed=1000 * size + 10 * people + seed)
                p = _nudge(p, GrouperConfig())
                if decision_margin(p, o, 4.0, GrouperConfig()) >= MIN_MARGIN:
                    break
            else:
                raise RuntimeError(f"no margin-safe synthetic case for {size}x{size}, {people} people")
            cases.append(GoldenCase(f"bench_{size}_{people}", f"benchmark: {size}x{size} map, {people} people, "
                                    "about 30% person cells", p, o, bench_people=people))
    return cases


def _split_person(prob, offsets, box, shift, stride, split_x, value=0.55):
    """A box-shaped person of probability ``value`` whose cells left of ``split_x`` (input px) predict ``box``
    moved by ``-shift`` px in x and the others ``box`` moved by ``+shift``: two groups of nearly equal boxes."""
    h, w = prob.shape
    cx, cy = anchor_centers(h, w, stride)
    inside = (cx >= box[0]) & (cx <= box[2]) & (cy >= box[1]) & (cy <= box[3])
    prob[inside] = value
    moved = np.where((cx < split_x)[..., None], -shift, shift) * np.array([1.0, 0.0, 1.0, 0.0])
    offsets[inside] = encode_boxes(np.asarray(box, float) + moved[inside], cx[inside], cy[inside])


def _seed(prob, offsets, cell, p, box, stride):
    """Make cell (i, j) a peak of probability ``p`` predicting ``box``."""
    i, j = cell
    prob[i, j] = p
    offsets[i, j] = encode_boxes(np.asarray(box, float), (j + 0.5) * stride, (i + 0.5) * stride)


def refine_cases(cases: list[GoldenCase]) -> list[GoldenCase]:
    """Cases of mode ``refine``: duplicates made by refinement (removed by NMS on cell counts, unequal and equal
    counts), two rounds, and the refine variants of the edge, COCO and some benchmark cases (same input files)."""
    refine = GrouperConfig(mode="refine")
    out = []
    truth = (40.0, 20.0, 100.0, 140.0)
    for name, box, split, description in (
            ("refine_duplicate", truth, 74.0, "one person, two peak boxes kept by the paper's NMS; their refined "
             "boxes overlap: the one with fewer cells (the later one) is removed; even cell counts"),
            ("refine_count_order", truth, 70.0, "as refine_duplicate, but the later kept box has more cells and "
             "survives"),
            ("refine_count_tie", (40.0, 20.0, 104.0, 140.0), 72.0, "as refine_duplicate with equal cell counts: "
             "the earlier kept box survives")):
        p, o = _blank(48, 48)
        _split_person(p, o, box, 6.0, 4, split)
        _seed(p, o, (20, 12), 0.9, (15.0, 20.0, 75.0, 140.0), 4)
        _seed(p, o, (20, 22), 0.85, (65.0, 20.0, 125.0, 140.0), 4)
        out.append(GoldenCase(name, description, p, o, config=refine))
    p, o = _blank(48, 48)
    _split_person(p, o, truth, 6.0, 4, 74.0)
    _seed(p, o, (20, 12), 0.9, (15.0, 20.0, 75.0, 140.0), 4)
    _seed(p, o, (20, 22), 0.85, (65.0, 20.0, 125.0, 140.0), 4)
    _person(p, o, (120, 60, 170, 160), 4, peak=0.9)
    out.append(GoldenCase("refine_two_rounds", "refine_duplicate plus a second person with more cells (first in "
                          "the NMS by count, second in the output: kept order), two refinement rounds",
                          p, o, config=GrouperConfig(mode="refine", refine_rounds=2)))
    out = [dataclasses.replace(c, prob=_nudge(c.prob, c.config)) for c in out]
    for case in cases:
        variant = case.bench_people is None or case.name in REFINE_BENCH_CASES
        if variant and case.config.mode == "paper":
            out.append(dataclasses.replace(case, name=f"{case.name}{REFINE_SUFFIX}", description=f"{case.description}; "
                                           "mode refine", config=dataclasses.replace(case.config, mode="refine"),
                                           inputs_from=case.name))
    return out + mean_cases(out)


def mean_cases(refine: list[GoldenCase]) -> list[GoldenCase]:
    """The ``refine_statistic="mean"`` variants (NAME_mean, same input files) of the refine cases: the refine-only
    ones (duplicates, count ties, two rounds), the edge and COCO variants, and the benchmarks MEAN_BENCH_CASES.
    Without the letterbox upsampling check (``image``: the same for any grouping, and megabytes per COCO case)."""
    return [dataclasses.replace(case, name=f"{case.name}{MEAN_SUFFIX}", description=f"{case.description}; "
                                "refine statistic mean", inputs_from=case.inputs_from or case.name,
                                config=dataclasses.replace(case.config, refine_statistic="mean"), image_hw=None,
                                scale=None)
            for case in refine if case.bench_people is None or case.inputs_from in MEAN_BENCH_CASES]


def coco_cases(images_dir: str, annotations: str, count: int = 3, size: int = 256) -> list[GoldenCase]:
    """Cases from real COCO annotations: images with 2+ people, letterboxed to ``size``, targets at stride 4
    turned into maps (probability from cell coverage with a centre bump, exact box offsets)."""
    from bbe_mobile.letterbox import Letterbox, letterbox_masks
    from bbe_mobile.modeling.targets import build_targets, mask_boxes
    from bbe_mobile.training.data import CocoPersons  # noqa: PLC0415 (pycocotools is only needed here)

    dataset = CocoPersons(images_dir, annotations)
    cases = []
    config = GrouperConfig()
    for image_id in dataset.image_ids:
        if dataset.people_count(image_id) < 2:
            continue
        info = dataset.info(image_id)
        masks, crowd = dataset.masks(image_id)
        box = Letterbox.fit((info["height"], info["width"]), size)
        lb = letterbox_masks(masks, box)
        t = build_targets(lb, crowd, 4)
        h, w = t.person.shape
        cx, cy = anchor_centers(h, w, 4)
        boxes = mask_boxes(lb)
        prob = 0.1 + 0.85 * t.person
        owned = t.owner > 0
        b = boxes[t.owner[owned] - 1]
        d2 = (((cx[owned] - (b[:, 0] + b[:, 2]) / 2) / np.maximum(b[:, 2] - b[:, 0], 1)) ** 2
              + ((cy[owned] - (b[:, 1] + b[:, 3]) / 2) / np.maximum(b[:, 3] - b[:, 1], 1)) ** 2)
        prob[owned] *= 1 - 0.2 * np.minimum(d2, 1)
        prob = _nudge(prob, config)
        if decision_margin(prob, t.offsets, 4.0, config) < MIN_MARGIN:
            continue
        cases.append(GoldenCase(f"coco_{image_id}", f"COCO val image {image_id} ({len(masks)} person annotations) "
                                f"letterboxed to {size}", prob, t.offsets, image_hw=(info["height"], info["width"]),
                                scale=box.scale))
        if len(cases) == count:
            break
    return cases


def _expected(case: GoldenCase) -> Instances:
    margin = decision_margin(case.prob, case.offsets, case.stride, case.config)
    if margin < MIN_MARGIN:
        raise RuntimeError(f"golden case {case.name}: a decision lies {margin:.2e} from flipping")
    return group(case.prob, case.offsets, case.stride, case.config)


def grouper_doc(config: GrouperConfig) -> dict:
    """Every GrouperConfig field, without refine_statistic when it is the default median (so the golden files
    written before it stay byte-identical)."""
    doc = dataclasses.asdict(config)
    if config.refine_statistic == "median":
        del doc["refine_statistic"]
    return doc


def _config_doc(config: GrouperConfig) -> dict:
    """A case's ``config`` object: ``grouper_doc``, without mode and refine_rounds in mode paper."""
    doc = grouper_doc(config)
    if config.mode == "paper":
        del doc["mode"], doc["refine_rounds"]
    return doc


def write_golden(out_dir: str | Path, cases: list[GoldenCase]) -> list[str]:
    """Write the cases and ``index.json`` into ``out_dir``; returns the case names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for case in cases:
        result = _expected(case)
        h, w = case.prob.shape
        doc = {
            "name": case.name, "description": case.description, "height": h, "width": w, "stride": case.stride,
            "config": _config_doc(case.config),
            "prob_file": f"{case.inputs_from or case.name}.prob.f32",
            "offsets_file": f"{case.inputs_from or case.name}.offsets.f32",
            "labels_file": f"{case.name}.labels.i32",
            "boxes": [[float(v) for v in b] for b in result.boxes], "scores": [float(s) for s in result.scores],
            "instances": len(result), "tolerance": MIN_MARGIN, "bench_people": case.bench_people,
        }
        if case.inputs_from is None:
            case.prob.astype("<f4").tofile(out / doc["prob_file"])
            case.offsets.astype("<f4").tofile(out / doc["offsets_file"])
        elif case.inputs_from not in names:
            raise ValueError(f"golden case {case.name}: inputs_from {case.inputs_from!r} is not an earlier case")
        result.labels.astype("<i4").tofile(out / doc["labels_file"])
        if case.image_hw is not None:
            image_labels = labels_to_image(result.labels, case.stride, case.scale, case.image_hw)
            doc["image"] = {"height": case.image_hw[0], "width": case.image_hw[1], "scale": case.scale,
                            "labels_file": f"{case.name}.image_labels.i32",
                            "boxes": [[float(v) for v in b] for b in boxes_to_image(result.boxes, case.scale, case.image_hw)]}
            image_labels.astype("<i4").tofile(out / doc["image"]["labels_file"])
        (out / f"{case.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        names.append(case.name)
    (out / "index.json").write_text(json.dumps({"format": 1, "cases": names}, indent=1) + "\n")
    return names


class GoldenFormatError(ValueError):
    """A golden file that breaks the format above; the message names the file and the field, in one line."""


MAX_GOLDEN_SIDE = 4096  # cells (0: an empty map is a case too)


def _golden_json(path: Path) -> dict:
    try:
        return read_json_object(path)
    except JsonFileError as exc:
        raise GoldenFormatError(str(exc)) from None


def read_golden_index(directory: str | Path) -> list[str]:
    """Case names listed by ``directory/index.json``; GoldenFormatError naming the file and field otherwise."""
    path = Path(directory) / "index.json"
    cases = _golden_json(path).get("cases")
    if not isinstance(cases, list) or not all(isinstance(n, str) and _is_plain_name(n) for n in cases):
        raise GoldenFormatError(f"{path}: cases: must be a list of case names, got {show_value(cases)}")
    return cases


def _is_plain_name(name: str) -> bool:
    """A file name inside the golden directory (not empty, not '.' or '..', no separators or control characters)."""
    return bool(name) and name not in (".", "..") and not any(c in "/\\" or c < " " for c in name)


def _golden_array(directory: Path, source: Path, doc: dict, key: str, dtype: str, shape: tuple[int, ...]):
    name = doc.get(key)
    if not isinstance(name, str) or not _is_plain_name(name):
        raise GoldenFormatError(f"{source}: {key}: must be a file name in {directory}, got {show_value(name)}")
    path = directory / name
    expected = int(np.prod(shape)) * 4
    size = path.stat().st_size if path.is_file() else None
    if size != expected:
        raise GoldenFormatError(f"{source}: {key}: {path} has {'no file' if size is None else f'{size} bytes'}, "
                                f"{shape} of 4-byte values need {expected}")
    return np.fromfile(path, dtype).reshape(shape)


def read_golden_doc(directory: str | Path, name: str) -> dict:
    """The validated ``NAME.json`` of a case (sizes, stride, config); GoldenFormatError naming the file and field."""
    source = Path(directory) / f"{name}.json"
    doc = _golden_json(source)
    for key in ("height", "width"):
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GOLDEN_SIDE:
            raise GoldenFormatError(f"{source}: {key}: must be an integer in 0..{MAX_GOLDEN_SIDE}, got "
                                    f"{show_value(value)}")
    stride = doc.get("stride")
    if isinstance(stride, bool) or not isinstance(stride, (int, float)) or not 0 < stride < 1e6:
        raise GoldenFormatError(f"{source}: stride: must be a positive number, got {show_value(stride)}")
    try:
        if not isinstance(doc.get("config"), dict):
            raise TypeError("must be an object")
        GrouperConfig(**doc["config"]).validate()
    except (TypeError, ValueError) as exc:
        raise GoldenFormatError(f"{source}: config: {str(exc).splitlines()[0][:120]}") from None
    return doc


def read_golden(directory: str | Path, name: str) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Read case ``name``: (json doc, prob (H, W), offsets (H, W, 4), expected labels (H, W)); GoldenFormatError
    naming the file and the field if the json or a data file is wrong."""
    d = Path(directory)
    doc = read_golden_doc(d, name)
    source, h, w = d / f"{name}.json", doc["height"], doc["width"]
    prob = _golden_array(d, source, doc, "prob_file", "<f4", (h, w))
    offsets = _golden_array(d, source, doc, "offsets_file", "<f4", (h, w, 4))
    labels = _golden_array(d, source, doc, "labels_file", "<i4", (h, w))
    return doc, prob, offsets, labels
