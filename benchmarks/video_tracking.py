"""Tracking on clips made from real COCO photos (docs/tracker.md): ID switches, fragmented tracks and mask flicker
with and without smoothing, and the frames per second of the whole ``predict --video`` path.

No real video is at hand, so the clips are built from held-out val images (the first single-person val images,
never trained on) with the true person of every frame known by construction:

- ``pan``: a window sliding across a photo of one person; ``zoom``: a window closing in on them;
- ``still``: the same photo with fresh sensor noise each frame (nothing moves: the flicker clip);
- ``walk``: a person (cut out with its COCO mask) walks on a blurred photo while another stands apart (no overlap);
- ``enter_leave``: a pasted person enters on the left and leaves on the right;
- ``pass_in_front``: a pasted person walks across in front of a standing one (they overlap).

A predicted instance is a true person's when their masks (frame pixels) have IoU >= 0.5 (greedy by IoU). Per true
person: an **ID switch** is a confirmed ID differing from the one it last had; it is **fragmented** when it gets
more than one ID over the clip. **Flicker** is the mean 1 - IoU of a person's predicted mask between consecutive
frames in which that person's true mask is the same (``still`` and the standing people while nothing covers them). Model maps are computed once per
frame and tracked twice: with the default smoothing and with ``smoothing=1`` (none), so both see the same input.

Usage: python benchmarks/video_tracking.py [--model BUNDLE] [--size 256] [--frames 12]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from bbe_mobile.evaluate import subset_ids
from bbe_mobile.export.runtime import load_runner
from bbe_mobile.letterbox import canvas_side
from bbe_mobile.predict_video import predict_video
from bbe_mobile.predictor import Predictor
from bbe_mobile.tracker import TrackerConfig
from bbe_mobile.training.data import CocoPersons
from bbe_mobile.video import VideoPredictor

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FRAME_W, FRAME_H = 320, 240
MATCH_IOU = 0.5


@dataclasses.dataclass
class Clip:
    """Frames (T, H, W, 3) uint8 and the true masks (T, P, H, W) bool of P people."""

    name: str
    frames: list[np.ndarray]
    truth: list[np.ndarray]
    overlapping: bool


def view(image: np.ndarray, mask: np.ndarray, window: tuple[float, float, float, float]):
    """Crop ``window`` (x0, y0, w, h in source pixels) of an image and its mask, resized to the frame size."""
    x0, y0, w, h = window
    shrink = min(1.0, image.shape[1] / w, image.shape[0] / h)  # kept inside the image, aspect unchanged
    w, h = w * shrink, h * shrink
    x0, y0 = min(max(x0, 0.0), image.shape[1] - w), min(max(y0, 0.0), image.shape[0] - h)
    box = (x0, y0, x0 + w, y0 + h)
    frame = Image.fromarray(image).resize((FRAME_W, FRAME_H), Image.BILINEAR, box=box)
    m = Image.fromarray(mask.astype(np.uint8) * 255).resize((FRAME_W, FRAME_H), Image.NEAREST, box=box)
    return np.asarray(frame), np.asarray(m) > 127


def sprite(image: np.ndarray, mask: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """The masked person cut to its box and scaled to ``height`` pixels: RGB (h, w, 3) and mask (h, w) bool."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    crop = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    width = max(1, round(height * (cols[-1] - cols[0] + 1) / (rows[-1] - rows[0] + 1)))
    rgb = np.asarray(Image.fromarray(image[crop]).resize((width, height), Image.BILINEAR))
    m = np.asarray(Image.fromarray(mask[crop].astype(np.uint8) * 255).resize((width, height), Image.NEAREST)) > 127
    return rgb, m


def paste(frame: np.ndarray, masks: list[np.ndarray], person: tuple[np.ndarray, np.ndarray], x: int, y: int):
    """Paste ``person`` at top-left (x, y) (may lie partly outside); earlier masks lose the covered pixels.
    Returns the new frame and masks (the pasted person's last)."""
    rgb, m = person
    h, w = m.shape
    full = np.zeros((FRAME_H, FRAME_W), bool)
    ys, xs = slice(max(y, 0), min(y + h, FRAME_H)), slice(max(x, 0), min(x + w, FRAME_W))
    if ys.start < ys.stop and xs.start < xs.stop:
        full[ys, xs] = m[ys.start - y: ys.stop - y, xs.start - x: xs.stop - x]
    out = frame.copy()
    placed = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    if full.any():
        placed[ys, xs] = rgb[ys.start - y: ys.stop - y, xs.start - x: xs.stop - x]
    out[full] = placed[full]
    return out, [mm & ~full for mm in masks] + [full]


