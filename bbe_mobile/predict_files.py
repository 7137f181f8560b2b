"""Writing ``predict`` outputs: an overlay PNG and a JSON of instances per image, atomically."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bbe_mobile.evaluate import encode_rle
from bbe_mobile.predictor import Prediction
from bbe_mobile.utils.atomic import atomic_path
from bbe_mobile.visualize import overlay


def prediction_json(path: str, prediction: Prediction) -> dict:
    """JSON-ready description: image size and, per instance, box (x1 y1 x2 y2, original pixels), score, RLE mask."""
    h0, w0 = prediction.letterbox.image_hw
    return {"image": str(path), "height": h0, "width": w0, "instances": [
        {"box": [float(v) for v in box], "score": float(score), "segmentation": encode_rle(mask)}
        for box, score, mask in zip(prediction.boxes, prediction.scores, prediction.masks())]}


def write_prediction(out_dir: str, path: str, image: np.ndarray, prediction: Prediction) -> tuple[Path, Path]:
    """Write ``out_dir/STEM.png`` and ``out_dir/STEM.json``; returns their paths. Both are written whole to hidden
    temporary files first and renamed into place back to back, PNG first: the JSON is the record, so ``STEM.json``
    exists only beside its complete ``STEM.png``. A kill between the two renames leaves a complete overlay without
    its JSON, which readers skip and the next run replaces."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    png, js = out / f"{stem}.png", out / f"{stem}.json"
    text = json.dumps(prediction_json(path, prediction))
    with atomic_path(js) as js_tmp:
        with atomic_path(png) as png_tmp:
            overlay(image, prediction).save(png_tmp, format="PNG")
            js_tmp.write_text(text)
    return png, js
