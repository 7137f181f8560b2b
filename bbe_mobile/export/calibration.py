"""Full-integer TFLite quantisation with per-tensor ranges measured on the calibration images.

TFLite's calibrator records, for a tensor that feeds a residual ``ADD``, the range of that ``ADD``'s output
instead of its own (on the bundled model: ``block_2_project_BN`` recorded as [-67.5, 80.0], observed
[-58.6, 70.8]), so those tensors get coarser int8 steps than they need. ``quantize_int8`` lets the converter
calibrate (``_experimental_calibrate_only``), runs the calibrated float model once per calibration image with
every intermediate tensor kept, replaces each recorded [min, max] by the tensor's observed min/max over all
images (the same statistic the calibrator means to record), and quantises with the converter's own MLIR
quantiser (``mlir_quantize``, as ``TFLiteConverter`` does after calibrating). Both are private TensorFlow entry
points: the versions are pinned in pyproject.toml, and ``tests/test_calibration.py`` checks the result against
the converter's own output.
"""
from __future__ import annotations

import importlib

import numpy as np

from bbe_mobile.export.tflite_metadata import FILE_IDENTIFIER, tflite_schema

RANKING_IMAGES = 8  # calibration images on which int8-selective ranks the ops by their own error


def _recorded_tensors(graph) -> list[int]:
    """Indices of the tensors of ``graph`` (a ``SubGraphT``) that carry one calibrated [min, max]."""
    return [i for i, t in enumerate(graph.tensors)
            if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1]