def _whole_upright_person(mask: np.ndarray) -> bool:
    """A standing person seen whole: box at least 1.6 times as tall as wide, over half the image height, touching
    no image border (a cut-out that looks like a person when pasted)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    inside = rows[0] > 0 and cols[0] > 0 and rows[-1] < mask.shape[0] - 1 and cols[-1] < mask.shape[1] - 1
    return bool(inside and h >= 1.6 * w and h > 0.5 * mask.shape[0])


def make_clips(dataset: CocoPersons, frames: int, seed: int = 0) -> list[Clip]:
    """The six clips (see the module docstring) from the first three single-person val images showing a whole,
    upright person."""
    people = []
    for image_id in subset_ids(dataset, "single", 300):
        masks, crowd = dataset.masks(image_id)
        mask = masks[~crowd.astype(bool)][0].astype(bool) if (~crowd.astype(bool)).any() else None
        if mask is not None and _whole_upright_person(mask):
            people.append((dataset.image(image_id), mask))
        if len(people) == 3:
            break
    (photo, photo_mask), (a_img, a_mask), (b_img, b_mask) = people
    rng = np.random.default_rng(seed)
    h0, w0 = photo_mask.shape
    t = np.linspace(0, 1, frames)
    clips = []
    win_w = 0.75 * w0
    pan = [view(photo, photo_mask, ((w0 - win_w) * s, 0.1 * h0, win_w, win_w * FRAME_H / FRAME_W)) for s in t]
    clips.append(Clip("pan", [f for f, _ in pan], [m[None] for _, m in pan], False))
    ys, xs = np.nonzero(photo_mask)
    cx, cy = xs.mean(), ys.mean()
    zoom = []
    for s in t:
        w = w0 * (1 - 0.4 * s)
        h = w * FRAME_H / FRAME_W
        zoom.append(view(photo, photo_mask, (cx - w / 2, cy - h / 2, w, h)))
    clips.append(Clip("zoom", [f for f, _ in zoom], [m[None] for _, m in zoom], False))
    base, base_mask = view(photo, photo_mask, (0, 0, w0, w0 * FRAME_H / FRAME_W))
    noisy = [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(frames)]
    clips.append(Clip("still", noisy, [base_mask[None]] * frames, False))

    background = np.asarray(Image.fromarray(photo).resize((FRAME_W, FRAME_H)).filter(ImageFilter.GaussianBlur(12)))
    walker, stander = sprite(a_img, a_mask, 170), sprite(b_img, b_mask, 160)
    sw = stander[1].shape[1]

    def scene(name, xs_walker, stander_x, overlapping):
        out, truth = [], []
        for x in xs_walker:
            frame, masks = background, []
            if stander_x is not None:
                frame, masks = paste(frame, masks, stander, stander_x, FRAME_H - 170)
            frame, masks = paste(frame, masks, walker, int(x), FRAME_H - 180)
            out.append(frame)
            truth.append(np.stack(masks))
        clips.append(Clip(name, out, truth, overlapping))

    ww = walker[1].shape[1]
    scene("walk", np.linspace(0, FRAME_W - sw - ww - 30, frames), FRAME_W - sw - 5, False)
    scene("enter_leave", np.linspace(-ww, FRAME_W, frames + 2)[1:-1], None, False)
    scene("pass_in_front", np.linspace(-ww // 2, FRAME_W - ww // 2, frames), (FRAME_W - sw) // 2, True)
    return clips


def match(truth: np.ndarray, labels: np.ndarray, count: int) -> dict[int, int]:
    """{true person: predicted instance (0-based)} greedy by mask IoU >= MATCH_IOU."""
    pairs = []
    for p, t in enumerate(truth):
        for k in range(count):
            pred = labels == k + 1
            union = np.logical_or(t, pred).sum()
            iou = np.logical_and(t, pred).sum() / union if union else 0.0
            if iou >= MATCH_IOU:
                pairs.append((-iou, p, k))
    out, used = {}, set()
    for _, p, k in sorted(pairs):
        if p not in out and k not in used:
            out[p] = k
            used.add(k)
    return out


def score_clip(clip: Clip, results) -> dict:
    """ID switches, fragmented people and flicker of one tracked clip (``results``: VideoFrames)."""
    people = clip.truth[0].shape[0]
    last_id, ids_seen = [0] * people, [set() for _ in range(people)]
    switches, flicker, previous, previous_truth = 0, [], [None] * people, [None] * people
    for truth, result in zip(clip.truth, results):
        matched = match(truth, result.prediction.labels, len(result.ids))
        for p in range(people):
            mask = result.prediction.labels == matched[p] + 1 if p in matched else None
            unmoved = previous_truth[p] is not None and np.array_equal(truth[p], previous_truth[p])
            if unmoved and truth[p].any() and mask is not None and previous[p] is not None:
                union = np.logical_or(mask, previous[p]).sum()
                flicker.append(1 - np.logical_and(mask, previous[p]).sum() / union if union else 0.0)
            previous[p], previous_truth[p] = mask, truth[p]
            pid = int(result.ids[matched[p]]) if p in matched else 0
            if pid:
                switches += bool(last_id[p] and pid != last_id[p])
                last_id[p] = pid
                ids_seen[p].add(pid)
    return {"switches": switches, "fragmented": sum(len(s) > 1 for s in ids_seen),
            "tracked": sum(bool(s) for s in ids_seen), "people": people,
            "flicker": float(np.mean(flicker)) if flicker else None}


def run(args) -> int:
    coco = SHARED / "data" / "coco-person-mini"
    dataset = CocoPersons(str(coco / "val"), str(coco / "instances_person_val.json"))
    clips = make_clips(dataset, args.frames)
    runner = load_runner(args.model, input_size=canvas_side(args.size))
    predictor = Predictor(runner, size=args.size)
    configs = {"smoothing": TrackerConfig(), "no smoothing": TrackerConfig(smoothing=1.0)}
    print(f"model {args.model or 'bundled'}, letterbox {args.size}, {FRAME_W}x{FRAME_H} frames, {args.frames} "
          f"per clip; tracker defaults {TrackerConfig()}", flush=True)
    rows = []
    for clip in clips:
        maps = [predictor.forward(frame) for frame in clip.frames]  # one forward per frame, tracked twice
        for label, config in configs.items():
            video = VideoPredictor(predictor, config)
            scored = score_clip(clip, [video.track(*m) for m in maps])
            rows.append((clip.name, label, clip.overlapping, scored))
    print("\n| clip | tracking | people overlap | true people tracked | ID switches | fragmented people | "
          "flicker (mean 1 - IoU, unmoved people) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, label, overlapping, s in rows:
        flicker = f"{s['flicker']:.4f}" if s["flicker"] is not None else "-"
        print(f"| {name} | {label} | {'yes' if overlapping else 'no'} | {s['tracked']}/{s['people']} | "
              f"{s['switches']} | {s['fragmented']} | {flicker} |")
    for label in configs:
        values = [s["flicker"] for _, lab, _, s in rows if lab == label and s["flicker"] is not None]
        print(f"mean flicker, {label}: " + (f"{np.mean(values):.4f} over {len(values)} clips" if values
                                             else "- (no person matched in two unmoved frames)"))
    no_overlap = sum(s["switches"] for _, lab, overlapping, s in rows if not overlapping and lab == "smoothing")
    print(f"ID switches on clips without overlap (smoothing): {no_overlap}")

    import av  # noqa: PLC0415 (the clip file for the predict --video timing)

    with tempfile.TemporaryDirectory() as tmp:
        clip = next(c for c in clips if c.name == "walk")
        path = Path(tmp) / "walk.mp4"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = FRAME_W, FRAME_H, "yuv420p"
            for frame in clip.frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            container.mux(stream.encode())
        start = time.perf_counter()
        _, _, count = predict_video(VideoPredictor(predictor), path, Path(tmp) / "out")
        seconds = time.perf_counter() - start
    print(f"predict --video path (decode, model, smoothing, grouping, tracking, overlay, H.264 encode, JSON Lines): "
          f"{count} frames in {seconds:.2f} s = {count / seconds:.2f} frames/s at letterbox {args.size}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--size", type=int, default=256, help="letterbox size (longer side, input pixels)")
    parser.add_argument("--frames", type=int, default=12, help="frames per clip")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
