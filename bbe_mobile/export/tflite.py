"""TFLite export: fp32, fp16, dynamic-range int8 and full int8 (measured activation ranges, calibration.py),
by the safe converter route of ``../shared/notes/toolchain.md`` (``from_concrete_functions([cf])`` without a
trackable; file size and a test run checked), with the ``bbe`` metadata and our tensor names."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from bbe_mobile.export.artifact_info import INPUT_NAME, METADATA_KEY, OFFSETS_OUTPUT, PROB_OUTPUT
from bbe_mobile.export.calibration import quantize_int8
from bbe_mobile.export.images import ExportError, calibration_canvases
from bbe_mobile.export.runtime import error_line
from bbe_mobile.export.serving import ExportOptions, bundle_metadata, serving_function, smoke_run
from bbe_mobile.utils.quiet import start_up_lines_hidden

IO_DTYPES = ("float32", "int8", "uint8")
TFLITE_BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "dynamic-int8": 1, "int8": 1, "int8-selective": 1}
# Full-integer precisions: calibrated; int8-selective keeps this many ops with the worst own error in float (the
# bundled model's AP drop: 30 -> -0.001, 20 -> 0.010, 40 -> 0.008, 0 -> 0.018; docs/export.md)
CALIBRATED_FLOAT_LAYERS = {"int8": 0, "int8-selective": 30}


def tflite_from_function(concrete_function, precision: str, canvases: list[np.ndarray] | None = None,
                         io_dtype: str = "float32") -> bytes:
    """TFLite flatbuffer of ``concrete_function`` (image -> outputs) at ``precision``, by the safe route of the
    notes (``from_concrete_functions([cf])`` WITHOUT a trackable argument). Full int8 needs ``canvases``
    (calibration letterboxes, (S, S, 3) float32) and gets measured activation ranges (calibration.py), as does
    ``int8-selective`` (its ``CALIBRATED_FLOAT_LAYERS`` worst ops in float); ``io_dtype`` is their input/output
    type. Converter errors propagate."""
    import tensorflow as tf  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function])
    if precision == "fp32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if precision in ("fp16", "dynamic-int8"):
        return converter.convert()
    if precision not in CALIBRATED_FLOAT_LAYERS:
        raise ExportError(f"unknown TFLite precision {precision!r}")
    io = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io_dtype]
    with warnings.catch_warnings(), start_up_lines_hidden():  # the quantiser's summary line, and its note that
        # the float input has no statistics (by design)
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected", category=UserWarning)
        return quantize_int8(int8_converter(converter, canvases, io), canvases, io, CALIBRATED_FLOAT_LAYERS[precision])


def int8_converter(converter, canvases: list[np.ndarray], io_type):
    """``converter`` (optimizations DEFAULT) set up for full-integer int8 with ``canvases`` ((S, S, 3) float32
    letterboxes) as its representative dataset and ``io_type`` (tf dtype) at the input and outputs."""
    import tensorflow as tf  # noqa: PLC0415

    converter.representative_dataset = lambda: ([canvas[None].astype(np.float32)] for canvas in canvases)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # per-channel weights (default)
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    return converter


def convert_tflite_bytes(bundle, precision: str, options: ExportOptions) -> tuple[bytes, dict]:
    """Convert to TFLite flatbuffer bytes (no metadata yet). Returns (bytes, facts for the metadata)."""
    if precision not in TFLITE_BYTES_PER_WEIGHT:
        raise ExportError(f"unknown TFLite precision {precision!r}")
    facts: dict = {}
    canvases = None
    if precision in CALIBRATED_FLOAT_LAYERS:
        if not options.calibration_images:
            raise ExportError("full-integer int8 needs calibration images: pass --calibration-images DIR")
        canvases = calibration_canvases(options.calibration_images, bundle.input_size, options.num_calibration)
        facts["calibration"] = {"images": len(canvases), "directory": str(options.calibration_images)}
    cf = serving_function(bundle.model, bundle.input_size, 1).get_concrete_function()
    try:
        data = tflite_from_function(cf, precision, canvases, options.io_dtype)
    except Exception as exc:  # the converter raises ConverterError and friends
        raise ExportError(f"TFLite conversion failed: {type(exc).__name__}: {error_line(exc)}") from None
    check_tflite_weights(data, bundle.model, precision, ExportError)
    return data, facts



def check_tflite_weights(data: bytes, model, precision: str, error=ValueError) -> None:
    """SILENT FAILURE guard (notes): a converted file without its weights (~0.18 MB, NaN outputs) raises
    ``error``: the file must hold at least half the expected weight bytes."""
    expected = int(model.count_params()) * TFLITE_BYTES_PER_WEIGHT[precision]
    if len(data) < 0.5 * expected:
        raise error(f"TFLite conversion produced {len(data)} bytes for ~{expected} bytes of weights: "
                    "the weights are missing (converter silent failure)")


def _tflite_tensor_renames(data: bytes) -> tuple[dict[int, str], dict]:
    """Map graph input/outputs to our names (outputs by channel count: 1 = prob, 4 = offsets)."""
    from bbe_mobile.export import tflite_metadata  # noqa: PLC0415
    from bbe_mobile.export.tflite_metadata import tflite_schema  # noqa: PLC0415

    schema = tflite_schema()
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    renames = {graph.Inputs(0): INPUT_NAME}
    for k in range(graph.OutputsLength()):
        index = graph.Outputs(k)
        channels = int(graph.Tensors(index).ShapeAsNumpy()[-1])
        renames[index] = {1: PROB_OUTPUT, 4: OFFSETS_OUTPUT}.get(channels)
        if renames[index] is None:
            raise ExportError(f"unexpected TFLite output with {channels} channels")
    return renames, tflite_metadata.summary(data)["inputs"][0]


def tflite_with_metadata(bundle, data: bytes, precision: str) -> bytes:
    """Converter output ``data`` with the ``bbe`` metadata of ``bundle`` and the tensors renamed."""
    from bbe_mobile.export import tflite_metadata  # noqa: PLC0415

    renames, input_info = _tflite_tensor_renames(data)
    kw = {}
    if input_info["dtype"] in ("int8", "uint8"):
        kw = {"input_dtype": input_info["dtype"], "input_quantization": input_info["quantization"]}
    meta = bundle_metadata(bundle, bundle.input_size, precision, **kw)
    return tflite_metadata.write_metadata(
        data, {METADATA_KEY: json.dumps(meta).encode()}, tensor_names=renames,
        description=f"BBE person instance segmentation ({bundle.name}, {precision})")


def export_tflite(bundle, precision: str, path: Path, options: ExportOptions) -> list[str]:
    data, facts = convert_tflite_bytes(bundle, precision, options)
    path.write_bytes(tflite_with_metadata(bundle, data, precision))
    notes = []
    if "calibration" in facts:
        notes.append(f"calibrated on {facts['calibration']['images']} images of {facts['calibration']['directory']}")
    smoke_run(path, bundle.input_size)
    return notes

