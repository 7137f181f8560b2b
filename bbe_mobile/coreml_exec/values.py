"""The values of an ML Program: MIL dtypes and their NumPy types, declared tensor types, and the decoding of
constants (immediate values and weight blobs, sub-byte packed ones included) through coremltools' blob reader."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from bbe_mobile.coreml_exec.errors import CoreMLExecError, UnsupportedOpError

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
