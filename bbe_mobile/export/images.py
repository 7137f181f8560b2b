"""The real images export reads, and the export stage's error: the default calibration and verification
directories, the sorted image listing of a directory and the letterboxed calibration canvases. Both ``convert``
and ``verify`` take them from here (``ExportError`` is raised by the listing, so it lives here too).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bbe_mobile.letterbox import letterbox_image, read_image
from bbe_mobile.utils import paths

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_CALIBRATION_DIR = paths.COCO_MINI_TRAIN  # disjoint from the verification images (val)
DEFAULT_VERIFY_DIR = paths.COCO_MINI_VAL


class ExportError(ValueError):
    """A conversion that cannot be done or produced a bad artifact (one clear line)."""


def image_files(directory: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files of a directory in sorted file-name order (the first ``limit``, None = all). Hidden files are
    left out: a killed writer's ``.tmp-*`` leftovers (half-written) and macOS ``._*`` resource forks."""
    if limit is not None and limit < 1:
        raise ExportError(f"the number of images must be >= 1, got {limit}")
    d = Path(directory)
    if not d.is_dir():
        raise ExportError(f"image directory not found: {d}")
    files = sorted(p for p in d.iterdir()
                   if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not files:
        raise ExportError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {d}")
    return files[:limit]


def calibration_canvases(directory: str | os.PathLike, input_size: int, limit: int) -> list[np.ndarray]:
    """The first ``limit`` images of ``directory`` (sorted names), letterboxed to ``input_size`` exactly as at
    inference (letterbox.letterbox_image: longer side = input_size, top-left, black padding, float RGB 0..255)."""
    return [letterbox_image(read_image(str(p)), input_size)[0] for p in image_files(directory, limit)]
