"""Peer person-segmentation models from ``../shared/peers`` (LiteRT): MediaPipe selfie segmentation and
Coral's DeepLabv3-MobileNetV2 PASCAL (person = class 15). Used for accuracy and latency comparisons."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bbe_mobile.runtime import litert_interpreter_class

PASCAL_PERSON = 15


@dataclass
class PeerSegmenter:
    """A LiteRT semantic segmenter: ``kind`` is ``mediapipe`` (float [0, 1] input stretched to the input
    size, person-probability output) or ``deeplab`` (uint8 input, per-pixel class output)."""

    path: str
    kind: str
    num_threads: int | None = None

    def __post_init__(self):
        if not Path(self.path).is_file():
            raise ValueError(f"peer model not found: {self.path}")
        self.interpreter = litert_interpreter_class()(model_path=str(self.path), num_threads=self.num_threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.input_hw = tuple(int(v) for v in self.input["shape"][1:3])

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (h0, w0, 3) -> the model's input tensor (the image stretched to the input size)."""
        h, w = self.input_hw
        resized = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
        if self.kind == "mediapipe":
            return (resized.astype(np.float32) / 255.0)[None]
        return resized.astype(self.input["dtype"])[None]

    def forward(self, tensor: np.ndarray) -> np.ndarray:
        """One inference: the raw output (h, w) (probability for mediapipe, class for deeplab)."""
        self.interpreter.set_tensor(self.input["index"], tensor)
        self.interpreter.invoke()
        return np.asarray(self.interpreter.get_tensor(self.output["index"])).reshape(self.input_hw)

    def person_mask(self, image: np.ndarray) -> np.ndarray:
        """(h0, w0) bool person mask, the output resized back to the image."""
        out = self.forward(self.prepare(image))
        h0, w0 = image.shape[:2]
        if self.kind == "mediapipe":
            return np.asarray(Image.fromarray(out.astype(np.float32)).resize((w0, h0), Image.BILINEAR)) >= 0.5
        person = (out == PASCAL_PERSON).astype(np.uint8)
        return np.asarray(Image.fromarray(person).resize((w0, h0), Image.NEAREST)) > 0


def shared_peers(shared: Path, num_threads: int | None = None) -> list[PeerSegmenter]:
    """The peers present under ``shared/peers`` (none if the folder is absent)."""
    candidates = [("mediapipe/selfie_segmentation.tflite", "mediapipe"),
                  ("coral/deeplabv3_mnv2_dm05_pascal_quant.tflite", "deeplab"),
                  ("coral/deeplabv3_mnv2_pascal_quant.tflite", "deeplab")]
    return [PeerSegmenter(str(shared / "peers" / rel), kind, num_threads)
            for rel, kind in candidates if (shared / "peers" / rel).is_file()]


def time_calls(fn, runs: int, warmup: int = 3) -> list[float]:
    """Wall-clock ms of ``runs`` calls of ``fn()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples
