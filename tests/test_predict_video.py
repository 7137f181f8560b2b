"""``predict --video`` end to end on tiny generated clips (tiny model), and its refusals of bad input."""
import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools import mask as mask_utils

from bbe_mobile.cli import main
from bbe_mobile.predict_video import id_colors, probe_video


def write_clip(path: Path, frames: list[np.ndarray], codec: str = "libx264", rate: int = 10) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def pan_frames(coco_val, count: int, size=(96, 72)) -> list[np.ndarray]:
    """A horizontal pan over a real COCO photo: ``count`` frames of ``size`` (w, h) pixels."""
    photo = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    with Image.open(photo) as im:
        image = np.asarray(im.convert("RGB").resize((160, 72)))
    return [np.ascontiguousarray(image[:, 6 * t: 6 * t + size[0]]) for t in range(count)]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_predict_video_writes_overlay_mp4_and_json_lines(tiny_bundle, coco_val, tmp_path):
    clip = write_clip(tmp_path / "pan.mp4", pan_frames(coco_val, 5))
    out = tmp_path / "out"
    result = invoke("predict", "--video", clip, "--model", tiny_bundle, "--out", out, "--t-c", "0.1", "--t-fg",
                    "0.1", "--t-iou", "0.1", "--main-person")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1].startswith(f"{clip}: 5 frames, ")
    records = [json.loads(line) for line in (out / "pan.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(5))
    assert records[1]["time"] == pytest.approx(0.1)
    for r in records:
        ids = [inst["id"] for inst in r["instances"]]
        assert len([i for i in ids if i]) == len(set(i for i in ids if i))
        assert r["main_id"] == 0 or r["main_id"] >= 1
        for inst in r["instances"]:
            assert mask_utils.decode(inst["segmentation"]).shape == (72, 96) and len(inst["box"]) == 4
    with av.open(str(out / "pan.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (72, 96, 3)
    assert not list(out.glob(".tmp-*"))


@pytest.mark.slow  # a model load for the stream broken mid-way (~7 s)
def test_predict_video_refuses_bad_input_and_writes_nothing(tiny_bundle, coco_val, tmp_path):
    out = tmp_path / "out"
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    frames = pan_frames(coco_val, 12)
    whole = write_clip(tmp_path / "whole.mkv", frames).read_bytes()
    empty = tmp_path / "empty.mkv"  # the header alone: a stream is declared, no frame follows
    for cut in range(100, len(whole), 20):
        empty.write_bytes(whole[:cut])
        try:
            probe_video(empty)
            break
        except ValueError:
            continue
    broken = tmp_path / "broken.mkv"
    broken.write_bytes(whole[: len(whole) * 3 // 5])
    cases = {tmp_path / "missing.mp4": "no such file", text: "not a readable video", empty: "no decodable frame",
             broken: "the stream breaks"}
    for path, message in cases.items():
        result = invoke("predict", "--video", path, "--model", tiny_bundle, "--out", out)
        assert result.exit_code == 2, (path, result.output)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], (path, result.output)
        assert "Traceback" not in result.output
        assert not out.exists() or not list(out.iterdir()), (path, list(out.iterdir()))
    assert invoke("predict", "--main-person", text).exit_code == 2  # needs --video


def test_probe_reads_the_declaration(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", [np.zeros((48, 64, 3), np.uint8)] * 3, rate=12)
    info = probe_video(clip)
    assert (info.width, info.height, info.fps, info.frames) == (64, 48, 12, 3)


def test_id_colors_are_stable_per_id():
    a = id_colors(np.array([3, 1, 0]))
    b = id_colors(np.array([1, 5, 3]))
    assert (a[0] == b[2]).all() and (a[1] == b[0]).all() and tuple(a[2]) == (160, 160, 160)
    dim = id_colors(np.array([1, 2]), main_id=2, main_only=True)
    assert tuple(dim[0]) == (60, 60, 60) and (dim[1] == id_colors(np.array([2]))[0]).all()
