"""Execute a Core ML ML Program (``.mlpackage``) in NumPy, op by op, so converted models can be checked
numerically on Linux (Core ML itself only runs on Apple platforms). See docs/coreml_exec.md.

The program is read through coremltools' own readers: the protobuf spec with ``coremltools.utils.load_spec``
(or an ``MLModel`` loaded with ``skip_model_load=True``) and the weight file with coremltools' blob reader
(``coremltools.libmilstoragepython._BlobStorageReader``). The function ``main`` is then interpreted op by op.

Precision: every op computes floating-point tensors in float32 and its result is cast to the dtype the program
declares for that op's output (float64 appears only in resize sampling coordinates, whose interpolation weights
are then rounded to float32, and where NumPy promotes integer arithmetic, e.g. ``real_div`` of int32 tensors,
before the cast to the declared dtype). For an fp16 program this rounds every intermediate tensor to fp16, as
Core ML stores fp16 activations between ops; accumulation inside an op (conv, matmul, reduce) is fp32. Weights
are used exactly as stored (fp16 weights stay the fp16 values; compressed weights are decompressed once at load
time in fp32 and rounded to the declared dtype).

Strictness: an op type without a kernel here, a parameter a kernel does not know, a missing required parameter,
an unsupported constant parameter value (e.g. ``ceil_mode=True``), or nested blocks raise ``UnsupportedOpError``
at load time; shape-dependent limits (e.g. non-integer nearest-neighbour factors) and an output whose shape
disagrees with the program's declared static shape raise ``UnsupportedOpError`` / ``ExecutionError`` at predict
time. Errors name the op type, its index in ``main`` and its output names. Nothing is guessed.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["MLProgramExecutor", "CoreMLExecError", "UnsupportedOpError", "ExecutionError", "SUPPORTED_OPS"]


class CoreMLExecError(ValueError):
    """The model cannot be loaded or executed faithfully."""


class UnsupportedOpError(CoreMLExecError, NotImplementedError):
    """The program uses an op (or an op parameter / feature) this executor does not implement."""


class ExecutionError(CoreMLExecError):
    """An op failed at run time or produced a result that contradicts the program (e.g. its declared shape)."""


# --------------------------------------------------------------------------------------------- proto values

# MIL DataType enum (coremltools/proto/MIL.proto) -> (name, numpy dtype or None for sub-byte types)
_DTYPES: dict[int, tuple[str, Any]] = {
    1: ("bool", np.bool_),
    2: ("string", None),
    10: ("fp16", np.float16),
    11: ("fp32", np.float32),
    12: ("fp64", np.float64),
    21: ("int8", np.int8),
    22: ("int16", np.int16),
    23: ("int32", np.int32),
    24: ("int64", np.int64),
    25: ("int4", np.int8),
    31: ("uint8", np.uint8),
    32: ("uint16", np.uint16),
    33: ("uint32", np.uint32),
    34: ("uint64", np.uint64),
    35: ("uint4", np.uint8),
    36: ("uint2", np.uint8),
    37: ("uint1", np.uint8),
    38: ("uint6", np.uint8),
    39: ("uint3", np.uint8),
}
_NP_OF = {name: np_dtype for name, np_dtype in _DTYPES.values() if np_dtype is not None}
_SUB_BYTE_BITS = {"int4": 4, "uint4": 4, "uint2": 2, "uint1": 1, "uint6": 6, "uint3": 3}
# dtype names of the MIL ``cast`` op
_CAST_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "bool": np.bool_, "int8": np.int8,
                "uint8": np.uint8, "int16": np.int16, "uint16": np.uint16, "fp64": np.float64,
                "int64": np.int64}


def _dtype_name(code: int) -> str:
    if code not in _DTYPES:
        raise UnsupportedOpError(f"unsupported MIL data type code {code}")
    return _DTYPES[code][0]


def _unpack_bits(packed: np.ndarray, nbits: int, count: int, signed: bool) -> np.ndarray:
    """Sub-byte elements packed LSB-first (coremltools' ``pack_elements_into_bits`` layout)."""
    bits = np.unpackbits(np.asarray(packed).astype(np.uint8).reshape(-1), bitorder="little")
    if bits.size < count * nbits:
        raise CoreMLExecError(f"packed data holds {bits.size} bits, {count} x {nbits}-bit elements expected")
    bits = bits[: count * nbits].reshape(count, nbits).astype(np.int32)
    values = (bits << np.arange(nbits, dtype=np.int32)).sum(axis=1)
    if signed:
        values = np.where(values >= 1 << (nbits - 1), values - (1 << nbits), values)
        return values.astype(np.int8)
    return values.astype(np.uint8)


@dataclass(frozen=True)
class _TensorType:
    dtype: str
    rank: int | None  # None: unknown rank
    dims: tuple[int | None, ...]  # None: dynamic dimension

    @property
    def static_shape(self) -> tuple[int, ...] | None:
        if self.rank is None or any(d is None for d in self.dims):
            return None
        return tuple(self.dims)


def _tensor_type(value_type) -> _TensorType:
    kind = value_type.WhichOneof("type")
    if kind != "tensorType":
        raise UnsupportedOpError(f"unsupported MIL value type {kind!r} (only tensors are supported)")
    tt = value_type.tensorType
    dims = []
    for d in tt.dimensions:
        which = d.WhichOneof("dimension")
        dims.append(int(d.constant.size) if which == "constant" else None)
    rank = int(tt.rank) if tt.rank >= 0 else None
    return _TensorType(_dtype_name(tt.dataType), rank, tuple(dims))


class _ValueDecoder:
    """Turns MIL ``Value`` protos (immediate or blob-file) into NumPy arrays / Python strings."""

    def __init__(self, model_dir: str | None):
        self.model_dir = os.path.abspath(model_dir) if model_dir else None  # relative dirs resolve once, here
        self._readers: dict[str, Any] = {}

    def _reader(self, file_name: str):
        if self.model_dir is None:
            raise CoreMLExecError(f"the program references weight file {file_name!r} but no weights directory "
                                  "is known (load an .mlpackage, or an MLModel with weights_dir)")
        path = file_name.replace("@model_path", self.model_dir)
        if not os.path.isabs(path):
            path = os.path.join(self.model_dir, path)
        if path not in self._readers:
            if not os.path.isfile(path):
                raise CoreMLExecError(f"weight file not found: {path}")
            from coremltools.libmilstoragepython import _BlobStorageReader  # noqa: PLC0415

            self._readers[path] = _BlobStorageReader(path)
        return self._readers[path]

    def decode(self, value) -> Any:
        ttype = _tensor_type(value.type)
        shape = ttype.static_shape
        if shape is None:
            raise CoreMLExecError("a constant value has a dynamic shape")
        kind = value.WhichOneof("value")
        if kind == "blobFileValue":
            arr = self._read_blob(value.blobFileValue, ttype.dtype)
        elif kind == "immediateValue":
            arr = self._immediate(value.immediateValue, ttype.dtype, shape)
            if isinstance(arr, str):
                return arr
        else:
            raise UnsupportedOpError(f"unsupported MIL value kind {kind!r}")
        count = int(np.prod(shape, dtype=np.int64))
        if arr.size != count:
            raise CoreMLExecError(f"constant of type {ttype.dtype}{list(shape)} holds {arr.size} elements")
        return arr.reshape(shape)

    def _read_blob(self, blob, dtype: str) -> np.ndarray:
        reader = self._reader(blob.fileName)
        offset = int(blob.offset)
        readers = {
            "fp32": reader.read_float_data, "int8": reader.read_int8_data, "uint8": reader.read_uint8_data,
            "int16": reader.read_int16_data, "uint16": reader.read_uint16_data,
            "int32": reader.read_int32_data, "uint32": reader.read_uint32_data,
            "int4": reader.read_int4_data, "uint4": reader.read_uint4_data, "uint1": reader.read_uint1_data,
            "uint2": reader.read_uint2_data, "uint3": reader.read_uint3_data, "uint6": reader.read_uint6_data,
        }
        if dtype == "fp16":
            return np.asarray(reader.read_fp16_data(offset)).view(np.float16)
        if dtype not in readers:
            raise UnsupportedOpError(f"unsupported data type {dtype} in the weight file")
        return np.asarray(readers[dtype](offset))

    @staticmethod
    def _immediate(immediate, dtype: str, shape: tuple[int, ...]):
        which = immediate.WhichOneof("value")
        if which != "tensor":
            raise UnsupportedOpError(f"unsupported immediate value kind {which!r}")
        tensor = immediate.tensor
        kind = tensor.WhichOneof("value")
        count = int(np.prod(shape, dtype=np.int64))
        if kind == "strings":
            values = list(tensor.strings.values)
            if shape == () and len(values) == 1:
                return values[0]
            return np.array(values, dtype=object)
        if kind == "bytes":
            raw = tensor.bytes.values
            if dtype in _SUB_BYTE_BITS:
                return _unpack_bits(np.frombuffer(raw, np.uint8), _SUB_BYTE_BITS[dtype], count,
                                    signed=dtype == "int4")
            if dtype not in _NP_OF:
                raise UnsupportedOpError(f"unsupported immediate data type {dtype}")
            return np.frombuffer(raw, _NP_OF[dtype]).copy()
        if kind is None:  # empty tensor
            values: list = []
        else:
            values = list(getattr(tensor, kind).values)
        if dtype not in _NP_OF:
            raise UnsupportedOpError(f"unsupported immediate data type {dtype}")
        return np.array(values).astype(_NP_OF[dtype])


# --------------------------------------------------------------------------------------------- helpers

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


# --------------------------------------------------------------------------------------------- op kernels

@dataclass(frozen=True)
class _Kernel:
    fn: Callable
    required: frozenset
    optional: frozenset
    lists: frozenset = frozenset()  # parameters that are variadic lists (e.g. concat values)
    # check(ctx, p): validates the constant parameters (feature support, opset form). Called at load time with
    # the parameters bound to constants only, and again before every run with all parameters.
    check: Callable | None = None


_KERNELS: dict[str, _Kernel] = {}


def _op(names, required=(), optional=(), lists=(), check=None):
    def deco(fn):
        for name in ([names] if isinstance(names, str) else names):
            _KERNELS[name] = _Kernel(fn, frozenset(required), frozenset(optional), frozenset(lists), check)
        return fn
    return deco


class _Ctx:
    """What a kernel may know besides its inputs: op type, opset and the declared dtype of its first output."""

    def __init__(self, op_type: str, opset: int, dtype: str, keep_fp32: bool = False):
        self.op_type = op_type
        self.opset = opset
        self.dtype = dtype  # MIL dtype name ("fp16", "fp32", ...) the program declares for output 0
        self.keep_fp32 = keep_fp32  # precision="fp32": float16 activations are kept in float32


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.true_divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power, "floor_div": np.floor_divide,
    "mod": np.mod, "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


@_op(list(_BINARY), required=("x", "y"))
def _binary(ctx, p):
    x, y = p["x"], p["y"]
    if ctx.op_type == "floor_div" and (x.dtype.kind == "f" or y.dtype.kind == "f"):
        return np.floor(np.true_divide(x, y))
    return _BINARY[ctx.op_type](x, y)


_UNARY = {
    "relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6), "sigmoid": _sigmoid,
    "tanh": np.tanh, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "square": np.square,
    "floor": np.floor, "ceil": np.ceil, "sign": np.sign, "sin": np.sin, "cos": np.cos,
    "silu": lambda x: x * _sigmoid(x), "identity": lambda x: x, "logical_not": np.logical_not,
}


@_op(list(_UNARY), required=("x",))
def _unary(ctx, p):
    return _UNARY[ctx.op_type](p["x"])


@_op("log", required=("x",), optional=("epsilon",))
def _log(ctx, p):
    # MIL: y = log(x + epsilon), epsilon of x's dtype (default 1e-45: a float32 denormal, 0 in fp16)
    x = p["x"]
    eps = p["epsilon"] if "epsilon" in p else np.asarray(1e-45, _NP_OF[ctx.dtype])
    return np.log(x + x.dtype.type(_scalar(eps)))


@_op("clip", required=("x", "alpha", "beta"))
def _clip(ctx, p):
    return np.clip(p["x"], _scalar(p["alpha"]), _scalar(p["beta"]))


@_op("leaky_relu", required=("x", "alpha"))
def _leaky_relu(ctx, p):
    a = _scalar(p["alpha"])
    return np.where(p["x"] >= 0, p["x"], p["x"] * np.float32(a))


@_op("rsqrt", required=("x",), optional=("epsilon",))
def _rsqrt(ctx, p):
    return 1.0 / np.sqrt(p["x"] + np.float32(_scalar(p.get("epsilon", 1e-12))))


@_op("inverse", required=("x",), optional=("epsilon",))
def _inverse(ctx, p):
    return 1.0 / (p["x"] + np.float32(_scalar(p.get("epsilon", 1e-4))))


@_op("softmax", required=("x",), optional=("axis",))
def _softmax(ctx, p):
    axis = int(_scalar(p.get("axis", -1)))
    x = p["x"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


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


@_op(["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod"], required=("x",),
     optional=("axes", "keep_dims"))
def _reduce(ctx, p):
    fn = {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
          "reduce_prod": np.prod}[ctx.op_type]
    axes = p.get("axes")
    axes = None if axes is None else tuple(_ints(axes))
    return fn(p["x"], axis=axes, keepdims=bool(_scalar(p.get("keep_dims", False))))


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


@_op("matmul", required=("x", "y"), optional=("transpose_x", "transpose_y"))
def _matmul(ctx, p):
    x, y = p["x"], p["y"]
    if bool(_scalar(p.get("transpose_x", False))):
        x = np.swapaxes(x, -1, -2)
    if bool(_scalar(p.get("transpose_y", False))):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@_op("linear", required=("x", "weight"), optional=("bias",))
def _linear(ctx, p):
    y = np.matmul(p["x"], p["weight"].T)
    return y + p["bias"] if "bias" in p else y


# ---- compile-time (constexpr) ops: evaluated once at load time

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


SUPPORTED_OPS = tuple(sorted(set(_KERNELS) | {"const"}))


# --------------------------------------------------------------------------------------------- executor

# opset name -> iOS version whose op semantics apply (coremltools 9 writes CoreML5..CoreML9)
_OPSETS = {"CoreML5": 15, "CoreML6": 16, "CoreML7": 17, "CoreML8": 18, "CoreML9": 26}


def _where(index: int, op_type: str, outputs: list[str]) -> str:
    return f"op #{index} '{op_type}' (outputs {', '.join(outputs)})"


@dataclass
class _Step:
    index: int
    op_type: str
    kernel: _Kernel
    params: dict[str, list]  # name -> list of ("var", name) / ("const", value)
    outputs: list[str]
    out_types: list[_TensorType]

    def where(self) -> str:
        return _where(self.index, self.op_type, self.outputs)


@dataclass(frozen=True)
class _InputInfo:
    name: str
    kind: str  # "tensor" or "image"
    program_type: _TensorType
    shapes: tuple[tuple[int, ...], ...] | None  # enumerated shapes (program layout), or None
    ranges: tuple[tuple[int, int], ...] | None  # per-dim (lo, hi) of the program tensor (hi -1 = unbounded)
    color: str | None = None  # RGB / BGR / GRAYSCALE for images


class MLProgramExecutor:
    """NumPy interpreter of an ML Program's ``main`` function.

    ``model``: path of an ``.mlpackage`` (or an ``coremltools.models.MLModel``, e.g. loaded with
    ``skip_model_load=True``). ``precision``: ``"model"`` (default) casts every op's output to the dtype the
    program declares (fp16 programs run with fp16 rounding after each op); ``"fp32"`` keeps float16 tensors in
    float32 instead (weights stay as stored), to separate weight compression error from activation rounding.

    ``predict({name: array or PIL image})`` returns ``{output name: np.ndarray}`` in the program's output dtype.
    Image inputs accept a PIL image, an (H, W, 3) / (1, H, W, 3) RGB array (uint8 or float pixel values 0..255,
    used as-is: Core ML itself would see 8-bit pixels) or (H, W) / (H, W, 1) for grayscale.
    """

    def __init__(self, model, function: str = "main", precision: str = "model"):
        if precision not in ("model", "fp32"):
            raise ValueError(f"precision must be 'model' or 'fp32', got {precision!r}")
        self.precision = precision
        self.function = function
        spec, model_dir = self._load(model)
        self.spec = spec
        if spec.WhichOneof("Type") != "mlProgram":
            raise CoreMLExecError(f"{model}: not an ML Program (model type {spec.WhichOneof('Type')!r})")
        program = spec.mlProgram
        if function not in program.functions:
            raise CoreMLExecError(f"function {function!r} not in the program (has {list(program.functions)})")
        func = program.functions[function]
        self.opset_name = func.opset
        if func.opset not in _OPSETS:
            raise UnsupportedOpError(f"opset {func.opset!r} of function {function!r} is not supported "
                                     f"(known: {', '.join(_OPSETS)})")
        self.opset = _OPSETS[func.opset]
        if func.opset not in func.block_specializations:
            raise CoreMLExecError(f"function {function!r} has no block for opset {func.opset}")
        block = func.block_specializations[func.opset]
        self._decoder = _ValueDecoder(model_dir)
        self._program_inputs = {i.name: _tensor_type(i.type) for i in func.inputs}
        self.input_names = [f.name for f in spec.description.input]
        self.output_names = [f.name for f in spec.description.output]
        if set(self.input_names) != set(self._program_inputs):
            raise CoreMLExecError(f"description inputs {self.input_names} != program inputs "
                                  f"{list(self._program_inputs)}")
        # predict returns outputs by name in description order, so only the sets must agree
        if set(block.outputs) != set(self.output_names):
            raise CoreMLExecError(f"description outputs {self.output_names} != program outputs "
                                  f"{list(block.outputs)}")
        self._inputs = {f.name: self._input_info(f) for f in spec.description.input}
        self._consts: dict[str, np.ndarray] = {}
        self._steps: list[_Step] = []
        self._compile(block)

    # ---------------------------------------------------------------- loading

    @staticmethod
    def _load(model):
        import coremltools as ct  # noqa: PLC0415

        if isinstance(model, ct.models.MLModel):
            weights_dir = getattr(model, "weights_dir", None)  # ".../weights"; "@model_path" is its parent
            return model.get_spec(), os.path.dirname(os.path.normpath(weights_dir)) if weights_dir else None
        path = Path(model)
        if not path.exists():
            raise CoreMLExecError(f"model not found: {path}")
        spec = ct.utils.load_spec(str(path))
        if path.is_dir():
            from coremltools.libmodelpackage import ModelPackage  # noqa: PLC0415

            model_dir = os.path.dirname(ModelPackage(str(path)).getRootModel().path())
        else:
            model_dir = str(path.parent)
        return spec, model_dir

    def _input_info(self, feature) -> _InputInfo:
        ptype = self._program_inputs[feature.name]
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
            return _InputInfo(feature.name, "tensor", ptype, shapes, ranges)
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
            return _InputInfo(feature.name, "image", ptype, shapes, ranges, color)
        raise UnsupportedOpError(f"input {feature.name}: unsupported feature type {kind!r}")

    def _compile(self, block) -> None:
        self._all_op_types: dict[str, int] = {}
        for index, op in enumerate(block.operations):
            self._all_op_types[op.type] = self._all_op_types.get(op.type, 0) + 1
            outputs = [o.name for o in op.outputs]
            where = _where(index, op.type, outputs)
            if op.blocks:
                raise UnsupportedOpError(f"{where}: ops with nested blocks (control flow) are not supported")
            try:
                out_types = [_tensor_type(o.type) for o in op.outputs]
            except CoreMLExecError as exc:
                raise UnsupportedOpError(f"{where}: {exc}") from None
            if op.type == "const":
                value = self._decoder.decode(op.attributes["val"])
                self._consts[outputs[0]] = value
                continue
            kernel = _KERNELS.get(op.type)
            if kernel is None:
                raise UnsupportedOpError(f"unsupported MIL op '{op.type}' at op #{index} of function "
                                         f"{self.function!r} (outputs: {', '.join(outputs)}): this executor "
                                         "does not implement it (see bbe_mobile.coreml_exec.SUPPORTED_OPS)")
            params: dict[str, list] = {}
            for key, val in op.attributes.items():
                if key == "name":
                    continue
                params[key] = [("const", self._decoder.decode(val))]
            for key, arg in op.inputs.items():
                bound = []
                for binding in arg.arguments:
                    which = binding.WhichOneof("binding")
                    if which == "name":
                        bound.append(("var", binding.name))
                    elif which == "value":
                        bound.append(("const", self._decoder.decode(binding.value)))
                    else:
                        raise UnsupportedOpError(f"{where}: unsupported argument binding {which!r}")
                params[key] = bound
            unknown = set(params) - kernel.required - kernel.optional
            missing = kernel.required - set(params)
            if unknown or missing:
                raise UnsupportedOpError(
                    f"{where}: parameters {sorted(unknown)} not implemented" if unknown
                    else f"{where}: required parameters {sorted(missing)} missing")
            step = _Step(index, op.type, kernel, params, outputs, out_types)
            if kernel.check is not None:  # constant parameters: unsupported features fail at load time
                self._call(step, kernel.check, self._bind(step, self._consts, partial=True), cast_fp16=True)
            if op.type.startswith("constexpr_"):  # compile-time constant: evaluate now
                values = self._run_step(step, self._consts, cast_fp16=True)
                self._consts.update(zip(outputs, values))
                continue
            self._steps.append(step)

    # ---------------------------------------------------------------- running

    @staticmethod
    def _bind(step: _Step, env: dict, partial: bool = False) -> dict[str, Any]:
        """The kernel's parameter dict. ``partial``: only the parameters whose values are all in ``env`` (the
        constants, at load time), float16 left as is; otherwise every parameter, float16 as float32."""
        p: dict[str, Any] = {}
        for key, bound in step.params.items():
            vals = []
            for kind, ref in bound:
                if kind == "var":
                    if ref not in env:
                        if partial:
                            break
                        raise ExecutionError(f"{step.where()}: input {key}={ref!r} is not defined")
                    v = env[ref]
                else:
                    v = ref
                if not partial and isinstance(v, np.ndarray) and v.dtype == np.float16:
                    v = v.astype(np.float32)
                vals.append(v)
            else:
                p[key] = vals if key in step.kernel.lists else (vals[0] if len(vals) == 1 else vals)
        return p

    def _call(self, step: _Step, fn: Callable, p: dict, cast_fp16: bool):
        """``fn(ctx, p)`` with errors re-raised naming the op."""
        ctx = _Ctx(step.op_type, self.opset, step.out_types[0].dtype if step.out_types else "",
                   keep_fp32=not cast_fp16)
        try:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                return fn(ctx, p)
        except CoreMLExecError as exc:
            raise type(exc)(f"{step.where()}: {exc}") from None
        except Exception as exc:
            raise ExecutionError(f"{step.where()}: {type(exc).__name__}: {exc}") from exc

    def _run_step(self, step: _Step, env: dict, cast_fp16: bool) -> list[np.ndarray]:
        p = self._bind(step, env)
        if step.kernel.check is not None:
            self._call(step, step.kernel.check, p, cast_fp16)
        result = self._call(step, step.kernel.fn, p, cast_fp16)
        results = result if isinstance(result, list) else [result]
        if len(results) != len(step.outputs):
            raise ExecutionError(f"{step.where()}: produced {len(results)} outputs, program declares "
                                 f"{len(step.outputs)}")
        out = []
        for value, ttype, name in zip(results, step.out_types, step.outputs):
            value = np.asarray(value)
            dtype = _NP_OF.get(ttype.dtype)
            if dtype is None:
                raise UnsupportedOpError(f"{step.where()}: output {name} has unsupported dtype {ttype.dtype}")
            if dtype == np.float16 and not cast_fp16:
                dtype = np.float32
            with np.errstate(over="ignore"):
                value = value.astype(dtype, copy=False)
            if ttype.rank is not None and value.ndim != ttype.rank:
                raise ExecutionError(f"{step.where()}: output {name} has rank {value.ndim}, the program "
                                     f"declares {ttype.rank} ({list(ttype.dims)})")
            for axis, d in enumerate(ttype.dims):
                if d is not None and value.shape[axis] != d:
                    raise ExecutionError(f"{step.where()}: output {name} has shape {list(value.shape)}, the "
                                         f"program declares {[x if x is not None else '?' for x in ttype.dims]}")
            out.append(value)
        return out

    def _prepare_input(self, info: _InputInfo, value) -> np.ndarray:
        if info.kind == "image":
            arr = self._image_array(info, value)
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
        if dtype == np.float16 and self.precision == "fp32":
            dtype = np.float32
        return arr.astype(dtype)

    @staticmethod
    def _image_array(info: _InputInfo, value) -> np.ndarray:
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

    def predict(self, inputs: dict) -> dict[str, np.ndarray]:
        """Run ``main`` on ``inputs`` ({input name: array or PIL image}); {output name: array}."""
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self._inputs]
        if missing or extra:
            raise CoreMLExecError(f"inputs: missing {missing}, unknown {extra} (model inputs {self.input_names})")
        env: dict[str, np.ndarray] = dict(self._consts)
        for name, info in self._inputs.items():
            env[name] = self._prepare_input(info, inputs[name])
        cast_fp16 = self.precision == "model"
        for step in self._steps:
            values = self._run_step(step, env, cast_fp16)
            env.update(zip(step.outputs, values))
        out = {}
        for name in self.output_names:
            if name not in env:
                raise ExecutionError(f"output {name!r} was never computed")
            out[name] = np.array(env[name], copy=True)  # never a view of a stored constant or of an input
        return out

    @property
    def spec_op_types(self) -> dict[str, int]:
        """Op type -> count over every op of the function, constants and compile-time (constexpr) ops included."""
        return dict(self._all_op_types)

    @property
    def op_types(self) -> dict[str, int]:
        """Op type -> count over the executed (non-constant) ops of ``main``."""
        counts: dict[str, int] = {}
        for s in self._steps:
            counts[s.op_type] = counts.get(s.op_type, 0) + 1
        return counts
