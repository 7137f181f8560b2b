"""Runners: one interface over every way to execute a BBE model (Keras now; exported artifacts in export).

A runner takes one letterboxed canvas ``(S, S, 3)`` float32 RGB in [0, 255] and returns
``prob`` (H, W) float32 probabilities and ``offsets`` (H, W, 4) float32, H = W = S / stride.
Non-finite outputs raise ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.modeling.bundle import ModelBundle
from bbe_mobile.modeling.network import sigmoid


def error_line(exc: BaseException, limit: int | None = 200) -> str:
    """The first line of an exception's message, at most ``limit`` characters (None: all of it)."""
    lines = str(exc).splitlines()
    return lines[0][:limit] if lines else ""


def check_outputs(prob: np.ndarray, offsets: np.ndarray, source: str, logits: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Squeeze the batch axis and reject non-finite outputs (model output is never trusted silently).
    ``logits``: ``prob`` holds logits, checked before the sigmoid is applied (sigmoid(inf) = 1 would hide it)."""
    prob = np.asarray(prob, np.float32).reshape(prob.shape[-3], prob.shape[-2])
    offsets = np.asarray(offsets, np.float32).reshape(offsets.shape[-3], offsets.shape[-2], 4)
    for name, array in (("logits" if logits else "probabilities", prob), ("box offsets", offsets)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{source} produced non-finite {name} ({int(np.sum(~np.isfinite(array)))} values)")
    return (sigmoid(prob) if logits else prob), offsets


@dataclass
class KerasRunner:
    """Runs a Keras model bundle; ``input_size`` is the canvas side it was built for."""

    bundle: ModelBundle
    _forward: object = field(default=None, init=False, repr=False)

    @property
    def input_size(self) -> int:
        return self.bundle.input_size

    @property
    def stride(self) -> int:
        return self.bundle.stride

    @property
    def grouper(self) -> GrouperConfig:
        return self.bundle.grouper

    @property
    def name(self) -> str:
        return f"{self.bundle.name} (keras)"

    def run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.bundle.config.box_head:
            raise ValueError(f"{self.bundle.name} is a semantic-only model: it has no box head to group with")
        if self._forward is None:  # one traced graph per runner: eager calls are ~10x slower
            import tensorflow as tf  # noqa: PLC0415

            model = self.bundle.model
            self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        logits, offsets = self._forward(canvas[None].astype(np.float32))
        return check_outputs(np.asarray(logits), np.asarray(offsets), self.name, logits=True)


def _squeeze_nhwc(array: np.ndarray, channels: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[-1] != channels and array.shape[1] == channels:  # NCHW -> NHWC
        array = np.transpose(array, (0, 2, 3, 1))
    return array


class _ArtifactRunner:
    """Common part of the exported-artifact runners: ``metadata`` (the ``bbe`` object, docs/metadata.md) gives
    the input size, stride, grouper thresholds and output names."""

    metadata: dict
    path: str
    backend: str = "artifact"
    sizes: tuple[int, ...] = ()

    @property
    def input_size(self) -> int:
        return int(self.metadata["input_size"])

    @property
    def stride(self) -> int:
        return int(self.metadata["stride"])

    @property
    def grouper(self) -> GrouperConfig:
        from bbe_mobile.export.artifact_info import grouper_from_metadata  # noqa: PLC0415

        return grouper_from_metadata(self.metadata)

    @property
    def precision(self) -> str:
        return str(self.metadata["precision"])

    @property
    def name(self) -> str:
        return f"{self.metadata['model_name']} ({self.backend} {self.precision})"

    def _check_canvas(self, canvas: np.ndarray) -> np.ndarray:
        canvas = np.asarray(canvas, np.float32)
        allowed = self.sizes or (self.input_size,)
        if canvas.ndim != 3 or canvas.shape[2] != 3 or canvas.shape[0] != canvas.shape[1] or canvas.shape[0] not in allowed:
            raise ValueError(f"{self.path} takes a square canvas of side {' or '.join(map(str, allowed))} "
                             f"(3 channels), got {canvas.shape}")
        return canvas

    def _finish(self, prob: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prob = _squeeze_nhwc(prob, 1).astype(np.float32)
        offsets = _squeeze_nhwc(offsets, 4).astype(np.float32)
        return check_outputs(prob, offsets, self.name, logits=self.metadata["prob_activation"] == "sigmoid")

    def _check_output_names(self, available) -> None:
        """The outputs named by the metadata must exist in the graph (ValueError naming the first missing)."""
        available = list(available)
        for key in ("prob_output", "offsets_output"):
            if self.metadata[key] not in available:
                raise ValueError(f"{self.path}: its metadata names {key} {self.metadata[key]!r}, but the model's "
                                 f"outputs are {', '.join(map(repr, available))}")

    def _execute(self, call, *args):
        """``call(*args)`` with the runtime's own errors turned into one ValueError line."""
        try:
            return call(*args)
        except Exception as exc:  # onnxruntime/LiteRT/Core ML raise their own exception types
            raise ValueError(f"{self.name} failed to run {self.path}: {type(exc).__name__}: "
                             f"{error_line(exc)}") from None


def litert_interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # noqa: PLC0415
        except ImportError:
            raise ValueError("running .tflite needs ai-edge-litert (pip install 'bbe-mobile[export]') "
                             "or tflite-runtime") from None
    return Interpreter


def new_litert_interpreter(**kwargs):
    """A LiteRT interpreter (``litert_interpreter_class()(**kwargs)``) with its tensors allocated, its start-up
    line ("Created TensorFlow Lite XNNPACK delegate", printed by ``allocate_tensors``) hidden unless verbose
    (utils/quiet.py)."""
    from bbe_mobile.utils.quiet import start_up_lines_hidden  # noqa: PLC0415

    interpreter_class = litert_interpreter_class()
    with start_up_lines_hidden():
        interpreter = interpreter_class(**kwargs)
        interpreter.allocate_tensors()
    return interpreter


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """``x`` as the LiteRT input tensor ``detail`` takes it: for an integer tensor x / scale + zero point, rounded
    and clipped to the dtype's range; cast to the tensor's dtype."""
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
    return x.astype(dtype)


class TFLiteRunner(_ArtifactRunner):
    """Runs a ``.tflite`` with LiteRT (``num_threads``: CPU threads, None = LiteRT's default). Quantised inputs
    are quantised with the tensor's scale/zero point, quantised outputs dequantised."""

    backend = "tflite"

    def __init__(self, path, num_threads: int | None = None):
        from bbe_mobile.export.artifact_info import read_tflite  # noqa: PLC0415

        self.path = str(path)
        self.metadata, _ = read_tflite(Path(path))
        try:
            self.interpreter = new_litert_interpreter(model_path=self.path, num_threads=num_threads)
        except Exception as exc:  # LiteRT raises RuntimeError/ValueError on a bad file
            raise ValueError(f"LiteRT cannot load {path}: {error_line(exc)}") from None
        self.input = self.interpreter.get_input_details()[0]
        outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        by_channels = {int(d["shape"][-1]): d for d in outputs.values()}
        self.prob_output = outputs.get(self.metadata["prob_output"], by_channels.get(1))
        self.offsets_output = outputs.get(self.metadata["offsets_output"], by_channels.get(4))
        if self.prob_output is None or self.offsets_output is None:
            raise ValueError(f"{path}: cannot find the outputs {self.metadata['prob_output']}/"
                             f"{self.metadata['offsets_output']}")

    def _get(self, detail) -> np.ndarray:
        value = self.interpreter.get_tensor(detail["index"])
        scale, zero_point = detail["quantization"]
        if np.issubdtype(value.dtype, np.integer) and scale:
            return (value.astype(np.float32) - zero_point) * scale
        return value.astype(np.float32)

    def run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = quantize_input(self._check_canvas(canvas)[None], self.input)
        self.interpreter.set_tensor(self.input["index"], x)
        self._execute(self.interpreter.invoke)
        return self._finish(self._get(self.prob_output), self._get(self.offsets_output))


class OnnxRunner(_ArtifactRunner):
    """Runs a ``.onnx`` with onnxruntime on the CPU (``num_threads``: intra-op threads, None = default)."""

    backend = "onnx"

    def __init__(self, path, num_threads: int | None = None):
        from bbe_mobile.export.artifact_info import read_onnx  # noqa: PLC0415

        try:
            import onnxruntime as ort  # noqa: PLC0415
        except ImportError:
            raise ValueError("running .onnx needs onnxruntime (pip install 'bbe-mobile[export]')") from None
        self.path = str(path)
        self.metadata, _ = read_onnx(Path(path))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if num_threads:
            options.intra_op_num_threads = num_threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ValueError(f"onnxruntime cannot load {path}: {error_line(exc)}") from None
        self.input_name = self.session.get_inputs()[0].name
        self._check_output_names(o.name for o in self.session.get_outputs())

    def run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_canvas(canvas)[None]
        names = [self.metadata["prob_output"], self.metadata["offsets_output"]]
        prob, offsets = self._execute(self.session.run, names, {self.input_name: x})
        return self._finish(prob, offsets)


COREML_UNAVAILABLE = "Core ML predict needs macOS or bbe_mobile.coreml_exec"


class CoreMLUnavailable(ValueError):
    """No way to execute a Core ML model here (not macOS and no bbe_mobile.coreml_exec)."""


class CoreMLRunner(_ArtifactRunner):
    """Runs a ``.mlpackage``: coremltools ``predict`` on macOS, else the NumPy ML Program executor
    ``bbe_mobile.coreml_exec`` if installed; ``CoreMLUnavailable`` otherwise (raised on the first ``run`` so the
    metadata can still be read). Image inputs get a PIL image on macOS (pixel values rounded to uint8, as a
    pixel buffer would), the executor gets the float NHWC canvas."""

    backend = "coreml"

    def __init__(self, path):
        from bbe_mobile.export.artifact_info import coreml_feature, load_coreml_spec, read_coreml  # noqa: PLC0415

        self.path = str(path)
        self.metadata, _ = read_coreml(Path(path))
        spec = load_coreml_spec(Path(path))
        feature = coreml_feature(spec.description.input[0])
        self.input_name = feature["name"]
        self.image_input = feature["dtype"] == "image"
        sizes = [s[0] for s in feature.get("enumerated_sizes", [])] + \
                [s[1] for s in feature.get("enumerated_shapes", [])]
        self.sizes = tuple(sorted(set(sizes))) if sizes else ()
        self._check_output_names(f.name for f in spec.description.output)
        self._predict = None

    def _predictor(self):
        if self._predict is not None:
            return self._predict
        import platform  # noqa: PLC0415

        if platform.system() == "Darwin":
            import coremltools as ct  # noqa: PLC0415

            model = ct.models.MLModel(self.path)

            def predict(x):
                if self.image_input:
                    from PIL import Image  # noqa: PLC0415

                    feed = Image.fromarray(np.clip(np.round(x[0]), 0, 255).astype(np.uint8))
                else:
                    feed = x
                return model.predict({self.input_name: feed})
        else:
            try:
                from bbe_mobile.coreml_exec import MLProgramExecutor  # noqa: PLC0415
            except ImportError:
                raise CoreMLUnavailable(COREML_UNAVAILABLE) from None
            executor = MLProgramExecutor(self.path)

            def predict(x):
                return executor.predict({self.input_name: x})
        self._predict = predict
        return predict

    def run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_canvas(canvas)[None]
        out = self._execute(self._predictor(), x)
        return self._finish(np.asarray(out[self.metadata["prob_output"]], np.float32),
                            np.asarray(out[self.metadata["offsets_output"]], np.float32))


RUNNERS = {".tflite": TFLiteRunner, ".onnx": OnnxRunner, ".mlpackage": CoreMLRunner}


def load_runner(path: str | None = None, input_size: int | None = None, num_threads: int | None = None):
    """A runner for a model path: a bundle directory or ``.keras`` file (None = the bundled default), or an
    exported ``.tflite`` / ``.onnx`` / ``.mlpackage`` (configured by its ``bbe`` metadata).
    ``input_size``: canvas side to rebuild a Keras model for; an artifact must have been exported at that side
    (or list it among its Core ML enumerated sizes). ``num_threads`` applies to LiteRT and onnxruntime."""
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415

    suffix = Path(path).suffix.lower() if path is not None else ""
    if suffix not in RUNNERS:
        return KerasRunner(load_bundle(path, input_size=input_size))
    if not Path(path).exists():
        raise ValueError(f"model not found: {path}")
    cls = RUNNERS[suffix]
    runner = cls(path, num_threads=num_threads) if cls is not CoreMLRunner else cls(path)
    allowed = runner.sizes or (runner.input_size,)
    if input_size is not None and input_size not in allowed:
        raise ValueError(f"{path} was exported for input side {' or '.join(map(str, allowed))}, not {input_size}: "
                         "use that --size or convert again with --input-size")
    return runner
