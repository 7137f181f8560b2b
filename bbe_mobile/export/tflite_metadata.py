"""Read and write the ``Model.metadata`` entries of a TFLite flatbuffer (docs/metadata.md: entry ``bbe``).

Writing unpacks the flatbuffer with LiteRT's generated schema (``ai_edge_litert.schema_py_generated``, the same
schema TensorFlow ships as ``tensorflow/lite/python/schema_py_generated.py``), appends one buffer holding the
JSON bytes and one ``Metadata`` entry pointing at it, optionally renames tensors (the converter names outputs
``Identity``/``Identity_1``), and packs it again with the ``TFL3`` file identifier. Reading uses the read-only
accessors (no unpacking), so it is cheap enough to call on every load.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

FILE_IDENTIFIER = b"TFL3"


def tflite_schema():
    try:
        from ai_edge_litert import schema_py_generated as schema  # noqa: PLC0415
    except ImportError:  # pragma: no cover - depends on the install
        from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415
    return schema


class TFLiteFormatError(ValueError):
    """Bytes that are not a TFLite flatbuffer."""


def _root(data: bytes):
    schema = tflite_schema()
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise TFLiteFormatError("not a TFLite flatbuffer (missing the TFL3 identifier)")
    try:
        model = schema.Model.GetRootAs(data, 0)
        for k in range(model.BuffersLength()):  # every weight buffer must lie inside the file (truncation)
            buf = model.Buffers(k)
            if buf.Offset() > 1:
                end = buf.Offset() + buf.Size()
            elif buf.DataLength():
                end = buf._tab.Vector(buf._tab.Offset(4)) + buf.DataLength()
            else:
                continue
            if end > len(data):
                raise TFLiteFormatError(f"truncated TFLite file: buffer {k} ends at byte {end}, the file has "
                                        f"{len(data)}")
        return schema, model
    except TFLiteFormatError:
        raise
    except Exception as exc:  # flatbuffers raises struct/index errors on garbage
        raise TFLiteFormatError(f"corrupt or truncated TFLite file ({type(exc).__name__})") from None


def read_metadata(data: bytes) -> dict[str, bytes]:
    """All ``Model.metadata`` entries of a TFLite flatbuffer: name -> buffer bytes."""
    _, model = _root(data)
    out = {}
    try:
        for k in range(model.MetadataLength()):
            entry = model.Metadata(k)
            buf = model.Buffers(entry.Buffer())
            if buf.Offset() > 1:  # data stored after the flatbuffer (models > 2 GB)
                raw = data[buf.Offset(): buf.Offset() + buf.Size()]
            else:
                raw = buf.DataAsNumpy().tobytes() if buf.DataLength() else b""
            out[entry.Name().decode()] = raw
    except Exception as exc:
        raise TFLiteFormatError(f"corrupt TFLite metadata: {type(exc).__name__}: {exc}") from None
    return out


def write_metadata(data: bytes, entries: dict[str, bytes], tensor_names: dict[int, str] | None = None,
                   description: str | None = None) -> bytes:
    """A copy of the flatbuffer ``data`` with ``entries`` (name -> bytes) as ``Model.metadata`` (replacing
    entries of the same name), tensors of the main subgraph renamed by index (``tensor_names``) and an
    optional model ``description``."""
    import flatbuffers  # noqa: PLC0415

    schema, _ = _root(data)
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    if model.buffers and any(getattr(b, "offset", 0) > 1 for b in model.buffers):
        raise TFLiteFormatError("TFLite models with external buffers (> 2 GB) are not supported")
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() not in entries] \
        if model.metadata else []
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, np.uint8).copy()
        model.buffers.append(buffer)
        meta = schema.MetadataT()
        meta.name = name
        meta.buffer = len(model.buffers) - 1
        model.metadata.append(meta)
    if tensor_names:
        tensors = model.subgraphs[0].tensors
        for index, name in tensor_names.items():
            tensors[index].name = name
    if description is not None:
        model.description = description
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def summary(data: bytes) -> dict:
    """Inputs/outputs (name, shape, dtype, quantisation) of subgraph 0 and an op histogram."""
    schema, model = _root(data)
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    graph = model.Subgraphs(0)

    def tensor(index: int) -> dict:
        t = graph.Tensors(index)
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength() == 1:
            quant = [float(q.Scale(0)), int(q.ZeroPoint(0))]
        return {"name": t.Name().decode(), "shape": t.ShapeAsNumpy().tolist() if t.ShapeLength() else [],
                "dtype": type_names.get(t.Type(), str(t.Type())), "quantization": quant}

    ops = Counter()
    for k in range(graph.OperatorsLength()):
        code = model.OperatorCodes(graph.Operators(k).OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            name = "CUSTOM:" + code.CustomCode().decode()
        ops[name] += 1
    return {"inputs": [tensor(graph.Inputs(k)) for k in range(graph.InputsLength())],
            "outputs": [tensor(graph.Outputs(k)) for k in range(graph.OutputsLength())],
            "ops": dict(sorted(ops.items()))}
