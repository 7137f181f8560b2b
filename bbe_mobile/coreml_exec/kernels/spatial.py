"""Spatial kernels on NCHW tensors: convolution, max/average pooling, batch norm, and the resampling ops
(``upsample_bilinear``, ``resize_bilinear``, ``upsample_nearest_neighbor``, ``resize``)."""
from __future__ import annotations

import math

import numpy as np

from bbe_mobile.coreml_exec.errors import UnsupportedOpError
from bbe_mobile.coreml_exec.kernels.registry import _op
from bbe_mobile.coreml_exec.numerics import _bilinear, _conv2d, _ints, _nearest, _pool, _scalar, _spatial_pads

_PAD_TYPES = ("valid", "same", "same_lower", "custom")
_SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS")


def _check_pad_type(ctx, p):
    if "pad_type" in p and p["pad_type"] not in _PAD_TYPES:
        raise UnsupportedOpError(f"unsupported pad_type {p['pad_type']!r}")


@_op("conv", required=("x", "weight"), optional=("bias", "strides", "pad_type", "pad", "dilations", "groups"),
     check=_check_pad_type)
def _conv(ctx, p):
    x, w = p["x"], p["weight"]
    if x.ndim != 4 or w.ndim != 4:
        raise UnsupportedOpError(f"conv of rank {x.ndim} (only 2-D convolution is implemented)")
    strides = _ints(p.get("strides", [1, 1]))
    dilations = _ints(p.get("dilations", [1, 1]))
    groups = int(_scalar(p.get("groups", 1)))
    pad_type = p.get("pad_type", "valid")
    pads = _spatial_pads(pad_type, p.get("pad"), x.shape[2:], w.shape[2:], strides, dilations)
    return _conv2d(x, w, p.get("bias"), strides, pads, dilations, groups)


def _check_pool(ctx, p):
    _check_pad_type(ctx, p)
    if "ceil_mode" in p and bool(_scalar(p["ceil_mode"])):
        raise UnsupportedOpError(f"{ctx.op_type} with ceil_mode=True is not implemented")


@_op(["max_pool", "avg_pool"], required=("x", "kernel_sizes", "pad_type"),
     optional=("strides", "pad", "ceil_mode", "exclude_padding_from_average"), check=_check_pool)
def _pool_op(ctx, p):
    x = p["x"]
    if x.ndim != 4:
        raise UnsupportedOpError(f"{ctx.op_type} of rank {x.ndim} (only 2-D pooling is implemented)")
    kernel = _ints(p["kernel_sizes"])
    strides = _ints(p.get("strides", [1, 1]))
    pads = _spatial_pads(p["pad_type"], p.get("pad"), x.shape[2:], kernel, strides, [1, 1])
    return _pool(x, kernel, strides, pads, "max" if ctx.op_type == "max_pool" else "avg",
                 bool(_scalar(p.get("exclude_padding_from_average", False))))


@_op("batch_norm", required=("x", "mean", "variance"), optional=("gamma", "beta", "epsilon"))
def _batch_norm(ctx, p):
    x = p["x"]
    shape = (1, -1) + (1,) * (x.ndim - 2)
    eps = np.float32(_scalar(p.get("epsilon", 1e-5)))
    y = (x - p["mean"].reshape(shape)) / np.sqrt(p["variance"].reshape(shape) + eps)
    if "gamma" in p:
        y = y * p["gamma"].reshape(shape)
    if "beta" in p:
        y = y + p["beta"].reshape(shape)
    return y


def _upsample_modes(p) -> tuple[bool, bool]:
    align = bool(_scalar(p.get("align_corners", True)))
    return align, bool(_scalar(p.get("half_pixel_centers", not align)))


def _check_upsample_bilinear(ctx, p):
    if all(_upsample_modes(p)):
        raise UnsupportedOpError("upsample_bilinear with align_corners=True and half_pixel_centers=True")


@_op("upsample_bilinear", required=("x",),
     optional=("scale_factor_height", "scale_factor_width", "align_corners", "half_pixel_centers"),
     check=_check_upsample_bilinear)
def _upsample_bilinear(ctx, p):
    x = p["x"]
    sh = float(_scalar(p.get("scale_factor_height", 1)))
    sw = float(_scalar(p.get("scale_factor_width", 1)))
    align, half = _upsample_modes(p)
    h, w = x.shape[-2:]
    # MIL: H2 = floor(H1 * scale); the sampling grid is recomputed from the sizes (recompute_scale_factor).
    out_h, out_w = int(math.floor(h * sh)), int(math.floor(w * sw))
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    return _bilinear(x, out_h, out_w, mode)


def _check_sampling_mode(ctx, p):
    if p.get("sampling_mode", "DEFAULT") not in _SAMPLING_MODES:
        raise UnsupportedOpError(f"unsupported sampling mode {p['sampling_mode']!r}")


@_op("resize_bilinear", required=("x",), optional=("target_size_height", "target_size_width", "sampling_mode"),
     check=_check_sampling_mode)
def _resize_bilinear(ctx, p):
    return _bilinear(p["x"], int(_scalar(p.get("target_size_height", 1))),
                     int(_scalar(p.get("target_size_width", 1))), p.get("sampling_mode", "DEFAULT"))


@_op("upsample_nearest_neighbor", required=("x",), optional=("scale_factor_height", "scale_factor_width"))
def _upsample_nn(ctx, p):
    x = p["x"]
    h, w = x.shape[-2:]
    sh = float(_scalar(p.get("scale_factor_height", 1)))
    sw = float(_scalar(p.get("scale_factor_width", 1)))
    return _nearest(x, int(math.floor(h * sh)), int(math.floor(w * sw)))


def _check_resize(ctx, p):
    if "resized_dims" in p and int(_scalar(p["resized_dims"])) != 2:
        raise UnsupportedOpError(f"resize of {int(_scalar(p['resized_dims']))} dimensions (only the last 2 "
                                 "are implemented)")
    interp, mode = p.get("interpolation_mode", "LINEAR"), p.get("sampling_mode", "DEFAULT")
    if not ((interp == "LINEAR" and mode in _SAMPLING_MODES) or (interp == "NEAREST_NEIGHBOR" and mode == "DEFAULT")):
        raise UnsupportedOpError(f"resize with interpolation_mode={interp} sampling_mode={mode}")


@_op("resize", required=("x", "shape", "resized_dims"), optional=("interpolation_mode", "sampling_mode"),
     check=_check_resize)
def _resize(ctx, p):
    x = p["x"]
    shape = _ints(p["shape"])
    out_h, out_w = shape[-2], shape[-1]
    out_h = x.shape[-2] if out_h == 0 else out_h
    out_w = x.shape[-1] if out_w == 0 else out_w
    if p.get("interpolation_mode", "LINEAR") == "LINEAR":
        return _bilinear(x, out_h, out_w, p.get("sampling_mode", "DEFAULT"))
    return _nearest(x, out_h, out_w)  # NEAREST_NEIGHBOR with DEFAULT sampling (_check_resize)
