"""``VideoPredictor``: frames in, person instances with stable IDs and the main person out (``Predictor`` plus the
tracker of ``docs/tracker.md``). One instance per video stream: it carries the tracker state from frame to frame."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bbe_mobile.predictor import Prediction, Predictor
from bbe_mobile.tracker import TrackerConfig, TrackerState, track_frame


@dataclass(frozen=True)
class VideoFrame:
    """One frame's result: the ``prediction`` (grouped from the smoothed probability map), ``ids`` (M,) int32 per
    instance (0: not yet confirmed), ``main_id`` (0: none) and whether smoothing was reset by a scene change."""

    prediction: Prediction
    ids: np.ndarray
    main_id: int
    scene_change: bool


class VideoPredictor:
    """Runs a ``Predictor`` on consecutive frames of one video with smoothing and tracking (``tracker`` config)."""

    def __init__(self, predictor: Predictor, tracker: TrackerConfig | None = None):
        self.predictor = predictor
        self.config = tracker or TrackerConfig()
        self.config.validate()
        self.state = TrackerState()

    def reset(self) -> None:
        """Start a new video: no smoothing history, no tracks (IDs restart at 1)."""
        self.state = TrackerState()

    def predict(self, frame: np.ndarray) -> VideoFrame:
        """RGB uint8 frame (h0, w0, 3) -> VideoFrame."""
        prob, offsets, box = self.predictor.forward(frame)
        return self.track(prob, offsets, box)

    def track(self, prob: np.ndarray, offsets: np.ndarray, box) -> VideoFrame:
        """Smooth, group and track model maps ``prob`` (H, W), ``offsets`` (H, W, 4) of one frame (letterbox
        ``box``)."""
        cells_per_pixel = prob.shape[0] / box.side
        content = (box.content_hw[0] * cells_per_pixel, box.content_hw[1] * cells_per_pixel)
        grouped: list[Prediction] = []

        def group_smoothed(smoothed: np.ndarray):
            grouped.append(self.predictor.group(smoothed, offsets, box))
            return grouped[0].cells

        self.state, _, tracked = track_frame(self.state, prob, group_smoothed, self.config, content)
        return VideoFrame(grouped[0], tracked.ids, tracked.main_id, tracked.scene_change)
