"""Core ML export: an ML Program (fp32 or fp16 compute), optionally weight-compressed (linear int8, or mixed
8/6-bit and 8/4-bit palettes), with an image or tensor input, optional enumerated input sizes, fp32 I/O types
named and the outputs renamed (``../shared/notes/toolchain.md``), and the ``bbe`` metadata."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np

from bbe_mobile.export.artifact_info import INPUT_NAME, METADATA_KEY, OFFSETS_OUTPUT, PROB_OUTPUT
from bbe_mobile.export.images import ExportError
from bbe_mobile.export.runtime import error_line
from bbe_mobile.export.serving import ExportOptions, bundle_metadata, serving_function, smoke_run
from bbe_mobile.modeling.network import is_head_layer
from bbe_mobile.utils.atomic import give_default_modes

COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")


def _fixed_factor_model(bundle):
    """The bundle's weights in a flexible-size model (input_size None) whose bilinear upsamplings resize by a
    fixed 2-element factor of the runtime shape: Core ML's converter then knows the scale for every size."""
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from bbe_mobile.modeling.bundle import build_from_config  # noqa: PLC0415

    class FixedFactorUpsample(keras.layers.Layer):
        def __init__(self, factor: int, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            size = tf.shape(x)[1:3] * tf.constant([self.factor, self.factor])
            return tf.image.resize(x, size, method="bilinear")

    def clone(layer):
        if isinstance(layer, keras.layers.UpSampling2D):
            if layer.size[0] != layer.size[1] or layer.interpolation != "bilinear":
                raise ExportError(f"layer {layer.name}: only square bilinear upsampling is supported")
            return FixedFactorUpsample(layer.size[0], name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    flexible = build_from_config(bundle.config, None)
    model = keras.models.clone_model(flexible, clone_function=clone)
    model.set_weights(bundle.model.get_weights())
    return model


# Palettisation error in the backbone moves instances (6-bit backbone palettes: instance IoU 0.87), in ASPP and
# decoder it does not (0.93 with the backbone uncompressed): docs/export.md. So the palette variants give the
# backbone's weights 8-bit palettes and the rest the variant's 6 or 4 bits.
BACKBONE_PALETTE_BITS = 8


def _coreml_compress(mlmodel, precision: str, head_layers: list[str]):
    """Weight compression of a converted ML Program; ``head_layers``: Keras names of the ASPP/decoder/head
    layers (their ops get the variant's palette bits, every other op ``BACKBONE_PALETTE_BITS``)."""
    from coremltools.optimize.coreml import (  # noqa: PLC0415
        OpLinearQuantizerConfig,
        OpPalettizerConfig,
        OptimizationConfig,
        get_weights_metadata,
        linear_quantize_weights,
        palettize_weights,
    )

    if precision == "int8":
        return linear_quantize_weights(mlmodel, OptimizationConfig(
            global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")))
    if precision in ("palette6", "palette4"):
        head = OpPalettizerConfig(mode="kmeans", nbits=int(precision[-1]))
        backbone = OpPalettizerConfig(mode="kmeans", nbits=BACKBONE_PALETTE_BITS)
        ops = {op.name for meta in get_weights_metadata(mlmodel, head.weight_threshold).values()
               for op in meta.child_ops}
        backbone_ops = {name: backbone for name in ops if not any(f"_{layer}_" in name for layer in head_layers)}
        return palettize_weights(mlmodel, OptimizationConfig(global_config=head, op_name_configs=backbone_ops))
    if precision in ("fp16", "fp32"):  # uncompressed (compute precision chosen at conversion)
        return mlmodel
    raise ExportError(f"unknown Core ML precision {precision!r}")


def export_coreml(bundle, precision: str, path: Path, options: ExportOptions) -> list[str]:
    from bbe_mobile.export.artifact_info import import_coremltools  # noqa: PLC0415

    ct = import_coremltools()

    size = bundle.input_size
    if options.coreml_target not in COREML_TARGETS:
        raise ExportError(f"unknown Core ML deployment target {options.coreml_target!r}: "
                          f"choose from {', '.join(COREML_TARGETS)}")
    target = getattr(ct.target, options.coreml_target)
    if precision in ("int8", "palette6", "palette4") and options.coreml_target == "iOS15":
        raise ExportError(f"Core ML {precision} weight compression needs iOS16 or later (--min-target)")
    notes = []
    if options.flexible_sizes:
        if options.coreml_target == "iOS15":
            raise ExportError("flexible input sizes need iOS16 or later (--min-target)")
        sizes = sorted({size, *options.flexible_sizes})
        bad = [s for s in sizes if s <= 0 or s % 16]
        if bad:
            raise ExportError(f"flexible sizes must be positive multiples of 16, got {bad[0]}")
        model = _fixed_factor_model(bundle)
        fn = serving_function(model, None, 1)
        shape = ct.EnumeratedShapes(shapes=[(1, s, s, 3) for s in sizes], default=(1, size, size, 3))
        notes.append(f"enumerated input sizes {sizes}")
    else:
        fn = serving_function(bundle.model, size, 1)
        shape = (1, size, size, 3)
    cf = fn.get_concrete_function()
    tf_outputs = [t.name.split(":")[0] for t in cf.outputs]  # [prob, offsets], in this order
    if options.coreml_input == "image":
        inputs = [ct.ImageType(name=INPUT_NAME, shape=shape, scale=1.0, bias=[0.0, 0.0, 0.0],
                               color_layout=ct.colorlayout.RGB)]
    elif options.coreml_input == "tensor":
        inputs = [ct.TensorType(name=INPUT_NAME, shape=shape, dtype=np.float32)]
    else:
        raise ExportError(f"unknown Core ML input kind {options.coreml_input!r}: image or tensor")
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet_tqdm():
            mlmodel = ct.convert([cf], source="tensorflow", convert_to="mlprogram", inputs=inputs,
                                 outputs=[ct.TensorType(name=n, dtype=np.float32) for n in tf_outputs],
                                 compute_precision=compute, minimum_deployment_target=target)
            with np.errstate(divide="ignore", invalid="ignore"):  # all-zero weights give scale 0 (kept as 0)
                mlmodel = _coreml_compress(mlmodel, precision, [layer.name for layer in bundle.model.layers
                                                                 if is_head_layer(layer.name)])
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"Core ML conversion failed: {type(exc).__name__}: {error_line(exc)}") from None
    spec = mlmodel.get_spec()
    ct.utils.rename_feature(spec, tf_outputs[0], PROB_OUTPUT)
    ct.utils.rename_feature(spec, tf_outputs[1], OFFSETS_OUTPUT)
    mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    meta = bundle_metadata(bundle, size, precision)
    mlmodel.user_defined_metadata[METADATA_KEY] = json.dumps(meta)
    mlmodel.short_description = (f"BBE person instance segmentation ({bundle.name}, {precision}); "
                                  "group the outputs with the grouper of docs/grouper.md")
    mlmodel.author = "bbe-mobile"
    mlmodel.version = meta["model_version"]
    mlmodel.input_description[INPUT_NAME] = (
        f"RGB image {size}x{size}, letterboxed (top-left, black padding); pixel values 0..255, normalised "
        "inside the model" if options.coreml_input == "image"
        else f"float32 (1, {size}, {size}, 3) NHWC RGB in [0, 255], letterboxed (top-left, black padding)")
    mlmodel.output_description[PROB_OUTPUT] = "person probability per cell (1, S/4, S/4, 1), in [0, 1]"
    mlmodel.output_description[OFFSETS_OUTPUT] = "box offsets (dx, dy, dw, dh) per cell (1, S/4, S/4, 4)"
    mlmodel.save(str(path))
    give_default_modes(path)  # coremltools writes model.mlmodel 0600 and weights/ 0700
    from bbe_mobile.export.runtime import CoreMLUnavailable  # noqa: PLC0415

    try:
        smoke_run(path, size)
    except CoreMLUnavailable as exc:
        notes.append(f"not run: {exc}")
    return notes


@contextlib.contextmanager
def _quiet_tqdm():
    """coremltools draws tqdm progress bars on stderr: silence them for the duration."""
    try:
        import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        yield
        return
    original = tqdm.tqdm.__init__

    def init(self, *args, **kwargs):
        kwargs["disable"] = True
        original(self, *args, **kwargs)

    tqdm.tqdm.__init__ = init
    try:
        yield
    finally:
        tqdm.tqdm.__init__ = original

