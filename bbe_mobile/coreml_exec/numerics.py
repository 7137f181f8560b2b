"""The NumPy numerics the kernels share: parameter coercion, padding, sliding windows, grouped dilated
convolution, pooling, and the resampling grids of MIL's sampling modes (bilinear and nearest neighbour)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from bbe_mobile.coreml_exec.errors import CoreMLExecError, UnsupportedOpError

def _scalar(v) -> Any:
    a = np.asarray(v)
    if a.size != 1:
        raise CoreMLExecError(f"expected a scalar, got shape {a.shape}")
    return a.reshape(()).item()


def _ints(v) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _spatial_pads(pad_type: str, pad, in_sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dimension, as MIL defines ``pad_type`` (coremltools
    ``aggregated_pad``: total = max(0, s*ceil(i/s) - i + k_eff - s); 'same' puts the odd pixel after,
    'same_lower' before)."""
    n = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        p = _ints(pad)
        if len(p) != 2 * n:
            raise CoreMLExecError(f"custom pad needs {2 * n} values, got {p}")
        return [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        out = []
        for i, k, s, d in zip(in_sizes, kernel, strides, dilations):
            k_eff = (k - 1) * d + 1
            total = max(0, s * math.ceil(i / s) - i + k_eff - s)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise UnsupportedOpError(f"unsupported pad_type {pad_type!r}")


def _windows(xp: np.ndarray, kernel, strides, dilations, out_sizes) -> np.ndarray:
    """View (N, C, KH, KW, Ho, Wo) of the padded NCHW input: element [n, c, ky, kx, y, x] is
    xp[n, c, y*sh + ky*dh, x*sw + kx*dw]."""
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, strides, dilations, out_sizes
    sn, sc, sy, sx = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, shape=(xp.shape[0], xp.shape[1], kh, kw, ho, wo),
        strides=(sn, sc, sy * dh, sx * dw, sy * sh, sx * sw), writeable=False)


def _conv2d(x, w, b, strides, pads, dilations, groups) -> np.ndarray:
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    if c != cg * groups or co % groups:
        raise CoreMLExecError(f"conv: input channels {c}, weight {w.shape}, groups {groups} do not fit")
    (pt, pb), (pl, pr) = pads
    sh, sw = strides
    dh, dw = dilations
    ho = (h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    wo = (wd + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    if ho <= 0 or wo <= 0:
        raise CoreMLExecError(f"conv: empty output ({ho}x{wo})")
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if (pt or pb or pl or pr) else x
    xp = np.ascontiguousarray(xp)
    if groups == 1:
        if kh == 1 and kw == 1:
            xs = xp[:, :, : (ho - 1) * sh + 1: sh, : (wo - 1) * sw + 1: sw]
            out = np.matmul(w.reshape(co, c), xs.reshape(n, c, ho * wo)).reshape(n, co, ho, wo)
        else:
            cols = _windows(xp, (kh, kw), (sh, sw), (dh, dw), (ho, wo))
            out = np.tensordot(w, cols, axes=([1, 2, 3], [1, 2, 3])).transpose(1, 0, 2, 3)
    elif cg == 1 and groups == c:  # depthwise (x channel multiplier): sum over taps of strided views
        if co != c:  # output channel k reads input channel k // multiplier
            xp = np.repeat(xp, co // c, axis=1)
        out = np.zeros((n, co, ho, wo), np.float32)
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dh, kx * dw
                tap = xp[:, :, y0: y0 + (ho - 1) * sh + 1: sh, x0: x0 + (wo - 1) * sw + 1: sw]
                out += w[:, 0, ky, kx][None, :, None, None] * tap
    else:  # general grouped convolution
        cog = co // groups
        parts = [_conv2d(xp[:, g * cg:(g + 1) * cg], w[g * cog:(g + 1) * cog], None, strides,
                         ((0, 0), (0, 0)), dilations, 1) for g in range(groups)]
        out = np.concatenate(parts, axis=1)
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def _grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """Source coordinates of ``n_out`` samples over an axis of ``n_in`` pixels (MIL resize sampling modes,
    coremltools docs of ``resize_bilinear`` / ``upsample_bilinear``), clamped to [0, n_in - 1]."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.array([(n_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0])
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":  # == i * n_in / n_out (TF align_corners=False, half_pixel_centers=False)
        g = i * n_in / n_out
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":  # half-pixel centres
        spacing = n_in / n_out
        g = i * spacing + 0.5 * spacing - 0.5
    else:
        raise UnsupportedOpError(f"unsupported sampling mode {mode!r}")
    return np.clip(g, 0, n_in - 1)


def _lerp_axis(x: np.ndarray, axis: int, src: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``x`` along ``axis`` at fractional source coordinates ``src``."""
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[axis] - 1)
    frac = (src - i0).astype(np.float32)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    a = np.take(x, i0, axis=axis)
    b = np.take(x, i1, axis=axis)
    return a + (b - a) * frac


def _bilinear(x: np.ndarray, out_h: int, out_w: int, mode: str) -> np.ndarray:
    h, w = x.shape[-2:]
    y = _lerp_axis(x, x.ndim - 2, _grid(h, out_h, mode))
    return _lerp_axis(y, x.ndim - 1, _grid(w, out_w, mode))


def _nearest(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    h, w = x.shape[-2:]
    if out_h % h or out_w % w:
        raise UnsupportedOpError(f"nearest-neighbour resize {h}x{w} -> {out_h}x{out_w} is not by an integer "
                                 "factor (not implemented)")
    return np.repeat(np.repeat(x, out_h // h, axis=-2), out_w // w, axis=-1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _pool(x, kernel, strides, pads, kind: str, exclude_padding: bool) -> np.ndarray:
    n, c, h, w = x.shape
    (pt, pb), (pl, pr) = pads
    kh, kw = kernel
    sh, sw = strides
    ho = (h + pt + pb - kh) // sh + 1
    wo = (w + pl + pr - kw) // sw + 1
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    win = _windows(np.ascontiguousarray(xp), kernel, strides, (1, 1), (ho, wo))
    if kind == "max":
        return win.max(axis=(2, 3))
    total = win.sum(axis=(2, 3), dtype=np.float32)
    if exclude_padding:
        ones = np.pad(np.ones((1, 1, h, w), np.float32), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        count = _windows(ones, kernel, strides, (1, 1), (ho, wo)).sum(axis=(2, 3))
        return total / count
    return total / float(kh * kw)
