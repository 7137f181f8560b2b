"""Export a BBE Keras bundle to TFLite, Core ML (ML Program) and ONNX, quantised, each with its ``bbe`` metadata.

Every exported graph takes ``image`` (1, S, S, 3) RGB in [0, 255] (normalisation stays inside) and outputs
``person_prob`` (1, S/4, S/4, 1) — the sigmoid is part of the graph — and ``box_offsets`` (1, S/4, S/4, 4).
Variants and the converter routes are documented in docs/export.md; the pitfalls avoided are in
``../shared/notes/toolchain.md`` (TFLite: only ``from_concrete_functions([cf])`` without a trackable, file size
and a test run checked; ONNX: batch dimension None; Core ML: fp32 I/O types named, outputs renamed).

An artifact is written to a hidden temporary path in the output directory and renamed into place only when
it is complete (and, through ``convert``, verified): a failed or killed conversion never leaves a partial file
at the output path.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bbe_mobile.export.artifact_info import INPUT_NAME, METADATA_KEY, OFFSETS_OUTPUT, PROB_OUTPUT, make_metadata
from bbe_mobile.export.calibration import quantize_int8
from bbe_mobile.export.images import DEFAULT_VERIFY_DIR, ExportError, calibration_canvases
from bbe_mobile.export.runtime import error_line
from bbe_mobile.modeling.network import is_head_layer
from bbe_mobile.utils.atomic import atomic_path, give_default_modes, remove_path

TARGETS = ("tflite", "coreml", "onnx")
PRECISIONS = {
    "tflite": ("fp32", "fp16", "dynamic-int8", "int8"),
    "coreml": ("fp16", "fp32", "int8", "palette6", "palette4"),
    "onnx": ("fp32",),
}
DEFAULT_PRECISION = {"tflite": "int8", "coreml": "fp16", "onnx": "fp32"}
FIDELITY = {  # each target's precisions from the most to the least faithful to the Keras model
    "tflite": ("fp32", "fp16", "dynamic-int8", "int8"),
    "coreml": ("fp32", "fp16", "int8", "palette6", "palette4"),
    "onnx": ("fp32",),
}
SUFFIX = {"tflite": ".tflite", "coreml": ".mlpackage", "onnx": ".onnx"}
IO_DTYPES = ("float32", "int8", "uint8")
COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")


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


@dataclass
class ExportResult:
    target: str
    precision: str
    path: Path
    size_bytes: int
    convert_seconds: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- helpers

def parse_targets(target: str) -> list[str]:
    targets = list(TARGETS) if target == "all" else [t.strip() for t in target.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            raise ExportError(f"unknown target {t!r}: choose from {', '.join(TARGETS)} or all")
    if not targets:
        raise ExportError("no target given")
    return targets


def parse_precisions(target: str, precision: str | None) -> list[str]:
    """``None`` -> the target's default; ``all`` -> every precision; else a comma list, each checked."""
    if precision is None:
        return [DEFAULT_PRECISION[target]]
    wanted = list(PRECISIONS[target]) if precision == "all" else [p.strip() for p in precision.split(",")]
    for p in wanted:
        _check_precision(target, p)
    return wanted


def more_faithful(target: str, precision: str, exclude: set[str] = frozenset()) -> list[str]:
    """The precisions of ``target`` more faithful than ``precision`` (the nearest first), less ``exclude``:
    what to try when ``precision`` fails verification."""
    order = FIDELITY[target]
    return [p for p in reversed(order[:order.index(precision)]) if p not in exclude]


def verification_hint(failed: list[tuple[str, str]]) -> str:
    """One line naming what to try instead of the (target, precision) variants that failed verification: the
    more faithful precisions of the same target (not yet verified themselves) or ``--no-verify``."""
    parts = []
    for target, precision in failed:
        others = more_faithful(target, precision, {p for t, p in failed if t == target})
        flags = [f"--precision {p}" for p in others]
        try_instead = (f"--target {target} with {', '.join(flags[:-1])}{' or ' if len(flags) > 1 else ''}{flags[-1]}"
                       " (more faithful), or " if flags else "")
        parts.append(f"{try_instead}--no-verify to write {target} {precision} unverified")
    return "try instead: " + "; ".join(parts)


def _check_precision(target: str, precision: str) -> None:
    if precision not in PRECISIONS[target]:
        raise ExportError(f"precision {precision!r} is not available for {target}: choose from "
                          f"{', '.join(PRECISIONS[target])} or all")


def check_request(target: str, precisions: list[str], options: ExportOptions) -> None:
    """Reject an unknown target, a precision the target does not have, an unknown I/O type or a
    ``num_calibration`` below 1 before any conversion starts."""
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}: choose from {', '.join(TARGETS)}")
    for precision in precisions:
        _check_precision(target, precision)
    if options.io_dtype not in IO_DTYPES:
        raise ExportError(f"unknown I/O type {options.io_dtype!r}: choose from {', '.join(IO_DTYPES)}")
    if options.num_calibration < 1:
        raise ExportError(f"--num-calibration must be >= 1, got {options.num_calibration}")


