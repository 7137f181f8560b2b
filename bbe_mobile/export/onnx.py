"""ONNX export (fp32, tf2onnx) with the ``bbe`` metadata, our tensor names and a free batch dimension (a fixed
batch hits the tf2onnx resize bug of ``../shared/notes/toolchain.md``)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from bbe_mobile.export.artifact_info import INPUT_NAME, METADATA_KEY, OFFSETS_OUTPUT, PROB_OUTPUT
from bbe_mobile.export.images import ExportError
from bbe_mobile.export.runtime import error_line
from bbe_mobile.export.serving import ExportOptions, bundle_metadata, serving_function, smoke_run


def export_onnx(bundle, precision: str, path: Path, options: ExportOptions) -> list[str]:
    import onnx  # noqa: PLC0415
    import tf2onnx  # noqa: PLC0415

    if precision != "fp32":
        raise ExportError(f"unknown ONNX precision {precision!r}")
    size = bundle.input_size
    fn = serving_function(bundle.model, size, None)  # batch None: avoids the tf2onnx fixed-batch resize bug
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            proto, _ = tf2onnx.convert.from_function(
                fn, input_signature=fn.input_signature, opset=options.opset)
    except Exception as exc:
        raise ExportError(f"ONNX conversion failed: {type(exc).__name__}: {error_line(exc)}") from None
    _rename_onnx(proto)
    meta = bundle_metadata(bundle, size, precision)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.doc_string = f"BBE person instance segmentation ({bundle.name}, {precision})"
    proto.producer_name = "bbe-mobile"
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ExportError(f"ONNX checker rejected the model: {error_line(exc)}") from None
    onnx.save(proto, str(path))
    smoke_run(path, size)
    return []


def _rename_onnx(proto) -> None:
    """Rename graph input to ``image`` and outputs (by channel count) to person_prob / box_offsets."""
    graph = proto.graph
    renames = {}
    initializers = {i.name for i in graph.initializer}
    inputs = [v for v in graph.input if v.name not in initializers]
    renames[inputs[0].name] = INPUT_NAME
    for out in graph.output:
        dims = out.type.tensor_type.shape.dim
        channels = dims[-1].dim_value if dims else 0
        new = {1: PROB_OUTPUT, 4: OFFSETS_OUTPUT}.get(channels)
        if new is None:
            raise ExportError(f"unexpected ONNX output {out.name} with {channels} channels")
        renames[out.name] = new
    for v in list(graph.input) + list(graph.output):
        if v.name in renames:
            v.name = renames[v.name]
            dims = v.type.tensor_type.shape.dim
            if dims and not dims[0].HasField("dim_value"):
                dims[0].dim_param = "batch"
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in renames:
                node.input[k] = renames[name]
        for k, name in enumerate(node.output):
            if name in renames:
                node.output[k] = renames[name]
    for vi in graph.value_info:
        if vi.name in renames:
            vi.name = renames[vi.name]

