"""Compile-time (``constexpr_*``) kernels, evaluated once at load time: affine and blockwise dequantisation,
palettes (``constexpr_lut_to_dense``) and casts of compressed weights."""
from __future__ import annotations

import math

import numpy as np

from bbe_mobile.coreml_exec.errors import ExecutionError, UnsupportedOpError
from bbe_mobile.coreml_exec.kernels.registry import _op
from bbe_mobile.coreml_exec.numerics import _ints, _scalar
from bbe_mobile.coreml_exec.values import _CAST_DTYPES, _unpack_bits

@_op("constexpr_affine_dequantize", required=("quantized_data", "zero_point", "scale", "axis"))
def _affine_dequantize(ctx, p):
    q = p["quantized_data"].astype(np.float32)
    axis = int(_scalar(p["axis"])) % q.ndim
    shape = [1] * q.ndim
    shape[axis] = -1

    def bcast(v):
        v = np.asarray(v).astype(np.float32)
        return v.reshape(shape) if v.ndim == 1 else v

    return (q - bcast(p["zero_point"])) * bcast(p["scale"])


@_op("constexpr_blockwise_shift_scale", required=("data", "scale"), optional=("offset",))
def _blockwise_shift_scale(ctx, p):
    data = p["data"].astype(np.float32)
    scale = p["scale"].astype(np.float32)
    offset = p["offset"].astype(np.float32) if "offset" in p else None
    if scale.ndim != data.ndim:
        raise ExecutionError(f"constexpr_blockwise_shift_scale: scale rank {scale.ndim} != data rank {data.ndim}")
    for axis, (d, s) in enumerate(zip(data.shape, scale.shape)):
        if d % s:
            raise ExecutionError(f"constexpr_blockwise_shift_scale: {s} scales do not divide dim {d}")
        if d // s > 1:
            scale = np.repeat(scale, d // s, axis)
            if offset is not None:
                offset = np.repeat(offset, d // s, axis)
    return scale * (data - offset if offset is not None else data)


def _check_lut_to_dense(ctx, p):
    # the op's parameters depend on the opset: iOS16 (lut, indices, shape), iOS18 (indices, lut, vector_axis)
    required, allowed = ({"shape"}, {"shape"}) if ctx.opset < 18 else (set(), {"vector_axis"})
    missing = required - set(p)
    unknown = ({"shape", "vector_axis"} & set(p)) - allowed
    if missing or unknown:
        raise UnsupportedOpError(
            f"constexpr_lut_to_dense (opset iOS{ctx.opset}): "
            + (f"required parameters {sorted(missing)} missing" if missing
               else f"parameters {sorted(unknown)} not part of this opset's form"))


@_op("constexpr_lut_to_dense", required=("lut", "indices"), optional=("shape", "vector_axis"),
     check=_check_lut_to_dense)
def _lut_to_dense(ctx, p):
    lut, indices = p["lut"], p["indices"]
    if ctx.opset < 18:  # iOS16: one 1-D lut, indices packed LSB-first into uint8 bytes
        shape = _ints(p["shape"])
        nbits = int(round(math.log2(lut.size)))
        if 2 ** nbits != lut.size or lut.ndim != 1:
            raise ExecutionError(f"constexpr_lut_to_dense: lut of {lut.shape} entries is not 2^n")
        idx = _unpack_bits(indices, nbits, int(np.prod(shape)), signed=False)
        return lut[idx.astype(np.int64)].reshape(shape)
    # iOS18: indices already unpacked to their shape; lut (*groups, NUM_PALETTES, VECTOR_SIZE)
    if lut.ndim != indices.ndim + 2:
        raise ExecutionError(f"constexpr_lut_to_dense: lut rank {lut.ndim} != indices rank {indices.ndim} + 2")
    grids = []
    for axis, (d, g) in enumerate(zip(indices.shape, lut.shape[:-2])):
        if d % g:
            raise ExecutionError(f"constexpr_lut_to_dense: {g} tables do not divide dim {d}")
        shape = [1] * indices.ndim
        shape[axis] = d
        grids.append((np.arange(d) // (d // g)).reshape(shape))
    out = lut[tuple(grids) + (indices.astype(np.int64),)]  # indices.shape + (VECTOR_SIZE,)
    vs = lut.shape[-1]
    if vs == 1:
        return out[..., 0]
    axis = int(_scalar(p["vector_axis"])) % indices.ndim
    out = np.moveaxis(out, -1, axis + 1)
    shape = list(indices.shape)
    shape[axis] *= vs
    return out.reshape(shape)


@_op("constexpr_cast", required=("source_val", "output_dtype"))
def _constexpr_cast(ctx, p):
    return p["source_val"].astype(_CAST_DTYPES[p["output_dtype"]])
