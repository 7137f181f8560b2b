import json

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bbe_mobile.boxes import anchor_centers, decode_boxes, pairwise_iou
from bbe_mobile.golden import decision_margin, read_golden
from bbe_mobile.grouper import (CellBoxes, GrouperConfig, assign_from_guess, boxes_to_image, group, labels_to_image,
                                mean_boxes, refine_round)
from conftest import GOLDEN

CASES = json.loads((GOLDEN / "index.json").read_text())["cases"]


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name):
    doc, prob, offsets, labels = read_golden(GOLDEN, name)
    result = group(prob, offsets, doc["stride"], GrouperConfig(**doc["config"]))
    np.testing.assert_array_equal(result.labels, labels)
    np.testing.assert_allclose(result.boxes.reshape(-1, 4), np.array(doc["boxes"]).reshape(-1, 4), atol=doc["tolerance"])
    np.testing.assert_allclose(result.scores, doc["scores"], atol=doc["tolerance"])
    if "image" in doc:
        img = doc["image"]
        expected = np.fromfile(GOLDEN / img["labels_file"], "<i4").reshape(img["height"], img["width"])
        hw = (img["height"], img["width"])
        np.testing.assert_array_equal(labels_to_image(result.labels, doc["stride"], img["scale"], hw), expected)
        np.testing.assert_allclose(boxes_to_image(result.boxes, img["scale"], hw).reshape(-1, 4),
                                   np.array(img["boxes"]).reshape(-1, 4), atol=doc["tolerance"])


@st.composite
def maps(draw):
    h = draw(st.integers(1, 24))
    w = draw(st.integers(1, 24))
    prob = draw(arrays(np.float32, (h, w), elements=st.floats(0, 1, width=32)))
    offsets = draw(arrays(np.float32, (h, w, 4), elements=st.floats(-2, 2, width=32)))
    return prob, offsets


def test_golden_covers_the_required_cases():
    required = {"no_person", "one_pixel", "plateau", "equal_peaks", "touching", "overlapping", "borders",
                "many_peaks", "bench_129_10", "refine_duplicate", "refine_count_order", "refine_count_tie",
                "refine_two_rounds", "plateau_refine", "equal_peaks_refine", "bench_129_10_refine",
                "refine_duplicate_mean", "refine_count_tie_mean", "refine_two_rounds_mean", "bench_129_10_refine_mean"}
    assert required <= set(CASES)
    assert any(c.startswith("coco_") for c in CASES)
    assert any(c.startswith("coco_") and c.endswith("_refine") for c in CASES)


def test_golden_paper_cases_carry_no_mode():
    """Cases of the paper's mode keep the pre-v2 config (no mode keys): readers must default to the paper."""
    for name in CASES:
        config = json.loads((GOLDEN / f"{name}.json").read_text())["config"]
        assert ("mode" in config) == ("refine" in name), name
        assert config.get("refine_statistic", "median") == ("mean" if name.endswith("_mean") else "median"), name
        assert "refine_statistic" not in config or config["refine_statistic"] == "mean", name


