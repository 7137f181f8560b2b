"""``predict --video``: read a video with PyAV, run ``VideoPredictor`` on every frame and write an overlay MP4 (one
stable colour per person ID) and a JSON Lines file (one line per frame), both atomically: a bad or broken input
leaves no output file behind."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from bbe_mobile.evaluate import encode_rle
from bbe_mobile.utils.atomic import atomic_path
from bbe_mobile.video import VideoFrame, VideoPredictor
from bbe_mobile.visualize import instance_colors, overlay

TENTATIVE_COLOR = (160, 160, 160)  # people whose track is not confirmed yet (ID 0)
DIMMED_COLOR = (60, 60, 60)  # everyone but the main person in --main-person mode
DEFAULT_FPS = Fraction(30)


class VideoError(ValueError):
    """A video that cannot be read whole (not a video, no frames, broken mid-way); one-line message."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares: frame size, frames per second, frame count (0: unknown), duration (s or None)."""

    width: int
    height: int
    fps: Fraction
    frames: int
    duration: float | None


def _av():
    import av  # noqa: PLC0415 (PyAV is only needed for video)

    return av


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and read its first video stream's declaration; VideoError if it is not a readable video."""
    av = _av()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: holds no video stream")
            stream = container.streams.video[0]
            duration = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            return VideoInfo(stream.codec_context.width, stream.codec_context.height,
                             Fraction(stream.average_rate) if stream.average_rate else DEFAULT_FPS,
                             int(stream.frames or 0), duration)
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({exc.strerror or type(exc).__name__})") from None


def read_frames(path: str | Path, info: VideoInfo) -> Iterator[tuple[int, float, np.ndarray]]:
    """(index, time in seconds, RGB uint8 (h, w, 3)) of every frame; VideoError when decoding fails, the frame
    size changes, or the stream ends before the frame count or duration its container declares."""
    av = _av()
    count, end = 0, 0.0
    period = float(1 / info.fps)
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                image = frame.to_ndarray(format="rgb24")
                if image.shape[:2] != (info.height, info.width):
                    raise VideoError(f"{path}: frame {count} is {image.shape[1]}x{image.shape[0]}, the stream "
                                     f"declares {info.width}x{info.height}")
                time = float(frame.time) if frame.time is not None else count * period
                yield count, time, image
                count += 1
                end = time + period
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: the stream breaks at frame {count} ({exc.strerror or type(exc).__name__})") from None
    if count == 0:
        raise VideoError(f"{path}: holds no decodable frame")
    if info.frames and count < info.frames:
        raise VideoError(f"{path}: the stream breaks after {count} of the {info.frames} frames it declares")
    if info.frames == 0 and info.duration is not None and end < info.duration - 2 * period:
        raise VideoError(f"{path}: the stream breaks at {end:.2f} s of the {info.duration:.2f} s it declares")


def frame_record(index: int, time: float, result: VideoFrame) -> dict:
    """One JSON Lines record: frame index, time (s), main person ID and per instance its ID (0: not yet
    confirmed), box (x1 y1 x2 y2, original pixels), score and RLE mask."""
    p = result.prediction
    return {"index": index, "time": round(time, 6), "main_id": result.main_id, "instances": [
        {"id": int(i), "box": [float(v) for v in box], "score": float(score), "segmentation": encode_rle(mask)}
        for i, box, score, mask in zip(result.ids, p.boxes, p.scores, p.masks())]}


def id_colors(ids: np.ndarray, main_id: int = 0, main_only: bool = False) -> np.ndarray:
    """RGB uint8 (M, 3): one fixed colour per ID (golden-ratio hues by ID), grey for tentative tracks; with
    ``main_only`` everyone but ``main_id`` dark grey."""
    ids = np.asarray(ids, np.int64)
    palette = instance_colors(int(ids.max(initial=0)) + 1)
    colors = palette[ids] if len(ids) else np.zeros((0, 3), np.uint8)
    colors[ids == 0] = TENTATIVE_COLOR
    if main_only:
        colors[ids != main_id] = DIMMED_COLOR
    return colors


def _even(image: np.ndarray) -> np.ndarray:
    """Pad the bottom/right edge by one row/column where needed: yuv420p needs even sides."""
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def predict_video(video: VideoPredictor, path: str | Path, out_dir: str | Path, main_only: bool = False,
                  progress: Callable[[Iterator, int], Iterator] | None = None) -> tuple[Path, Path, int]:
    """Run ``video`` over every frame of ``path`` and write ``out_dir/STEM.mp4`` (overlay, H.264) and
    ``out_dir/STEM.jsonl``; returns their paths and the frame count. Both are written whole to hidden temporary
    files and renamed into place only after the last frame decoded, the JSON Lines last (it is the record).
    ``progress(frames, total)`` wraps the frame iterator (a progress bar); ``main_only`` dims everyone but the
    main person in the overlay."""
    av = _av()
    info = probe_video(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    mp4, jsonl = out / f"{stem}.mp4", out / f"{stem}.jsonl"
    frames = read_frames(path, info)
    if progress is not None:
        frames = progress(frames, info.frames)
    video.reset()
    count = 0
    with atomic_path(jsonl) as jsonl_tmp, atomic_path(mp4) as mp4_tmp:
        with av.open(str(mp4_tmp), "w", format="mp4") as container, jsonl_tmp.open("w") as lines:
            stream = container.add_stream("libx264", rate=info.fps)
            stream.width, stream.height = info.width + info.width % 2, info.height + info.height % 2
            stream.pix_fmt = "yuv420p"
            for index, time, image in frames:
                result = video.predict(image)
                lines.write(json.dumps(frame_record(index, time, result)) + "\n")
                picture = overlay(image, result.prediction, colors=id_colors(result.ids, result.main_id, main_only),
                                  captions=[f"#{i}" if i else "new" for i in result.ids.tolist()])
                frame = av.VideoFrame.from_ndarray(_even(np.asarray(picture)), format="rgb24")
                container.mux(stream.encode(frame))
                count += 1
            container.mux(stream.encode())
    return mp4, jsonl, count
