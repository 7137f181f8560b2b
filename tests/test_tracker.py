import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbe_mobile.golden_tracking import read_tracking_golden, read_tracking_index, render
from bbe_mobile.grouper import GrouperConfig, group
from bbe_mobile.tracker import TrackerConfig, TrackerState, smooth, track_frame, update_tracks
from conftest import GOLDEN

SEQUENCES = read_tracking_index(GOLDEN)


@pytest.mark.parametrize("name", SEQUENCES)
def test_golden_sequence(name):
    doc, probs, offsets, smoothed, labels = read_tracking_golden(GOLDEN, name)
    grouper, tracker = GrouperConfig(**doc["grouper"]), TrackerConfig(**doc["tracker"])
    content = (doc["content_height"], doc["content_width"])
    state = TrackerState()
    for t, expected in enumerate(doc["expected"]):
        state, instances, frame = track_frame(
            state, probs[t], lambda s: group(s, offsets[t], doc["stride"], grouper), tracker, content)
        assert state.smoothed.tobytes() == smoothed[t].tobytes(), f"frame {t}: smoothed map"
        np.testing.assert_array_equal(instances.labels, labels[t], err_msg=f"frame {t}")
        assert (frame.ids.tolist(), frame.main_id, frame.scene_change) == \
            (expected["ids"], expected["main_id"], expected["scene_change"]), f"frame {t}"


def test_golden_sequences_cover_the_behaviours():
    assert {"track_crossing", "track_life", "track_scene_cut", "track_bench_129_10"} <= set(SEQUENCES)
    life = read_tracking_golden(GOLDEN, "track_life")[0]["expected"]
    ids = [i for record in life for i in record["ids"]]
    assert max(ids) >= 3  # a track died and its person came back with a new ID
    mains = [record["main_id"] for record in life]
    assert len(set(mains) - {0}) == 2  # the main person switched once
    assert sum(r["scene_change"] for r in read_tracking_golden(GOLDEN, "track_scene_cut")[0]["expected"]) == 2


def _labels(*masks):
    labels = np.zeros(masks[0].shape, np.int32)
    for k, m in enumerate(masks):
        labels[m] = k + 1
    return labels


def _box_mask(h, w, i0, i1, j0, j1):
    m = np.zeros((h, w), bool)
    m[i0:i1, j0:j1] = True
    return m


def test_ids_follow_people_that_swap_grouper_order():
    config = TrackerConfig(min_hits=1)
    a, b = _box_mask(20, 20, 2, 10, 1, 5), _box_mask(20, 20, 2, 10, 12, 16)
    state, first = update_tracks(TrackerState(), _labels(a, b), config)
    state, second = update_tracks(state, _labels(np.roll(b, 1, 1), np.roll(a, 1, 1)), config)
    assert first.ids.tolist() == [1, 2] and second.ids.tolist() == [2, 1]


def test_birth_needs_min_hits_and_ids_are_never_reused():
    config = TrackerConfig(min_hits=3, max_age=1)
    person = _labels(_box_mask(10, 10, 1, 6, 1, 4))
    nobody = np.zeros((10, 10), np.int32)
    state = TrackerState()
    seen = []
    for labels in (person, person, person, nobody, nobody, person, person, person):
        state, frame = update_tracks(state, labels, config)
        seen.append(frame.ids.tolist())
    assert seen == [[0], [0], [1], [], [], [0], [0], [2]]


def test_a_lost_track_comes_back_within_max_age():
    config = TrackerConfig(min_hits=1, max_age=2)
    person = _labels(_box_mask(10, 10, 1, 6, 1, 4))
    state = TrackerState()
    for labels in (person, np.zeros_like(person), np.zeros_like(person), person):
        state, frame = update_tracks(state, labels, config)
    assert frame.ids.tolist() == [1] and frame.main_id == 1


def test_equal_ious_go_to_the_older_track():
    config = TrackerConfig(min_hits=1, t_match=0.1)
    left, right = _box_mask(10, 10, 0, 4, 0, 4), _box_mask(10, 10, 0, 4, 4, 8)
    state, _ = update_tracks(TrackerState(), _labels(left, right), config)
    state, frame = update_tracks(state, _labels(_box_mask(10, 10, 0, 4, 2, 6)), config)  # IoU 1/3 with both
    assert frame.ids.tolist() == [1]


def test_main_person_switches_only_after_switch_frames():
    config = TrackerConfig(min_hits=1, switch_frames=3)
    small, big = _box_mask(40, 40, 2, 8, 2, 5), _box_mask(40, 40, 10, 35, 10, 30)
    state, frame = update_tracks(TrackerState(), _labels(small), config)
    assert frame.main_id == 1
    mains = []
    for _ in range(4):
        state, frame = update_tracks(state, _labels(small, big), config)
        mains.append(frame.main_id)
    assert mains == [1, 1, 2, 2]