def _reference_group(prob, offsets, stride, config):
    """docs/grouper.md transcribed cell by cell in plain Python floats: the independent check of ``group``."""
    h, w = prob.shape
    a = config.anchor

    def decode(i, j):
        dx, dy, dw, dh = (float(v) for v in offsets[i, j])
        bw = a.w * float(np.exp(min(max(dw, -a.max_log_scale), a.max_log_scale)))  # the same exp as NumPy arrays
        bh = a.h * float(np.exp(min(max(dh, -a.max_log_scale), a.max_log_scale)))
        bx, by = (j + 0.5) * stride + dx * a.w, (i + 0.5) * stride + dy * a.h
        return (bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2)

    def iou(p, q):
        inter = max(0.0, min(p[2], q[2]) - max(p[0], q[0])) * max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        union = max(0.0, p[2] - p[0]) * max(0.0, p[3] - p[1]) + max(0.0, q[2] - q[0]) * max(0.0, q[3] - q[1]) - inter
        return inter / union if union > 0 else 0.0

    def greedy(candidates, limit):  # candidates: (score, tie, box) already in order
        kept = []
        for box in candidates:
            if len(kept) < limit and all(iou(box, k) <= config.t_nms for k in kept):
                kept.append(box)
        return kept

    def assign(cells, boxes):
        labels = []
        for box in cells:
            best, best_iou = 0, -1.0
            for k, kept in enumerate(boxes):
                v = iou(box, kept)
                if v > best_iou:
                    best, best_iou = k + 1, v
            labels.append(best if boxes and best_iou >= config.t_iou else 0)
        return labels

    def median(values):
        v, n = sorted(values), len(values)
        return v[(n - 1) // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

    statistic = median if config.refine_statistic == "median" else _plain_mean

    p = prob.astype(np.float64)
    peaks = [(i, j) for i in range(h) for j in range(w) if p[i, j] >= config.t_c and all(
        p[i, j] >= p[k, l] for k in range(max(0, i - 1), min(h, i + 2)) for l in range(max(0, j - 1), min(w, j + 2)))]
    peaks.sort(key=lambda c: -p[c])
    boxes = greedy([decode(*c) for c in peaks], config.max_instances)
    person = [(i, j) for i in range(h) for j in range(w) if p[i, j] >= config.t_fg]
    cells = [decode(*c) for c in person]
    labels = assign(cells, boxes)
    for _ in range(config.refine_rounds if config.mode == "refine" else 0):
        groups = [[c for c, l in zip(cells, labels) if l == k + 1] for k in range(len(boxes))]
        refined = [(len(g), k, tuple(statistic([c[x] for c in g]) for x in range(4))) for k, g in enumerate(groups)
                   if g]
        survivors = greedy([r[2] for r in sorted(refined, key=lambda r: (-r[0], r[1]))], len(refined))
        boxes = [r[2] for r in refined if any(r[2] is s for s in survivors)]
        labels = assign(cells, boxes)
    out = np.zeros((h, w), np.int32)
    numbers = {k: n + 1 for n, k in enumerate(sorted(set(labels) - {0}))}
    for (i, j), l in zip(person, labels):
        out[i, j] = numbers.get(l, 0)
    return out, np.array([boxes[k - 1] for k in sorted(numbers)], np.float32).reshape(-1, 4)


def _plain_mean(values):
    """The mean of docs/grouper.md: float64 sum in the given (raster) order, divided by the count."""
    total = 0.0
    for v in values:
        total += v
    return total / len(values)


@st.composite
def tied_maps(draw):
    """Small maps whose probabilities come from a few levels (plateaus and ties) and whose offsets cluster, so
    that boxes overlap, refine into duplicates and tie."""
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    levels = st.sampled_from([0.3, 0.55, 0.7, 0.7, 0.8, 0.95])
    prob = draw(arrays(np.float32, (h, w), elements=levels))
    offsets = draw(arrays(np.float32, (h, w, 4), elements=st.sampled_from([0.0, 0.0, 0.05, -0.1, 0.3, -0.5])))
    return prob, offsets


@settings(max_examples=120, deadline=None)
@given(st.one_of(maps(), tied_maps()), st.sampled_from(["paper", "refine"]), st.integers(1, 3),
       st.sampled_from([0.0, 0.2, 0.3, 0.5]), st.integers(0, 6), st.sampled_from(["median", "mean"]))
def test_grouper_matches_the_reference(m, mode, rounds, t_iou, max_instances, statistic):
    prob, offsets = m
    config = GrouperConfig(t_iou=t_iou, max_instances=max_instances, mode=mode, refine_rounds=rounds,
                           refine_statistic=statistic)
    r = group(prob, offsets, 4.0, config)
    labels, boxes = _reference_group(prob, offsets, 4.0, config)
    np.testing.assert_array_equal(r.labels, labels)
    np.testing.assert_array_equal(r.boxes, boxes)


@settings(max_examples=60, deadline=None)
@given(tied_maps(), st.integers(1, 3))
def test_refine_properties(m, rounds):
    """Refinement never adds instances, only relabels person cells, and each box is made of cell-box medians."""
    prob, offsets = m
    paper = group(prob, offsets, 4.0, GrouperConfig())
    refined = group(prob, offsets, 4.0, GrouperConfig(mode="refine", refine_rounds=rounds))
    assert len(refined) <= len(paper)
    assert np.all(prob[refined.labels > 0] >= 0.5)
    assert np.all(refined.boxes[:, 2] >= refined.boxes[:, 0]) and np.all(refined.boxes[:, 3] >= refined.boxes[:, 1])


@settings(max_examples=150, deadline=None)
@given(maps(), st.floats(0.5, 1.0), st.integers(0, 25))
def test_grouper_properties(m, t_iou, max_instances):
    prob, offsets = m
    config = GrouperConfig(t_iou=t_iou, max_instances=max_instances)
    r = group(prob, offsets, 4.0, config)
    assert r.labels.dtype == np.int32 and r.labels.shape == prob.shape
    assert r.boxes.dtype == np.float32 and r.scores.dtype == np.float32
    assert len(r) <= max_instances
    assert np.all(prob[r.labels > 0] >= config.t_fg)
    assert np.all((r.scores >= 0) & (r.scores <= 1))
    assert set(range(1, len(r) + 1)) <= set(np.unique(r.labels).tolist()) <= set(range(len(r) + 1))
    for k in range(len(r)):
        np.testing.assert_allclose(r.scores[k], prob[r.labels == k + 1].astype(np.float64).mean(), rtol=1e-6)
    again = group(np.asfortranarray(prob), offsets.copy(), 4.0, config)
    np.testing.assert_array_equal(again.labels, r.labels)
    np.testing.assert_array_equal(again.boxes, r.boxes)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, (4, 30), elements=st.floats(-1e4, 1e4)),
       st.lists(st.integers(0, 4), min_size=30, max_size=30))
def test_mean_boxes_is_the_plain_loop(rows, labels):
    """np.bincount sums in input order: bit-identical to a float64 loop over the cells in order, NaN without cells."""
    labels = np.array(labels)
    means = mean_boxes(rows, labels, np.bincount(labels, minlength=5))
    for k in range(1, 5):
        members = np.flatnonzero(labels == k)
        expected = [_plain_mean(rows[c, members].tolist()) if members.size else np.nan for c in range(4)]
        np.testing.assert_array_equal(means[k - 1], expected)


@settings(max_examples=80, deadline=None)
@given(st.integers(3, 6), st.integers(0, 2**32 - 1), st.sampled_from([0.02, 0.1, 0.3]),
       st.sampled_from([0.0, 0.3, 0.6]), st.sampled_from(["median", "mean"]))
def test_refine_round_proof_keeps_the_labels(k, seed, noise, t_iou, statistic):
    """The reassignment that skips the cells the Jaccard bound proves (given the previous boxes and IoU floors)
    gives the boxes and labels of the full one, and its floors are lower bounds of the cells' IoUs with their boxes.
    Cells are noisy copies of k boxes: little noise proves most cells, more noise leaves some open."""
    rng = np.random.default_rng(seed)
    centres, sizes = rng.uniform(0, 400, (k, 2)), rng.uniform(40, 120, (k, 2))
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    owner = rng.integers(0, k, 200)
    cells = boxes[owner] + rng.normal(0, noise, (200, 4)) * np.tile(sizes[owner], 2)
    cells[:, 2:] = np.maximum(cells[:, 2:], cells[:, :2])
    rows = CellBoxes.from_rows(cells.T)
    labels, floor = assign_from_guess(rows, boxes, owner + 1, t_iou)
    full = refine_round(rows, labels, k, 0.4, t_iou, statistic)
    proved = refine_round(rows, labels, k, 0.4, t_iou, statistic, boxes, floor)
    np.testing.assert_array_equal(proved[0], full[0])
    np.testing.assert_array_equal(proved[1], full[1])
    labelled = np.flatnonzero(proved[1])
    iou = pairwise_iou(cells, proved[0])[labelled, proved[1][labelled] - 1]
    assert np.all(proved[2][labelled] <= iou + 1e-12)


@settings(max_examples=40, deadline=None)
@given(maps(), st.integers(1, 3), st.sampled_from([-3, 2, 5]), st.sampled_from([-4, 1, 3]))
def test_refine_mean_translates_with_the_map(m, rounds, di, dj):
    """Moving the maps by whole cells (padding with background) keeps the labels and moves the mean boxes by as
    many strides (up to rounding: the decoded boxes are not exactly shifted), on maps whose decisions are 1e-6
    away from flipping."""
    prob, offsets = m
    config = GrouperConfig(mode="refine", refine_rounds=rounds, refine_statistic="mean")
    assume(decision_margin(prob, offsets, 4.0, config) >= 1e-6)
    h, w = prob.shape
    big_p, big_o = np.zeros((h + 10, w + 10), np.float32), np.zeros((h + 10, w + 10, 4), np.float32)
    big_p[5 + di:5 + di + h, 5 + dj:5 + dj + w], big_o[5 + di:5 + di + h, 5 + dj:5 + dj + w] = prob, offsets
    base = group(big_p, big_o, 4.0, config)
    small = group(prob, offsets, 4.0, config)
    np.testing.assert_array_equal(base.labels[5 + di:5 + di + h, 5 + dj:5 + dj + w], small.labels)
    shift = 4.0 * np.array([5 + dj, 5 + di, 5 + dj, 5 + di])
    np.testing.assert_allclose(base.boxes, small.boxes + shift, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(tied_maps(), st.integers(1, 3))
def test_refine_mean_settled_cells(m, rounds):
    """After the last mean round a cell labelled k has its maximum IoU (>= t_iou) with box k, and an unlabelled
    person cell has no IoU >= t_iou (within the float32 rounding of the output boxes)."""
    prob, offsets = m
    config = GrouperConfig(mode="refine", refine_rounds=rounds, refine_statistic="mean")
    r = group(prob, offsets, 4.0, config)
    cx, cy = anchor_centers(*prob.shape, 4.0)
    cells = decode_boxes(offsets.reshape(-1, 4), cx.ravel(), cy.ravel(), config.anchor)
    labels = r.labels.ravel()
    iou = pairwise_iou(cells, r.boxes.astype(np.float64))
    for n, label in enumerate(labels.tolist()):
        if label:
            assert iou[n, label - 1] >= config.t_iou - 1e-4 and iou[n, label - 1] >= iou[n].max() - 1e-4
        elif prob.ravel()[n] >= config.t_fg and len(r):
            assert iou[n].max() < config.t_iou + 1e-4


def test_all_zero_map_has_no_instance():
    r = group(np.zeros((33, 17), np.float32), np.zeros((33, 17, 4), np.float32), 4)
    assert len(r) == 0 and not r.labels.any()


@pytest.mark.parametrize("prob,offsets,message", [
    (np.zeros((4,)), np.zeros((4, 4)), "prob must be"),
    (np.zeros((4, 4)), np.zeros((4, 4, 3)), "offsets must be"),
    (np.zeros((4, 4)), np.zeros((4, 5, 4)), "offsets must be"),
    (np.full((2, 2), np.nan), np.zeros((2, 2, 4)), "prob contains NaN"),
    (np.zeros((2, 2)), np.full((2, 2, 4), np.inf), "offsets contains NaN or inf"),
    (np.zeros((2, 2), bool), np.zeros((2, 2, 4)), "float array"),
])
def test_bad_inputs_raise(prob, offsets, message):
    with pytest.raises(ValueError, match=message):
        group(prob, offsets, 4)


def test_bad_config_and_stride_raise():
    p, o = np.zeros((2, 2), np.float32), np.zeros((2, 2, 4), np.float32)
    with pytest.raises(ValueError, match="t_iou"):
        group(p, o, 4, GrouperConfig(t_iou=1.5))
    with pytest.raises(ValueError, match="stride"):
        group(p, o, 0)
    with pytest.raises(ValueError, match="mode must be one of paper, refine"):
        group(p, o, 4, GrouperConfig(mode="median"))
    for rounds in (0, 1.5, True):
        with pytest.raises(ValueError, match="refine_rounds must be an integer >= 1"):
            group(p, o, 4, GrouperConfig(mode="refine", refine_rounds=rounds))
    with pytest.raises(ValueError, match="refine_statistic must be one of median, mean, got 'mode'"):
        group(p, o, 4, GrouperConfig(mode="refine", refine_statistic="mode"))


def test_metadata_without_mode_means_the_paper():
    from bbe_mobile.export.artifact_info import grouper_from_metadata

    old = {"t_c": 0.6, "t_nms": 0.4, "t_fg": 0.5, "t_iou": 0.3, "max_instances": 20, "anchor_w": 78.0,
           "anchor_h": 117.0, "max_log_scale": 4.0}
    assert grouper_from_metadata(old).mode == "paper"
    assert grouper_from_metadata({**old, "mode": "refine", "refine_rounds": 2}).refine_rounds == 2
    assert grouper_from_metadata({**old, "mode": "refine"}).refine_statistic == "median"
    assert grouper_from_metadata({**old, "mode": "refine", "refine_statistic": "mean"}).refine_statistic == "mean"


def test_labels_and_boxes_to_image():
    labels = np.array([[0, 1], [2, 0]], np.int32)
    up = labels_to_image(labels, 4, 0.5, (16, 16))
    assert up.shape == (16, 16) and up[0, 15] == 1 and up[15, 0] == 2 and up[0, 0] == 0
    boxes = boxes_to_image(np.array([[-4, 2, 10, 40]], np.float32), 0.5, (16, 16))
    np.testing.assert_allclose(boxes, [[0, 4, 16, 16]])
