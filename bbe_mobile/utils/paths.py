"""Default locations, resolved from this package and never from the current directory, so every command's
defaults mean the same files wherever it is started.

``REPO_ROOT`` is the checkout holding this package (an editable install). The shared data lives beside it in
``REPO_ROOT/../shared``; the environment variable ``BBE_SHARED`` points elsewhere (the tests read it too).
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("BBE_SHARED", REPO_ROOT.parent / "shared")).absolute()
COCO_MINI = SHARED / "data" / "coco-person-mini"
COCO_MINI_VAL = COCO_MINI / "val"
COCO_MINI_VAL_ANNOTATIONS = COCO_MINI / "instances_person_val.json"
COCO_MINI_TRAIN = COCO_MINI / "train"
MOBILENET_V2_035_WEIGHTS = SHARED / "weights" / "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5"
# MoveNet Lightning's MobileNetV2-1.0 backbone: person-trained (COCO keypoints train2017 + Google's "Active" set)
MOBILENET_V2_100_MOVENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_movenet_lightning_no_top.weights.h5"
# train's default backbone file by alpha: ImageNet for 0.35; for 1.0 the person-trained MoveNet backbone, which
# beat ImageNet-1.0 in issue 22's A/B (docs/training.md)
MOBILENET_V2_WEIGHTS = {0.35: MOBILENET_V2_035_WEIGHTS, 1.0: MOBILENET_V2_100_MOVENET_WEIGHTS}
DEFAULT_MODEL = REPO_ROOT / "models" / "bbe_mnv2_100"
GOLDEN_DIR = REPO_ROOT / "tests" / "golden"
