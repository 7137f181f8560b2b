"""The ``bbe`` metadata every exported artifact carries (docs/metadata.md) and ``bbe-mobile inspect``.

``make_metadata`` builds the JSON object, ``parse_metadata`` validates one read back, ``read_artifact_metadata``
reads it from a ``.tflite``, ``.onnx`` or ``.mlpackage`` and ``describe`` summarises an artifact (inputs,
outputs, shapes, dtypes, metadata, size, op histogram).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from bbe_mobile.grouper import GrouperConfig

FORMAT = "bbe-mobile/1"
METADATA_KEY = "bbe"
REQUIRED_KEYS = (
    "format", "input_size", "input_name", "input_layout", "input_range", "input_channels", "input_dtype",
    "input_quantization", "stride", "anchor_w", "anchor_h", "max_log_scale", "t_c", "t_nms", "t_fg",
    "t_iou", "max_instances", "prob_output", "offsets_output", "prob_activation", "output_layout",
    "model_name", "model_version", "toolkit_version", "precision",
)
OPTIONAL_GROUPER_KEYS = ("mode", "refine_rounds", "refine_statistic")  # Grouper v2; absent in older files: the
# defaults ("paper", 1, "median"), the grouping those files were made for
GROUPER_KEYS = ("t_c", "t_nms", "t_fg", "t_iou", "max_instances", "anchor_w", "anchor_h", "max_log_scale")
METADATA_KEYS = REQUIRED_KEYS[:REQUIRED_KEYS.index("max_instances") + 1] + OPTIONAL_GROUPER_KEYS \
    + REQUIRED_KEYS[REQUIRED_KEYS.index("max_instances") + 1:]  # every key written, in the documented order
PROB_OUTPUT = "person_prob"
OFFSETS_OUTPUT = "box_offsets"
POSITIVE_INT_KEYS = ("input_size", "stride")
STRING_KEYS = ("input_name", "prob_output", "offsets_output", "model_name", "precision")
PROB_ACTIVATIONS = ("none", "sigmoid")
INPUT_NAME = "image"
ARTIFACT_SUFFIXES = (".tflite", ".onnx", ".mlpackage")


class ArtifactError(ValueError):
    """An artifact that cannot be read: missing, corrupt, or without valid ``bbe`` metadata."""


def toolkit_version() -> str:
    try:
        from importlib.metadata import version  # noqa: PLC0415

        return version("bbe-mobile")
    except Exception:  # noqa: BLE001 - not installed (source checkout)
        return "0.1.0"


def make_metadata(*, input_size: int, stride: int, grouper: GrouperConfig, model_name: str, model_version: str,
                  precision: str, input_dtype: str = "float32", input_quantization: list | None = None,
                  input_name: str = INPUT_NAME) -> dict:
    """The ``bbe`` object of docs/metadata.md, keys in the documented order."""
    doc = {
        "format": FORMAT,
        "input_size": int(input_size),
        "input_name": input_name,
        "input_layout": "NHWC",
        "input_range": [0.0, 255.0],
        "input_channels": "RGB",
        "input_dtype": input_dtype,
        "input_quantization": input_quantization,
        "stride": int(stride),
        "anchor_w": float(grouper.anchor_w),
        "anchor_h": float(grouper.anchor_h),
        "max_log_scale": float(grouper.max_log_scale),
        "t_c": float(grouper.t_c), "t_nms": float(grouper.t_nms), "t_fg": float(grouper.t_fg),
        "t_iou": float(grouper.t_iou), "max_instances": int(grouper.max_instances),
        "mode": grouper.mode, "refine_rounds": int(grouper.refine_rounds),
        "refine_statistic": grouper.refine_statistic,
        "prob_output": PROB_OUTPUT,
        "offsets_output": OFFSETS_OUTPUT,
        "prob_activation": "none",
        "output_layout": "NHWC",
        "model_name": model_name,
        "model_version": str(model_version),
        "toolkit_version": toolkit_version(),
        "precision": precision,
    }
    assert tuple(doc) == METADATA_KEYS
    return doc


def parse_metadata(text: str | bytes | None, source: str) -> dict:
    """Validate a ``bbe`` JSON string read from an artifact; ArtifactError naming ``source`` otherwise."""
    if text is None:
        raise ArtifactError(f"{source} carries no '{METADATA_KEY}' metadata (was it written by bbe-mobile convert?)")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise ArtifactError(f"{source}: '{METADATA_KEY}' metadata is not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ArtifactError(f"{source}: '{METADATA_KEY}' metadata is not a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise ArtifactError(f"{source}: '{METADATA_KEY}' metadata lacks key {missing[0]!r}")
    if doc["format"] != FORMAT:
        raise ArtifactError(f"{source}: metadata format {doc['format']!r}, this reader supports {FORMAT!r}")
    for key in POSITIVE_INT_KEYS:
        if isinstance(doc[key], bool) or not isinstance(doc[key], int) or doc[key] <= 0:
            raise ArtifactError(f"{source}: metadata {key} must be a positive integer, got {doc[key]!r}")
    for key in STRING_KEYS:
        if not isinstance(doc[key], str):
            raise ArtifactError(f"{source}: metadata {key} must be a string, got {doc[key]!r}")
    if doc["prob_activation"] not in PROB_ACTIVATIONS:
        raise ArtifactError(f"{source}: metadata prob_activation must be one of {', '.join(PROB_ACTIVATIONS)}, "
                            f"got {doc['prob_activation']!r}")
    try:
        grouper_from_metadata(doc).validate()
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{source}: bad grouper values in metadata: {exc}") from None
    return doc


def grouper_from_metadata(doc: dict) -> GrouperConfig:
    return GrouperConfig(**{k: doc[k] for k in GROUPER_KEYS + OPTIONAL_GROUPER_KEYS if k in doc})


def artifact_kind(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in ARTIFACT_SUFFIXES:
        raise ArtifactError(f"unknown artifact type {suffix or '(no suffix)'!r} for {path}: "
                            f"expected one of {', '.join(ARTIFACT_SUFFIXES)}")
    return suffix[1:]


def file_size(path: str | os.PathLike) -> int:
    p = Path(path)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    return p.stat().st_size


def _require(path: Path) -> None:
    if not path.exists():
        raise ArtifactError(f"artifact not found: {path}")


def read_tflite(path: Path) -> tuple[dict, dict]:
    """(bbe metadata, summary) of a .tflite."""
    from bbe_mobile.export import tflite_metadata  # noqa: PLC0415

    data = path.read_bytes()
    try:
        entries = tflite_metadata.read_metadata(data)
        info = tflite_metadata.summary(data)
    except ValueError as exc:
        raise ArtifactError(f"{path}: {exc}") from None
    except Exception as exc:  # a damaged flatbuffer: accessors return None or read out of range
        raise ArtifactError(f"{path}: corrupt TFLite structure ({type(exc).__name__})") from None
    return parse_metadata(entries.get(METADATA_KEY), str(path)), info


def load_onnx(path: Path):
    """The ONNX graph without external weight files (only metadata and structure are read)."""
    import onnx  # noqa: PLC0415

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ArtifactError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None


def read_onnx(path: Path) -> tuple[dict, dict]:
    import onnx  # noqa: PLC0415

    model = load_onnx(path)
    props = {p.key: p.value for p in model.metadata_props}

    def value_info(v) -> dict:
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]
        return {"name": v.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(t.elem_type).lower(),
                "quantization": None}

    try:
        initializers = {i.name for i in model.graph.initializer}
        info = {"inputs": [value_info(v) for v in model.graph.input if v.name not in initializers],
                "outputs": [value_info(v) for v in model.graph.output],
                "ops": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
                "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None)}
    except Exception as exc:  # damaged bytes decode to odd fields: undecodable names, unknown enum values
        raise ArtifactError(f"{path}: corrupt ONNX structure ({type(exc).__name__})") from None
    return parse_metadata(props.get(METADATA_KEY), str(path)), info


def import_coremltools():
    """coremltools, imported with its import-time warnings (untested TF version, no native predict on Linux)
    silenced."""
    import logging  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    logging.getLogger("coremltools").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools  # noqa: PLC0415
    return coremltools


def load_coreml_spec(path: Path):
    ct = import_coremltools()

    try:
        return ct.utils.load_spec(str(path))
    except Exception as exc:  # missing manifest, bad protobuf
        raise ArtifactError(f"{path}: not a readable Core ML package ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:150] if str(exc) else ''})") from None


def coreml_feature(feature) -> dict:
    kind = feature.type.WhichOneof("Type")
    if kind == "imageType":
        t = feature.type.imageType
        sizes = [[s.height, s.width] for s in t.enumeratedSizes.sizes]
        shape = [1, t.height, t.width, 3]
        out = {"name": feature.name, "shape": shape, "dtype": "image", "color_space": {10: "GRAYSCALE", 20: "RGB",
               30: "BGR"}.get(t.colorSpace, str(t.colorSpace))}
        if sizes:
            out["enumerated_sizes"] = sizes
        return out
    t = feature.type.multiArrayType
    from coremltools.proto import FeatureTypes_pb2  # noqa: PLC0415

    dtype = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(t.dataType).lower()
    out = {"name": feature.name, "shape": list(t.shape), "dtype": dtype}
    shapes = [list(s.shape) for s in t.enumeratedShapes.shapes]
    if shapes:
        out["enumerated_shapes"] = shapes
    return out


def read_coreml(path: Path) -> tuple[dict, dict]:
    spec = load_coreml_spec(path)
    meta = dict(spec.description.metadata.userDefined)
    ops = Counter()
    if spec.WhichOneof("Type") == "mlProgram":
        for function in spec.mlProgram.functions.values():
            block = function.block_specializations[function.opset]
            ops.update(op.type for op in block.operations)
    info = {"inputs": [coreml_feature(f) for f in spec.description.input],
            "outputs": [coreml_feature(f) for f in spec.description.output],
            "ops": dict(sorted(ops.items())), "spec_version": spec.specificationVersion,
            "descriptions": {"model": spec.description.metadata.shortDescription,
                             **{f.name: f.shortDescription for f in list(spec.description.input)
                                + list(spec.description.output)}}}
    return parse_metadata(meta.get(METADATA_KEY), str(path)), info


def read_artifact_metadata(path: str | os.PathLike) -> dict:
    """The validated ``bbe`` metadata of an artifact."""
    return describe(path)["metadata"]


def describe(path: str | os.PathLike) -> dict:
    """Everything ``inspect`` prints: kind, size, inputs, outputs, ops, metadata."""
    p = Path(path)
    _require(p)
    kind = artifact_kind(p)
    reader = {"tflite": read_tflite, "onnx": read_onnx, "mlpackage": read_coreml}[kind]
    if kind != "mlpackage" and not p.is_file():
        raise ArtifactError(f"{p} is not a file")
    meta, info = reader(p)
    return {"path": str(p), "kind": kind, "size_bytes": file_size(p), "metadata": meta, **info}


def format_description(info: dict) -> str:
    """Human-readable ``inspect`` output."""
    lines = [f"{info['path']}  ({info['kind']}, {info['size_bytes'] / 1e6:.3f} MB)"]
    for key in ("inputs", "outputs"):
        lines.append(f"{key}:")
        for t in info[key]:
            extra = ""
            if t.get("quantization"):
                extra += f"  quant(scale={t['quantization'][0]:.6g}, zero_point={t['quantization'][1]})"
            for k in ("enumerated_sizes", "enumerated_shapes", "color_space"):
                if t.get(k):
                    extra += f"  {k}={t[k]}"
            lines.append(f"  {t['name']}: {t['shape']} {t['dtype']}{extra}")
    for key in ("opset", "spec_version"):
        if info.get(key) is not None:
            lines.append(f"{key}: {info[key]}")
    if info.get("descriptions"):
        lines.append("descriptions:")
        lines.extend(f"  {k}: {v}" for k, v in info["descriptions"].items())
    lines.append(f"metadata ({METADATA_KEY}):")
    lines.extend(f"  {k}: {json.dumps(v)}" for k, v in info["metadata"].items())
    ops = info["ops"]
    lines.append(f"ops ({sum(ops.values())} total, {len(ops)} kinds):")
    lines.extend(f"  {name}: {n}" for name, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))
    return "\n".join(lines)
