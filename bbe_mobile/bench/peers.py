"""Peer person-segmentation models from ``../shared/peers`` (LiteRT): MediaPipe selfie segmentation and
Coral's DeepLabv3-MobileNetV2 PASCAL (person = class 15), and their bench at their own input sizes. Used for
accuracy and latency comparisons."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bbe_mobile.bench.options import BenchOptions
from bbe_mobile.bench.timing import Progress, summarize, time_interleaved
from bbe_mobile.utils.paths import SHARED

PASCAL_PERSON = 15


@dataclass
class PeerSegmenter:
    """A LiteRT semantic segmenter: ``kind`` is ``mediapipe`` (float [0, 1] input stretched to the input
    size, person-probability output) or ``deeplab`` (uint8 input, per-pixel class output)."""

    path: str
    kind: str
    num_threads: int | None = None

    def __post_init__(self):
        from bbe_mobile.export.runtime import new_litert_interpreter  # noqa: PLC0415 (loads the model stack)

        if not Path(self.path).is_file():
            raise ValueError(f"peer model not found: {self.path}")
        self.interpreter = new_litert_interpreter(model_path=str(self.path), num_threads=self.num_threads)
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


def bench_peers(options: BenchOptions, progress: Progress, log) -> list[dict]:
    """Peer segmenters from ../shared/peers at their input sizes, the same threads, interleaved."""
    if not (SHARED / "peers").is_dir():
        log(f"note: peers skipped: {SHARED / 'peers'} is absent")
        return []
    image = None
    try:
        from bbe_mobile.export.images import DEFAULT_VERIFY_DIR, image_files  # noqa: PLC0415
        from bbe_mobile.letterbox import read_image  # noqa: PLC0415

        image = read_image(str(image_files(options.verify_images or DEFAULT_VERIFY_DIR, 1)[0]))
    except (ValueError, OSError):
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    fns, info = {}, {}
    for n in options.threads:
        try:
            peers = shared_peers(SHARED, num_threads=n)
        except ValueError as exc:
            log(f"note: peers skipped: {exc}")
            return []
        for peer in peers:
            tensor = peer.prepare(image)
            fns[(peer.name, n)] = (lambda p=peer, t=tensor: p.forward(t))
            info[peer.name] = {"name": peer.name, "kind": peer.kind, "path": peer.path,
                               "input": f"{peer.input_hw[1]}x{peer.input_hw[0]}",
                               "dtype": np.dtype(peer.input["dtype"]).name,
                               "size_mb": Path(peer.path).stat().st_size / 1e6, "latency": {}}
    progress.add(len(fns) * options.runs, "peers")
    times = time_interleaved(fns, options.runs, options.warmup, progress)
    for (name, n), samples in times.items():
        info[name]["latency"][str(n)] = summarize(samples)
    return list(info.values())