def resolve_precisions(targets: list[str], precision: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """Precisions per target for ``--precision``: with one target (or None/"all") each target's own parse;
    with several, a comma list applies to each target that has the precisions. Returns (precisions of the
    targets kept, targets skipped because they have none of them)."""
    if len(targets) == 1 or precision in (None, "all"):
        return {t: parse_precisions(t, precision) for t in targets}, []
    wanted = [p.strip() for p in precision.split(",")]
    known = {p for ps in PRECISIONS.values() for p in ps}
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise ExportError(f"unknown precision {unknown[0]!r}: choose from {', '.join(sorted(known))} or all")
    chosen = {t: [p for p in wanted if p in PRECISIONS[t]] for t in targets}
    skipped = [t for t in targets if not chosen[t]]
    if len(skipped) == len(targets):
        raise ExportError(f"no target has precision {precision!r}")
    return {t: ps for t, ps in chosen.items() if ps}, skipped


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """``"256,384"`` -> (256, 384); None or empty -> ()."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip()) if text else ()
    except ValueError:
        raise ExportError(f"--flexible-sizes must be a comma list of integers, got {text!r}") from None


def artifact_name(model_name: str, target: str, precision: str, options: ExportOptions) -> str:
    name = f"{model_name}_{precision}"
    if target == "tflite" and precision == "int8" and options.io_dtype != "float32":
        name += f"_{options.io_dtype}io"
    if target == "coreml":
        name += "_tensor" if options.coreml_input == "tensor" else ""
        name += "_flex" if options.flexible_sizes else ""
    return name + SUFFIX[target]



def _metadata(bundle, input_size: int, precision: str, **kw) -> dict:
    return make_metadata(input_size=input_size, stride=bundle.stride, grouper=bundle.grouper, model_name=bundle.name,
                         model_version=str(bundle.info.get("model_version", bundle.info.get("version", "1"))),
                         precision=precision, **kw)


def _check_bundle(bundle) -> None:
    if not bundle.config.box_head:
        raise ExportError(f"{bundle.name} is a semantic-only model (no box head): nothing to group, not exported")
    if bundle.config.full_resolution:
        raise ExportError("full-resolution models are not exported (outputs at stride 1 are too large for phones)")


def serving_function(model, input_size: int | None, batch: int | None):
    """tf.function: image (batch, S, S, 3) float32 -> [person_prob (sigmoid), box_offsets]."""
    import tensorflow as tf  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([batch, input_size, input_size, 3], tf.float32, name=INPUT_NAME)])
    def serve(image):
        logits, offsets = model(image, training=False)
        return [tf.sigmoid(logits), offsets]

    return serve


def _param_count(model) -> int:
    return int(model.count_params())


# ---------------------------------------------------------------------------------------------------- TFLite

def tflite_from_function(concrete_function, precision: str, canvases: list[np.ndarray] | None = None,
                         io_dtype: str = "float32") -> bytes:
    """TFLite flatbuffer of ``concrete_function`` (image -> outputs) at ``precision``, by the safe route of the
    notes (``from_concrete_functions([cf])`` WITHOUT a trackable argument). Full int8 needs ``canvases``
    (calibration letterboxes, (S, S, 3) float32) and gets measured activation ranges (calibration.py);
    ``io_dtype`` is its input/output type. Converter errors propagate."""
    import tensorflow as tf  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete_function])
    if precision == "fp32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    if precision in ("fp16", "dynamic-int8"):
        return converter.convert()
    if precision != "int8":
        raise ExportError(f"unknown TFLite precision {precision!r}")
    io = {"float32": tf.float32, "int8": tf.int8, "uint8": tf.uint8}[io_dtype]
    return quantize_int8(int8_converter(converter, canvases, io), canvases, io)


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
    if precision == "int8":
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


TFLITE_BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "dynamic-int8": 1, "int8": 1}


def check_tflite_weights(data: bytes, model, precision: str, error=ValueError) -> None:
    """SILENT FAILURE guard (notes): a converted file without its weights (~0.18 MB, NaN outputs) raises
    ``error``: the file must hold at least half the expected weight bytes."""
    expected = _param_count(model) * TFLITE_BYTES_PER_WEIGHT[precision]
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
    meta = _metadata(bundle, bundle.input_size, precision, **kw)
    return tflite_metadata.write_metadata(
        data, {METADATA_KEY: json.dumps(meta).encode()}, tensor_names=renames,
        description=f"BBE person instance segmentation ({bundle.name}, {precision})")


def export_tflite(bundle, precision: str, path: Path, options: ExportOptions) -> list[str]:
    data, facts = convert_tflite_bytes(bundle, precision, options)
    path.write_bytes(tflite_with_metadata(bundle, data, precision))
    notes = []
    if "calibration" in facts:
        notes.append(f"calibrated on {facts['calibration']['images']} images of {facts['calibration']['directory']}")
    _smoke_run(path, bundle.input_size)
    return notes


# ---------------------------------------------------------------------------------------------------- ONNX

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
    meta = _metadata(bundle, size, precision)
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
    _smoke_run(path, size)
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


# ---------------------------------------------------------------------------------------------------- Core ML

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
    meta = _metadata(bundle, size, precision)
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
        _smoke_run(path, size)
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


# ---------------------------------------------------------------------------------------------------- driver

EXPORTERS = {"tflite": export_tflite, "onnx": export_onnx, "coreml": export_coreml}


def _smoke_run(path: Path, size: int) -> None:
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


def export_artifact(bundle, target: str, precision: str, out_path: str | os.PathLike,
                    options: ExportOptions = ExportOptions()) -> ExportResult:
    """Convert ``bundle`` (already at the wanted input size) to one artifact written atomically at
    ``out_path``."""
    _check_bundle(bundle)
    check_request(target, [precision], options)
    out_path = Path(out_path)
    start = time.perf_counter()
    with atomic_path(out_path) as tmp:
        notes = EXPORTERS[target](bundle, precision, tmp, options)
    from bbe_mobile.export.artifact_info import file_size  # noqa: PLC0415

    return ExportResult(target, precision, out_path, file_size(out_path), time.perf_counter() - start, notes)


@dataclass
class ConvertOutcome:
    """One variant of ``convert``: the export result (None if conversion failed), its verification report
    (None with --no-verify), ``status`` ``ok``/``unverified``/``failed``/``verify-skipped`` and a message."""

    target: str
    precision: str
    path: Path
    result: ExportResult | None
    report: dict | None
    status: str
    message: str = ""


def convert(bundle, targets: list[str], precisions: dict[str, list[str]], out_dir: str | os.PathLike,
            options: ExportOptions = ExportOptions(), verify: bool = True, verify_images: str | None = None,
            num_verify: int = 20, log=print) -> list[ConvertOutcome]:
    """Export every (target, precision) into ``out_dir``; with ``verify`` each artifact is verified against
    ``bundle`` on ``verify_images`` while still at its temporary path and moved into place only if it passes
    (its report is written as ``NAME.verify.json`` either way)."""
    from bbe_mobile.export import verify as verification  # noqa: PLC0415
    from bbe_mobile.export.artifact_info import file_size  # noqa: PLC0415

    _check_bundle(bundle)
    for target in targets:
        check_request(target, precisions[target], options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if options.input_size and options.input_size != bundle.input_size:
        bundle = bundle.resized(options.input_size)
    if verify:
        verify_dir = verify_images or str(DEFAULT_VERIFY_DIR)
        files = verification.select_images(verify_dir, num_verify, flag="--verify-images")  # fail early
    outcomes = []
    for target in targets:
        for precision in precisions[target]:
            final = out / artifact_name(bundle.name, target, precision, options)
            log(f"converting {target} {precision} -> {final}")
            start = time.perf_counter()
            try:
                with atomic_path(final) as tmp:
                    notes = EXPORTERS[target](bundle, precision, tmp, options)
                    result = ExportResult(target, precision, final, file_size(tmp), time.perf_counter() - start,
                                          notes)
                    report = None
                    if verify:
                        report = verification.verify_runner_path(tmp, bundle, files, precision=precision,
                                                                 artifact_label=str(final))
                        verification.write_report(report, final.parent / (final.name + ".verify.json"))
                        if report["status"] == "failed":
                            raise _VerificationFailed(report)
            except _VerificationFailed as failed:
                stale = final.exists() or final.is_symlink()
                remove_path(final)  # an older artifact (e.g. from --no-verify) must not pass for this one
                outcomes.append(ConvertOutcome(target, precision, final, result, failed.report, "failed",
                                               "verification failed: " + verification.failure_summary(failed.report)
                                               + "; artifact not written" + (", older one removed" if stale else "")
                                               + f" (report: {final.name}.verify.json)"))
                log(f"  FAILED {outcomes[-1].message}")
                continue
            except Exception as exc:  # noqa: BLE001 - one variant failing must not stop the others
                message = error_line(exc, None) if isinstance(exc, ValueError) else \
                    f"{type(exc).__name__}: {error_line(exc)}"
                outcomes.append(ConvertOutcome(target, precision, final, None, None, "failed", message))
                log(f"  FAILED {message}")
                continue
            status = "unverified" if report is None else ("ok" if report["status"] == "passed" else "verify-skipped")
            message = "" if report is None or report["status"] != "skipped" else report["message"]
            outcomes.append(ConvertOutcome(target, precision, final, result, report, status, message))
            extra = f" ({'; '.join(result.notes)})" if result.notes else ""
            log(f"  {status}: {result.size_bytes / 1e6:.3f} MB in {result.convert_seconds:.1f} s{extra}"
                + (f"; {message}" if message else ""))
    return outcomes


class _VerificationFailed(Exception):
    def __init__(self, report: dict):
        super().__init__("verification failed")
        self.report = report

