"""What every target's converter shares: the export options, the serving graph it converts (image -> sigmoid
probability and box offsets), the ``bbe`` metadata of a bundle and the smoke run of a written artifact."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.export.artifact_info import INPUT_NAME, make_metadata
from bbe_mobile.export.images import ExportError
from bbe_mobile.export.runtime import error_line


@dataclass(frozen=True)
class ExportOptions:
    """Options of one export.

    ``io_dtype``: TFLite full-int8 input/output type (``float32`` keeps float I/O around the int8 graph).
    ``calibration_images``/``num_calibration``: representative data for full-int8 TFLite (letterboxed exactly
    like inference). ``opset``: ONNX opset. ``coreml_input``: ``image`` (ImageType, scale 1, bias 0) or
    ``tensor``; ``coreml_target``: minimum deployment target; ``flexible_sizes``: extra square input sides
    (multiples of 16) for Core ML EnumeratedShapes (iOS16+).
    """

    input_size: int | None = None
    io_dtype: str = "float32"
    calibration_images: str | None = None
    num_calibration: int = 100
    opset: int = 17
    coreml_input: str = "image"
    coreml_target: str = "iOS16"
    flexible_sizes: tuple[int, ...] = ()



def bundle_metadata(bundle, input_size: int, precision: str, **kw) -> dict:
    """The ``bbe`` metadata document of ``bundle`` exported at ``input_size`` and ``precision``."""
    return make_metadata(input_size=input_size, stride=bundle.stride, grouper=bundle.grouper, model_name=bundle.name,
                         model_version=str(bundle.info.get("model_version", bundle.info.get("version", "1"))),
                         precision=precision, **kw)


def serving_function(model, input_size: int | None, batch: int | None):
    """tf.function: image (batch, S, S, 3) float32 -> [person_prob (sigmoid), box_offsets]."""
    import tensorflow as tf  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([batch, input_size, input_size, 3], tf.float32, name=INPUT_NAME)])
    def serve(image):
        logits, offsets = model(image, training=False)
        return [tf.sigmoid(logits), offsets]

    return serve



def smoke_run(path: Path, size: int) -> None:
    """Run a written artifact once on a grey canvas: it must load and give finite outputs of the right shape."""
    from bbe_mobile.export.runtime import CoreMLUnavailable, load_runner  # noqa: PLC0415

    try:
        runner = load_runner(path)
        prob, offsets = runner.run(np.full((size, size, 3), 127.0, np.float32))
    except CoreMLUnavailable:
        raise
    except Exception as exc:
        raise ExportError(f"the converted artifact does not run: {type(exc).__name__}: {error_line(exc)}") from None
    if prob.shape != (size // runner.stride, size // runner.stride) or offsets.shape != prob.shape + (4,):
        raise ExportError(f"the converted artifact gives outputs {prob.shape}/{offsets.shape}")

