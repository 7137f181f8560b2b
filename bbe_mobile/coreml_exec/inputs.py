"""The inputs of an ML Program: how the model describes each (tensor or image, enumerated shapes or ranges)
and the conversion of a caller's array or PIL image into the program's tensor, checked against that description.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bbe_mobile.coreml_exec.errors import CoreMLExecError, UnsupportedOpError
from bbe_mobile.coreml_exec.values import _NP_OF, _TensorType


@dataclass(frozen=True)
class InputInfo:
    """An input as the model describes it: a tensor or an image, its enumerated shapes or per-dimension ranges."""

    name: str
    kind: str  # "tensor" or "image"
    program_type: _TensorType
    shapes: tuple[tuple[int, ...], ...] | None  # enumerated shapes (program layout), or None
    ranges: tuple[tuple[int, int], ...] | None  # per-dim (lo, hi) of the program tensor (hi -1 = unbounded)
    color: str | None = None  # RGB / BGR / GRAYSCALE for images


def input_info(feature, ptype: _TensorType) -> InputInfo:
    """How the model describes input ``feature`` (tensor or image; enumerated shapes or ranges), with ``ptype``
    the tensor type the program declares for it."""
    kind = feature.type.WhichOneof("Type")
    if kind == "multiArrayType":
        ma = feature.type.multiArrayType
        shapes = ranges = None
        flex = ma.WhichOneof("ShapeFlexibility")
        if flex == "enumeratedShapes":
            shapes = tuple(tuple(int(d) for d in s.shape) for s in ma.enumeratedShapes.shapes)
        elif flex == "shapeRange":
            ranges = tuple((int(r.lowerBound), int(r.upperBound)) for r in ma.shapeRange.sizeRanges)
        elif ptype.static_shape is None:
            raise CoreMLExecError(f"input {feature.name}: dynamic program shape without a flexible shape spec")
        return InputInfo(feature.name, "tensor", ptype, shapes, ranges)
    if kind == "imageType":
        im = feature.type.imageType
        color = {10: "GRAYSCALE", 20: "RGB", 30: "BGR", 40: "GRAYSCALE_FLOAT16"}.get(im.colorSpace)
        if color is None:
            raise UnsupportedOpError(f"input {feature.name}: unsupported image color space {im.colorSpace}")
        c = 1 if color.startswith("GRAYSCALE") else 3
        shapes = ranges = None
        flex = im.WhichOneof("SizeFlexibility")
        if flex == "enumeratedSizes":
            shapes = tuple((1, c, int(s.height), int(s.width)) for s in im.enumeratedSizes.sizes)
        elif flex == "imageSizeRange":
            r = im.imageSizeRange
            ranges = ((1, 1), (c, c), (int(r.heightRange.lowerBound), int(r.heightRange.upperBound)),
                      (int(r.widthRange.lowerBound), int(r.widthRange.upperBound)))
        else:
            shapes = ((1, c, int(im.height), int(im.width)),)
        return InputInfo(feature.name, "image", ptype, shapes, ranges, color)
    raise UnsupportedOpError(f"input {feature.name}: unsupported feature type {kind!r}")


def prepare_input(info: InputInfo, value, keep_fp32: bool) -> np.ndarray:
    """``value`` checked against the model's shapes and cast to the program's dtype (float16 kept in float32 with
    ``keep_fp32``)."""
    if info.kind == "image":
        arr = image_array(info, value)
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:
            raise CoreMLExecError(f"input {info.name}: not an array ({type(value).__name__})") from exc
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise CoreMLExecError(f"input {info.name}: numeric array expected, got dtype {arr.dtype}")
    shape = tuple(arr.shape)
    if info.shapes is not None:
        if shape not in info.shapes:
            raise CoreMLExecError(f"input {info.name}: shape {list(shape)} is not one of the model's "
                                  f"shapes {[list(s) for s in info.shapes]}")
    elif info.ranges is not None:
        ok = len(shape) == len(info.ranges) and all(
            lo <= d and (hi < 0 or d <= hi) for d, (lo, hi) in zip(shape, info.ranges))
        if not ok:
            raise CoreMLExecError(f"input {info.name}: shape {list(shape)} outside the model's ranges "
                                  f"{[list(r) for r in info.ranges]}")
    elif shape != info.program_type.static_shape:
        raise CoreMLExecError(f"input {info.name}: shape {list(shape)} != model shape "
                              f"{list(info.program_type.static_shape)}")
    if info.program_type.rank is not None and len(shape) != info.program_type.rank:
        raise CoreMLExecError(f"input {info.name}: rank {len(shape)} != program rank {info.program_type.rank}")
    dtype = _NP_OF[info.program_type.dtype]
    if dtype == np.float16 and keep_fp32:
        dtype = np.float32
    return arr.astype(dtype)


def image_array(info: InputInfo, value) -> np.ndarray:
    """Image -> program tensor (1, C, H, W) float32 pixel values, channel order of the color space."""
    gray = info.color.startswith("GRAYSCALE")
    if hasattr(value, "convert") and hasattr(value, "size") and not isinstance(value, np.ndarray):
        value = np.asarray(value.convert("L" if gray else "RGB"))
    arr = np.asarray(value)
    if arr.dtype.kind not in "uif":
        raise CoreMLExecError(f"input {info.name}: image pixels must be numeric, got dtype {arr.dtype}")
    if not gray:
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise CoreMLExecError(f"input {info.name}: RGB image expected as PIL image or (H, W, 3) / "
                                  f"(1, H, W, 3) array, got shape {list(arr.shape)}")
        if info.color == "BGR":
            arr = arr[..., ::-1]
    else:
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        if arr.ndim != 2:
            raise CoreMLExecError(f"input {info.name}: grayscale image expected as PIL image or (H, W) array, "
                                  f"got shape {list(arr.shape)}")
        arr = arr[..., None]
    return np.ascontiguousarray(arr.astype(np.float32).transpose(2, 0, 1)[None])