def test_smoothing_averages_and_resets_on_a_scene_change():
    config = TrackerConfig(smoothing=0.5)
    a = np.zeros((8, 8), np.float32)
    a[2:6, 2:6] = 0.9
    b = a.copy()
    b[2:6, 2:6] = 0.7
    s, change = smooth(None, a, config)
    assert change and s is not None
    s, change = smooth(s, b, config)
    assert not change and np.allclose(s[2:6, 2:6], 0.8)
    cut = np.zeros((8, 8), np.float32)
    cut[0:2, 6:8] = 0.9
    s, change = smooth(s, cut, config)
    assert change and s.tobytes() == cut.tobytes()


def test_errors():
    with pytest.raises(ValueError, match="smoothing"):
        TrackerConfig(smoothing=0.0).validate()
    with pytest.raises(ValueError, match="min_hits"):
        TrackerConfig(min_hits=0).validate()
    with pytest.raises(ValueError, match="NaN"):
        smooth(None, np.full((2, 2), np.nan, np.float32), TrackerConfig())
    with pytest.raises(ValueError, match=">= 0"):
        update_tracks(TrackerState(), -np.ones((2, 2), np.int32))
    with pytest.raises(ValueError, match="content_hw"):
        update_tracks(TrackerState(), np.zeros((2, 2), np.int32), content_hw=(0, 2))
    for shape in ((0, 0), (0, 5)):  # empty maps are valid: nobody
        assert update_tracks(TrackerState(), np.zeros(shape, np.int32))[1].ids.size == 0


@st.composite
def label_sequences(draw):
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    frames = draw(st.lists(st.lists(st.integers(0, 3), min_size=h * w, max_size=h * w), min_size=1, max_size=8))
    return [np.array(f, np.int32).reshape(h, w) for f in frames]


@settings(max_examples=100, deadline=None)
@given(label_sequences(), st.integers(1, 3), st.integers(0, 3), st.floats(0.05, 1.0))
def test_tracker_properties(frames, min_hits, max_age, t_match):
    config = TrackerConfig(min_hits=min_hits, max_age=max_age, t_match=t_match)
    state, issued = TrackerState(), 0
    for labels in frames:
        before = state
        state, frame = update_tracks(state, labels, config)
        assert before == before  # the old state is untouched (frozen)
        present = [d for d in range(1, int(labels.max(initial=0)) + 1) if (labels == d).any()]
        confirmed = [i for i in frame.ids.tolist() if i]
        assert len(confirmed) == len(set(confirmed))  # one ID per person in a frame
        assert all(i < state.next_id for i in confirmed)
        assert len(frame.ids) == int(labels.max(initial=0)) and all(frame.ids[d - 1] >= 0 for d in present)
        new = [i for i in confirmed if i >= before.next_id]
        assert sorted(new) == list(range(before.next_id, before.next_id + len(new)))  # fresh IDs, in order
        issued = state.next_id - 1
        living = {t.id for t in state.tracks if t.id}
        assert frame.main_id == 0 or frame.main_id in living
        assert frame.main_id != 0 or not confirmed  # someone confirmed is visible: there is a main person
    assert issued == state.next_id - 1


def test_video_sequence_without_overlap_keeps_ids():
    """Two people walking side by side without touching: every confirmed frame keeps the same two IDs in the
    people's own order."""
    frames = [[((10 + 4 * t, 20, 50 + 4 * t, 110), 0.9), ((110 + 3 * t, 15, 150 + 3 * t, 115), 0.92)]
              for t in range(10)]
    probs, offsets = render(frames, 32, 48)
    state, seen = TrackerState(), []
    for p, o in zip(probs, offsets):
        state, instances, frame = track_frame(state, p, lambda s: group(s, o, 4.0))
        left_first = np.argsort(instances.boxes[:, 0])
        seen.append(tuple(frame.ids[left_first].tolist()))
    assert seen[:2] == [(0, 0), (0, 0)] and set(seen[2:]) == {(2, 1)}  # the right one peaks higher: found first


def test_states_are_immutable_values():
    state = TrackerState()
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.next_id = 5


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 10), st.integers(1, 10), st.floats(0.05, 1.0), st.floats(0.0, 1.0), st.integers(0, 2**32 - 1))
def test_smoothing_properties(h, w, a, t_scene, seed):
    """The smoothed map lies between the previous map and the new one (a convex combination, rounded once to
    float32); a scene change returns the new map itself; a = 1 is no smoothing."""
    rng = np.random.default_rng(seed)
    previous, prob = rng.random((2, h, w), dtype=np.float32)
    config = TrackerConfig(smoothing=a, t_scene=t_scene)
    out, change = smooth(previous, prob, config)
    assert out.dtype == np.float32 and out.shape == (h, w)
    if change:
        assert out.tobytes() == prob.tobytes()
    else:
        low, high = np.minimum(previous, prob), np.maximum(previous, prob)
        assert np.all(out >= low) and np.all(out <= high)
        was, now = previous >= 0.5, prob >= 0.5
        union = int((was | now).sum())
        assert union == 0 or union - int((was & now).sum()) <= t_scene * union
    if a == 1.0:
        assert out.tobytes() == prob.tobytes()