def observed_ranges(calibrated: bytes, canvases: list[np.ndarray]) -> dict[int, tuple[float, float]]:
    """Tensor index -> (min, max) over ``canvases`` ((S, S, 3) float32 RGB 0..255 letterboxes), for every
    tensor of the calibrated float model that carries a recorded range, from LiteRT with all tensors kept."""
    from bbe_mobile.export.runtime import litert_interpreter_class  # noqa: PLC0415

    schema = tflite_schema()
    graph = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0).subgraphs[0]
    indices = _recorded_tensors(graph)
    interpreter_class = litert_interpreter_class()
    resolver = importlib.import_module(interpreter_class.__module__).OpResolverType
    interpreter = interpreter_class(model_content=calibrated, experimental_preserve_all_tensors=True,
                                    experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    image = interpreter.get_input_details()[0]["index"]
    low = np.full(len(indices), np.inf)
    high = np.full(len(indices), -np.inf)
    for canvas in canvases:
        interpreter.set_tensor(image, canvas[None].astype(np.float32))
        interpreter.invoke()
        for k, index in enumerate(indices):
            values = interpreter.get_tensor(index)
            low[k], high[k] = min(low[k], float(values.min())), max(high[k], float(values.max()))
    if not (np.isfinite(low).all() and np.isfinite(high).all()):
        raise ValueError("calibration produced non-finite activations")
    return {index: (float(lo), float(hi)) for index, lo, hi in zip(indices, low, high)}


def with_ranges(calibrated: bytes, ranges: dict[int, tuple[float, float]]) -> bytes:
    """A copy of the calibrated flatbuffer whose recorded [min, max] are ``ranges`` (widened to hold 0)."""
    import flatbuffers  # noqa: PLC0415

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(calibrated), 0)
    tensors = model.subgraphs[0].tensors
    for index, (low, high) in ranges.items():
        tensors[index].quantization.min = [min(low, 0.0)]
        tensors[index].quantization.max = [max(high, 0.0)]
    builder = flatbuffers.Builder(len(calibrated) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def calibrate(converter, canvases: list[np.ndarray]) -> bytes:
    """Calibrated float flatbuffer of ``converter`` (a ``TFLiteConverter`` set up for full-integer quantisation
    with ``canvases`` as its representative dataset) whose recorded ranges are the observed ones."""
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    return with_ranges(calibrated, observed_ranges(calibrated, canvases))


def quantize_calibrated(calibrated: bytes, io_type, **options) -> bytes:
    """Int8 flatbuffer of a ``calibrate`` result by the converter's MLIR quantiser (per-channel weights);
    ``io_type``: tf dtype of input/output; ``options``: further ``mlir_quantize`` arguments
    (``denylisted_nodes``: ops kept in float; ``denylisted_ops``, ``enable_numeric_verify``: diagnostics)."""
    from tensorflow.lite.python import convert as tflite_convert  # noqa: PLC0415

    return tflite_convert.mlir_quantize(calibrated, disable_per_channel=False, input_data_type=io_type,
                                        output_data_type=io_type, **options)


def layer_errors(calibrated: bytes, canvases: list[np.ndarray]) -> list[tuple[str, float, float, str]]:
    """(layer, RMSE, RMSE / output step, node) of every quantised op of the int8 model of ``calibrated``, each
    op's own error: TFLite's numeric-verify model run by ``QuantizationDebugger`` on ``canvases`` compares the
    int8 output with the float op on the same dequantised inputs (0.29 steps is output rounding alone). ``layer``
    is the int8 tensor the op writes; ``node`` its name as ``mlir_quantize(denylisted_nodes=...)`` takes it (the
    debugger's ``tensor_name``: the NumericVerify name without prefix, index and one trailing digit)."""
    import re  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415
    from tensorflow.lite.tools.optimize.debugging.python import debugger  # noqa: PLC0415

    debug_model = quantize_calibrated(calibrated, tf.float32, enable_numeric_verify=True)
    with warnings.catch_warnings():  # the debugger runs tf.lite.Interpreter, which warns that it is deprecated
        warnings.filterwarnings("ignore", r"\s*Warning: tf\.lite\.Interpreter is deprecated", UserWarning)
        run = debugger.QuantizationDebugger(quant_debug_model_content=debug_model,
                                            debug_dataset=lambda: ([c[None].astype(np.float32)] for c in canvases))
        run.run()
    scales = {d["name"]: d["quantization"][0] for d in run._quant_interpreter.get_tensor_details()  # noqa: SLF001
              if d["dtype"] == np.int8 and d["quantization"][0] > 0}
    rows = []
    for layer, stats in run.layer_statistics.items():
        name = re.sub(r":\d+$", "", layer.removeprefix("NumericVerify/"))
        owner = max((t for t in scales if name.startswith(t)), key=len, default=None)
        rmse = float(stats["mean_squared_error"]) ** 0.5
        node = layer.removeprefix("NumericVerify/").rsplit(":", 1)[0]
        node = node[:-1] if node[-1:].isdigit() else node
        rows.append((owner or name, rmse, rmse / scales[owner] if owner else float("nan"), node))
    return rows


def worst_layers(calibrated: bytes, canvases: list[np.ndarray], count: int) -> list[str]:
    """Node names of the ``count`` quantised ops of ``calibrated`` with the largest own error (``layer_errors``,
    RMSE in output steps; an op without a known step last)."""
    rows = sorted(layer_errors(calibrated, canvases), key=lambda r: -r[2] if r[2] == r[2] else float("inf"))
    return [node for _, _, _, node in rows[:count]]


def quantize_int8(converter, canvases: list[np.ndarray], io_type, float_layers: int = 0) -> bytes:
    """Full-integer int8 flatbuffer from ``converter`` (see ``calibrate``); ``io_type``: tf dtype of input/output.
    ``float_layers`` > 0: that many ops with the worst own error (ranked on the first ``RANKING_IMAGES``
    calibration images) stay in float (selective quantisation, precision ``int8-selective``)."""
    calibrated = calibrate(converter, canvases)
    if not float_layers:
        return quantize_calibrated(calibrated, io_type)
    denylisted = worst_layers(calibrated, canvases[:RANKING_IMAGES], float_layers)
    return quantize_calibrated(calibrated, io_type, denylisted_nodes=denylisted)
