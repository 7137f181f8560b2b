"""``VideoPredictor`` (bbe_mobile/video.py) on a stand-in runner that replays rendered maps: IDs follow the people,
``reset`` starts a new video, the content extent follows the letterbox."""
import numpy as np

from bbe_mobile.golden_tracking import render
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.predictor import Predictor
from bbe_mobile.tracker import TrackerConfig
from bbe_mobile.video import VideoPredictor


class ReplayRunner:
    """Returns the next (prob, offsets) of a rendered sequence on every call, whatever the image."""

    input_size = 192
    grouper = GrouperConfig()

    def __init__(self, probs, offsets):
        self.maps = list(zip(probs, offsets))
        self.calls = 0

    def run(self, canvas):
        assert canvas.shape == (192, 192, 3)
        prob, offsets = self.maps[self.calls % len(self.maps)]
        self.calls += 1
        return prob, offsets


def test_video_predictor_keeps_ids_and_resets():
    frames = [[((10 + 3 * t, 20, 50 + 3 * t, 110), 0.9), ((120, 30, 160, 120), 0.93)] for t in range(6)]
    runner = ReplayRunner(*render(frames, 48, 48))
    video = VideoPredictor(Predictor(runner), TrackerConfig(min_hits=2))
    image = np.zeros((96, 192, 3), np.uint8)  # landscape: the content is the top half of the map
    results = [video.predict(image) for _ in range(6)]
    assert [r.ids.tolist() for r in results] == [[0, 0]] + [[1, 2]] * 5
    assert results[0].scene_change and not any(r.scene_change for r in results[1:])
    assert all(r.prediction.labels.shape == (96, 192) for r in results)
    assert results[-1].main_id in (1, 2)
    video.reset()
    assert video.predict(image).ids.tolist() == [0, 0] and video.state.next_id == 1
