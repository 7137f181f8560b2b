"""Kernels that move, reshape or retype data without arithmetic: concat, stack, split, transpose, reshape,
expand_dims, squeeze, cast, shape, slicing, pad, tile and gather."""
from __future__ import annotations

import numpy as np

from bbe_mobile.coreml_exec.errors import ExecutionError, UnsupportedOpError
from bbe_mobile.coreml_exec.kernels.registry import _op
from bbe_mobile.coreml_exec.numerics import _ints, _scalar
from bbe_mobile.coreml_exec.values import _CAST_DTYPES

@_op("concat", required=("values", "axis"), optional=("interleave",), lists=("values",))
def _concat(ctx, p):
    values, axis = p["values"], int(_scalar(p["axis"]))
    if bool(_scalar(p.get("interleave", False))):
        rank = values[0].ndim
        axis = axis % rank
        stacked = np.stack(values, axis=axis + 1)
        shape = list(values[0].shape)
        shape[axis] = -1
        return stacked.reshape(shape)
    return np.concatenate([np.atleast_1d(v) for v in values], axis=axis)


@_op("stack", required=("values", "axis"), lists=("values",))
def _stack(ctx, p):
    return np.stack(p["values"], axis=int(_scalar(p["axis"])))


def _check_split(ctx, p):
    if "num_splits" not in p and "split_sizes" not in p:
        raise UnsupportedOpError("split needs num_splits or split_sizes")


@_op("split", required=("x", "axis"), optional=("num_splits", "split_sizes"), check=_check_split)
def _split(ctx, p):
    x, axis = p["x"], int(_scalar(p["axis"]))
    if "split_sizes" in p:
        sizes = _ints(p["split_sizes"])
    else:
        n = int(_scalar(p["num_splits"]))
        if x.shape[axis] % n:
            raise ExecutionError(f"split: axis {axis} of size {x.shape[axis]} is not divisible by "
                                 f"num_splits={n} (MIL requires it)")
        sizes = [x.shape[axis] // n] * n
    if sum(sizes) != x.shape[axis]:
        raise ExecutionError(f"split: split_sizes {sizes} do not add up to axis {axis} of size {x.shape[axis]}")
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


@_op("transpose", required=("x", "perm"))
def _transpose(ctx, p):
    return np.transpose(p["x"], _ints(p["perm"]))


@_op("reshape", required=("x", "shape"))
def _reshape(ctx, p):
    x, shape = p["x"], _ints(p["shape"])
    if 0 in shape:
        if ctx.opset >= 17:  # iOS17: each 0 copies the input dim at the same position from the right
            out = []
            for i, s in enumerate(shape):
                j = x.ndim - (len(shape) - i)
                out.append((x.shape[j] if j >= 0 else 1) if s == 0 else s)
            shape = out
        else:
            if len(shape) != x.ndim:
                raise ExecutionError("reshape: 0 in shape needs len(shape) == rank(x) before iOS17")
            shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return np.reshape(x, shape)


@_op("expand_dims", required=("x", "axes"))
def _expand_dims(ctx, p):
    x = p["x"]
    axes = _ints(p["axes"])
    rank = x.ndim + len(axes)
    return np.expand_dims(x, tuple(a % rank for a in axes))


@_op("squeeze", required=("x",), optional=("axes",))
def _squeeze(ctx, p):
    axes = p.get("axes")
    return np.squeeze(p["x"], axis=None if axes is None else tuple(_ints(axes)))


def _check_cast(ctx, p):
    if "dtype" in p and p["dtype"] not in _CAST_DTYPES:
        raise UnsupportedOpError(f"cast to {p['dtype']!r}")


@_op("cast", required=("x", "dtype"), check=_check_cast)
def _cast(ctx, p):
    dtype = _CAST_DTYPES[p["dtype"]]
    if dtype == np.float16 and ctx.keep_fp32:
        dtype = np.float32
    return np.asarray(p["x"]).astype(dtype)


@_op("shape", required=("x",))
def _shape(ctx, p):
    return np.array(p["x"].shape, np.int32)


@_op("slice_by_index", required=("x", "begin", "end"),
     optional=("stride", "begin_mask", "end_mask", "squeeze_mask"))
def _slice_by_index(ctx, p):
    x = p["x"]
    rank = x.ndim
    begin, end = _ints(p["begin"]), _ints(p["end"])
    stride = _ints(p["stride"]) if "stride" in p else [1] * rank
    bmask = [bool(v) for v in np.asarray(p.get("begin_mask", [False] * rank)).reshape(-1)]
    emask = [bool(v) for v in np.asarray(p.get("end_mask", [False] * rank)).reshape(-1)]
    smask = [bool(v) for v in np.asarray(p.get("squeeze_mask", [False] * rank)).reshape(-1)]
    slices, squeeze = [], []
    for i in range(rank):
        if smask[i]:  # pure index at begin[i]
            b = begin[i] if not bmask[i] else 0
            slices.append(slice(b, b + 1) if b != -1 else slice(-1, None))
            squeeze.append(i)
            continue
        slices.append(slice(None if bmask[i] else begin[i], None if emask[i] else end[i], stride[i]))
    out = x[tuple(slices)]
    return np.squeeze(out, axis=tuple(squeeze)) if squeeze else out


@_op("slice_by_size", required=("x", "begin", "size"))
def _slice_by_size(ctx, p):
    x = p["x"]
    begin, size = _ints(p["begin"]), _ints(p["size"])
    return x[tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))]


def _check_pad(ctx, p):
    if p.get("mode", "constant") not in ("constant", "reflect", "replicate"):
        raise UnsupportedOpError(f"pad mode {p['mode']!r}")


@_op("pad", required=("x", "pad"), optional=("mode", "constant_val"), check=_check_pad)
def _pad(ctx, p):
    x = p["x"]
    pad = _ints(p["pad"])
    n = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - n) + [(pad[2 * i], pad[2 * i + 1]) for i in range(n)]
    mode = p.get("mode", "constant")
    if mode == "constant":
        return np.pad(x, widths, constant_values=_scalar(p.get("constant_val", 0.0)))
    if mode == "reflect":
        return np.pad(x, widths, mode="reflect")
    return np.pad(x, widths, mode="edge")  # replicate (_check_pad)


@_op("tile", required=("x", "reps"))
def _tile(ctx, p):
    return np.tile(p["x"], _ints(p["reps"]))


def _check_gather(ctx, p):
    if int(_scalar(p.get("batch_dims", 0))) != 0:
        raise UnsupportedOpError("gather with batch_dims != 0")


@_op("gather", required=("x", "indices"), optional=("axis", "batch_dims", "validate_indices"), check=_check_gather)
def _gather(ctx, p):
    # np.take counts negative indices from the end (as MIL does) and raises on out-of-range ones
    return np.take(p["x"], np.asarray(p["indices"]), axis=int(_scalar(p.get("axis", 0))))
