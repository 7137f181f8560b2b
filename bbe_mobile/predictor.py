"""``Predictor``: image in, person instances in original image coordinates out (letterbox -> runner -> grouper)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bbe_mobile.grouper import GrouperConfig, Instances, boxes_to_image, group, labels_to_image
from bbe_mobile.letterbox import Letterbox, letterbox_image


@dataclass(frozen=True)
class Prediction:
    """Instances of one image: ``labels`` (h0, w0) int32 (0 = background), ``boxes`` (M, 4) float32 x1 y1 x2 y2
    in original pixels, ``scores`` (M,); ``prob`` (H, W) and ``cells`` (the grouper's output at model stride)."""

    labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    prob: np.ndarray
    cells: Instances
    letterbox: Letterbox

    def masks(self) -> np.ndarray:
        """(M, h0, w0) bool masks, one per instance."""
        return self.labels[None] == np.arange(1, len(self.scores) + 1)[:, None, None]

    def person_mask(self, t_fg: float = 0.5) -> np.ndarray:
        """(h0, w0) bool semantic person mask: probabilities upsampled bilinearly to the image, >= t_fg."""
        side = self.letterbox.side
        h, w = self.letterbox.content_hw
        h0, w0 = self.letterbox.image_hw
        canvas = np.asarray(Image.fromarray(self.prob).resize((side, side), Image.BILINEAR))[:h, :w]
        return np.asarray(Image.fromarray(canvas).resize((w0, h0), Image.BILINEAR)) >= t_fg


class Predictor:
    """Runs any runner (``runtime.KerasRunner`` or an exported artifact's) on images of any size."""

    def __init__(self, runner, grouper: GrouperConfig | None = None, size: int | None = None):
        self.runner = runner
        self.grouper = grouper or runner.grouper
        self.size = size or runner.input_size

    def predict(self, image: np.ndarray) -> Prediction:
        """RGB uint8 image (h0, w0, 3) -> Prediction."""
        return self.group(*self.forward(image))

    def forward(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, Letterbox]:
        """Letterbox and run the model: ``prob`` (H, W), ``offsets`` (H, W, 4) and the letterbox geometry."""
        canvas, box = letterbox_image(image, self.size)
        if canvas.shape[0] != self.runner.input_size:
            raise ValueError(f"letterbox side {canvas.shape[0]} does not match the model input {self.runner.input_size}")
        prob, offsets = self.runner.run(canvas)
        return prob, offsets, box

    def group(self, prob: np.ndarray, offsets: np.ndarray, box: Letterbox,
              grouper: GrouperConfig | None = None) -> Prediction:
        """Group model maps into instances in original image coordinates (``grouper``: default the predictor's)."""
        stride = box.side / prob.shape[0]
        cells = group(prob, offsets, stride, grouper or self.grouper)
        return Prediction(labels_to_image(cells.labels, stride, box.scale, box.image_hw),
                          boxes_to_image(cells.boxes, box.scale, box.image_hw), cells.scores, prob, cells, box)
