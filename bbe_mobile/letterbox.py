"""The one letterbox every path uses (predict, eval, verify, bench; the apps do the same, docs/grouper.md), and
the one image-file reader (``read_image``: orientation and pixel formats as phones and cameras save them).

The image is scaled by ``scale = size / max(h0, w0)`` so its longer side is ``size`` pixels, and placed at the
top-left of a square canvas whose side is ``size`` rounded up to a multiple of 16, the rest black.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps


def canvas_side(size: int) -> int:
    """Model input side for a letterbox of ``size``: the next multiple of 16 (pixels)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    return -(-size // 16) * 16


@dataclass(frozen=True)
class Letterbox:
    """Geometry of one letterboxed image: original ``(h0, w0)``, ``scale`` (input px per original px),
    content ``(h, w)`` and square canvas ``side`` (input pixels)."""

    image_hw: tuple[int, int]
    scale: float
    content_hw: tuple[int, int]
    side: int

    @classmethod
    def fit(cls, image_hw: tuple[int, int], size: int) -> "Letterbox":
        h0, w0 = image_hw
        if h0 <= 0 or w0 <= 0:
            raise ValueError(f"image must be non-empty, got {h0}x{w0}")
        scale = size / max(h0, w0)
        content = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        return cls((h0, w0), scale, content, canvas_side(size))


def letterbox_image(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """RGB uint8 image (h0, w0, 3) -> canvas (side, side, 3) float32 in [0, 255] (bilinear) and its geometry."""
    box = Letterbox.fit(image.shape[:2], size)
    h, w = box.content_hw
    canvas = np.zeros((box.side, box.side, 3), np.float32)
    canvas[:h, :w] = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR), np.float32)
    return canvas, box


def letterbox_masks(masks: np.ndarray, box: Letterbox) -> np.ndarray:
    """Masks (N, h0, w0) -> (N, side, side) uint8 through the same letterbox (nearest neighbour)."""
    h, w = box.content_hw
    out = np.zeros((len(masks), box.side, box.side), np.uint8)
    for k, m in enumerate(masks):
        out[k, :h, :w] = np.asarray(Image.fromarray(m.astype(np.uint8)).resize((w, h), Image.NEAREST))
    return out


# EXIF orientation values (1..8) that turn the stored pixel grid by 90 degrees, so width and height swap.
_SWAPS_AXES = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # "I": 16-bit PNGs open as 32-bit integers
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_EIGHT_BIT_MODES = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr") + _ALPHA_MODES


class ImageFileError(ValueError):
    """An image file that cannot be segmented; the message names the file and the reason in one line."""


def read_image(path: str, annotated_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image file as RGB uint8 (h, w, 3); ImageFileError (a ValueError) naming the file otherwise.

    Orientation: without ``annotated_hw`` the image comes as it is displayed (its EXIF orientation applied), so
    predictions and overlays are in the coordinates a user sees. With ``annotated_hw`` (the ``height``,
    ``width`` an annotation file gives the image) it comes in the orientation those annotations use: the stored
    pixel grid when its size matches (COCO's convention, also for 180-degree turns and mirrors, whose size
    matches both), else the displayed one when that matches; neither is an error.

    Pixels: 8-bit RGB, grayscale, bilevel, CMYK and palette images are converted to RGB; 16-bit grayscale is
    scaled to 8 bits (``round(v / 257)``); transparency is composited over black (the letterbox fill). The
    primary image of an MPO (the JPEG kind many phones save) is used; other multi-frame files (animated GIF/PNG,
    multi-page TIFF) and float or other colour modes (LAB, HSV) are refused, as are images over
    ``PIL.Image.MAX_IMAGE_PIXELS`` x 2 pixels.
    """
    with _open_image(path) as im:
        frames = getattr(im, "n_frames", 1)
        if frames > 1 and im.format != "MPO":
            raise ImageFileError(f"{path} holds {frames} frames ({im.format}); save the frame to segment as an "
                                 "image of its own")
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
        stored = annotated_hw is not None and _stored_grid_matches(im.size, orientation, annotated_hw, path)
        if orientation != 1 and not stored:
            im = ImageOps.exif_transpose(im)
        return _rgb_pixels(im, path)


def check_annotated_size(path: str, annotated_hw: tuple[int, int]) -> None:
    """ImageFileError unless the image file's size (read from its header, nothing decoded) matches the
    annotations' ``(height, width)`` in the stored or the displayed orientation, as ``read_image`` needs."""
    with _open_image(path) as im:
        _stored_grid_matches(im.size, im.getexif().get(_EXIF_ORIENTATION, 1), annotated_hw, path)


@contextlib.contextmanager
def _open_image(path: str):
    """``PIL.Image.open`` whose every failure, while opening or while the body reads pixels, is one
    ImageFileError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # large phone photos are fine
            with Image.open(path) as im:
                yield im
    except ImageFileError:
        raise
    except FileNotFoundError:
        raise ImageFileError(f"image not found: {path}") from None
    except Image.DecompressionBombError:
        raise ImageFileError(f"image too large: {path} (over {2 * Image.MAX_IMAGE_PIXELS} pixels)") from None
    except Exception as exc:  # PIL raises several types for bad files
        raise ImageFileError(f"not a readable image: {path} ({type(exc).__name__})") from None


def _stored_grid_matches(stored_wh: tuple[int, int], orientation: int, annotated_hw: tuple[int, int],
                         path: str) -> bool:
    """True if annotations of size ``annotated_hw`` (h, w) refer to the stored pixel grid, False if to the
    displayed (EXIF-oriented) image; ImageFileError if to neither."""
    w, h = stored_wh
    if (h, w) == tuple(annotated_hw):
        return True
    if orientation in _SWAPS_AXES and (w, h) == tuple(annotated_hw):
        return False
    raise ImageFileError(f"{path} is {w}x{h} pixels (EXIF orientation {orientation}) but its annotations give "
                     f"{annotated_hw[1]}x{annotated_hw[0]}")


def _rgb_pixels(im: Image.Image, path: str) -> np.ndarray:
    """Pixels of an opened image as RGB uint8 (h, w, 3), see ``read_image``."""
    if im.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(im)
        if values.min() < 0 or values.max() > 65535:
            raise ImageFileError(f"{path} has {im.mode} pixels outside 0..65535")
        gray = np.round(values / 257).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode not in _EIGHT_BIT_MODES:
        raise ImageFileError(f"{path} has {im.mode} pixels, which are not supported (save it as 8- or 16-bit RGB or "
                         "grayscale)")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), np.float32)
        return np.round(rgba[..., :3] * (rgba[..., 3:] / 255)).astype(np.uint8)
    return np.asarray(im.convert("RGB"))
