"""``MLProgramExecutor``: executes a Core ML ML Program (``.mlpackage``) in NumPy, op by op, so converted models
can be checked numerically on Linux (Core ML itself only runs on Apple platforms). See docs/coreml_exec.md.

The program is read through coremltools' own readers: the protobuf spec with ``coremltools.utils.load_spec``
(or an ``MLModel`` loaded with ``skip_model_load=True``) and the weight file with coremltools' blob reader
(``coremltools.libmilstoragepython._BlobStorageReader``, see ``values``). The function ``main`` is compiled
into steps (constants decoded, ``constexpr_*`` ops evaluated, kernels looked up) and then interpreted op by op.

Precision: every op computes floating-point tensors in float32 and its result is cast to the dtype the program
declares for that op's output (float64 appears only in resize sampling coordinates, whose interpolation weights
are then rounded to float32, and where NumPy promotes integer arithmetic, e.g. ``real_div`` of int32 tensors,
before the cast to the declared dtype). For an fp16 program this rounds every intermediate tensor to fp16, as
Core ML stores fp16 activations between ops; accumulation inside an op (conv, matmul, reduce) is fp32. Weights
are used exactly as stored (fp16 weights stay the fp16 values; compressed weights are decompressed once at load
time in fp32 and rounded to the declared dtype).

Strictness: an op type without a kernel here, a parameter a kernel does not know, a missing required parameter,
an unsupported constant parameter value (e.g. ``ceil_mode=True``), or nested blocks raise ``UnsupportedOpError``
at load time; shape-dependent limits (e.g. non-integer nearest-neighbour factors) and an output whose shape
disagrees with the program's declared static shape raise ``UnsupportedOpError`` / ``ExecutionError`` at predict
time. Errors name the op type, its index in ``main`` and its output names. Nothing is guessed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bbe_mobile.coreml_exec.errors import CoreMLExecError, ExecutionError, UnsupportedOpError
from bbe_mobile.coreml_exec.inputs import input_info, prepare_input
from bbe_mobile.coreml_exec.kernels import _KERNELS
from bbe_mobile.coreml_exec.kernels.registry import _Ctx, _Kernel
from bbe_mobile.coreml_exec.values import _NP_OF, _TensorType, _tensor_type, _ValueDecoder

# opset name -> iOS version whose op semantics apply (coremltools 9 writes CoreML5..CoreML9)
_OPSETS = {"CoreML5": 15, "CoreML6": 16, "CoreML7": 17, "CoreML8": 18, "CoreML9": 26}


def _where(index: int, op_type: str, outputs: list[str]) -> str:
    return f"op #{index} '{op_type}' (outputs {', '.join(outputs)})"


@dataclass
class _Step:
    index: int
    op_type: str
    kernel: _Kernel
    params: dict[str, list]  # name -> list of ("var", name) / ("const", value)
    outputs: list[str]
    out_types: list[_TensorType]

    def where(self) -> str:
        return _where(self.index, self.op_type, self.outputs)


def load_spec(model):
    """The protobuf spec of ``model`` (an ``.mlpackage`` path or an ``MLModel``) and the directory its weight paths
    are relative to."""
    import coremltools as ct  # noqa: PLC0415

    if isinstance(model, ct.models.MLModel):
        weights_dir = getattr(model, "weights_dir", None)  # ".../weights"; "@model_path" is its parent
        return model.get_spec(), os.path.dirname(os.path.normpath(weights_dir)) if weights_dir else None
    path = Path(model)
    if not path.exists():
        raise CoreMLExecError(f"model not found: {path}")
    spec = ct.utils.load_spec(str(path))
    if path.is_dir():
        from coremltools.libmodelpackage import ModelPackage  # noqa: PLC0415

        model_dir = os.path.dirname(ModelPackage(str(path)).getRootModel().path())
    else:
        model_dir = str(path.parent)
    return spec, model_dir


class MLProgramExecutor:
    """NumPy interpreter of an ML Program's ``main`` function.

    ``model``: path of an ``.mlpackage`` (or an ``coremltools.models.MLModel``, e.g. loaded with
    ``skip_model_load=True``). ``precision``: ``"model"`` (default) casts every op's output to the dtype the
    program declares (fp16 programs run with fp16 rounding after each op); ``"fp32"`` keeps float16 tensors in
    float32 instead (weights stay as stored), to separate weight compression error from activation rounding.

    ``predict({name: array or PIL image})`` returns ``{output name: np.ndarray}`` in the program's output dtype.
    Image inputs accept a PIL image, an (H, W, 3) / (1, H, W, 3) RGB array (uint8 or float pixel values 0..255,
    used as-is: Core ML itself would see 8-bit pixels) or (H, W) / (H, W, 1) for grayscale.
    """

    def __init__(self, model, function: str = "main", precision: str = "model"):
        if precision not in ("model", "fp32"):
            raise ValueError(f"precision must be 'model' or 'fp32', got {precision!r}")
        self.precision = precision
        self.function = function
        spec, model_dir = load_spec(model)
        self.spec = spec
        if spec.WhichOneof("Type") != "mlProgram":
            raise CoreMLExecError(f"{model}: not an ML Program (model type {spec.WhichOneof('Type')!r})")
        program = spec.mlProgram
        if function not in program.functions:
            raise CoreMLExecError(f"function {function!r} not in the program (has {list(program.functions)})")
        func = program.functions[function]
        self.opset_name = func.opset
        if func.opset not in _OPSETS:
            raise UnsupportedOpError(f"opset {func.opset!r} of function {function!r} is not supported "
                                     f"(known: {', '.join(_OPSETS)})")
        self.opset = _OPSETS[func.opset]
        if func.opset not in func.block_specializations:
            raise CoreMLExecError(f"function {function!r} has no block for opset {func.opset}")
        block = func.block_specializations[func.opset]
        self._decoder = _ValueDecoder(model_dir)
        self._program_inputs = {i.name: _tensor_type(i.type) for i in func.inputs}
        self.input_names = [f.name for f in spec.description.input]
        self.output_names = [f.name for f in spec.description.output]
        if set(self.input_names) != set(self._program_inputs):
            raise CoreMLExecError(f"description inputs {self.input_names} != program inputs "
                                  f"{list(self._program_inputs)}")
        # predict returns outputs by name in description order, so only the sets must agree
        if set(block.outputs) != set(self.output_names):
            raise CoreMLExecError(f"description outputs {self.output_names} != program outputs "
                                  f"{list(block.outputs)}")
        self._inputs = {f.name: input_info(f, self._program_inputs[f.name]) for f in spec.description.input}
        self._consts: dict[str, np.ndarray] = {}
        self._steps: list[_Step] = []
        self._compile(block)

    def _compile(self, block) -> None:
        self._all_op_types: dict[str, int] = {}
        for index, op in enumerate(block.operations):
            self._all_op_types[op.type] = self._all_op_types.get(op.type, 0) + 1
            outputs = [o.name for o in op.outputs]
            where = _where(index, op.type, outputs)
            if op.blocks:
                raise UnsupportedOpError(f"{where}: ops with nested blocks (control flow) are not supported")
            try:
                out_types = [_tensor_type(o.type) for o in op.outputs]
            except CoreMLExecError as exc:
                raise UnsupportedOpError(f"{where}: {exc}") from None
            if op.type == "const":
                value = self._decoder.decode(op.attributes["val"])
                self._consts[outputs[0]] = value
                continue
            kernel = _KERNELS.get(op.type)
            if kernel is None:
                raise UnsupportedOpError(f"unsupported MIL op '{op.type}' at op #{index} of function "
                                         f"{self.function!r} (outputs: {', '.join(outputs)}): this executor "
                                         "does not implement it (see bbe_mobile.coreml_exec.SUPPORTED_OPS)")
            params: dict[str, list] = {}
            for key, val in op.attributes.items():
                if key == "name":
                    continue
                params[key] = [("const", self._decoder.decode(val))]
            for key, arg in op.inputs.items():
                bound = []
                for binding in arg.arguments:
                    which = binding.WhichOneof("binding")
                    if which == "name":
                        bound.append(("var", binding.name))
                    elif which == "value":
                        bound.append(("const", self._decoder.decode(binding.value)))
                    else:
                        raise UnsupportedOpError(f"{where}: unsupported argument binding {which!r}")
                params[key] = bound
            unknown = set(params) - kernel.required - kernel.optional
            missing = kernel.required - set(params)
            if unknown or missing:
                raise UnsupportedOpError(
                    f"{where}: parameters {sorted(unknown)} not implemented" if unknown
                    else f"{where}: required parameters {sorted(missing)} missing")
            step = _Step(index, op.type, kernel, params, outputs, out_types)
            if kernel.check is not None:  # constant parameters: unsupported features fail at load time
                self._call(step, kernel.check, self._bind(step, self._consts, partial=True), cast_fp16=True)
            if op.type.startswith("constexpr_"):  # compile-time constant: evaluate now
                values = self._run_step(step, self._consts, cast_fp16=True)
                self._consts.update(zip(outputs, values))
                continue
            self._steps.append(step)

    # ---------------------------------------------------------------- running

    @staticmethod
    def _bind(step: _Step, env: dict, partial: bool = False) -> dict[str, Any]:
        """The kernel's parameter dict. ``partial``: only the parameters whose values are all in ``env`` (the
        constants, at load time), float16 left as is; otherwise every parameter, float16 as float32."""
        p: dict[str, Any] = {}
        for key, bound in step.params.items():
            vals = []
            for kind, ref in bound:
                if kind == "var":
                    if ref not in env:
                        if partial:
                            break
                        raise ExecutionError(f"{step.where()}: input {key}={ref!r} is not defined")
                    v = env[ref]
                else:
                    v = ref
                if not partial and isinstance(v, np.ndarray) and v.dtype == np.float16:
                    v = v.astype(np.float32)
                vals.append(v)
            else:
                p[key] = vals if key in step.kernel.lists else (vals[0] if len(vals) == 1 else vals)
        return p

    def _call(self, step: _Step, fn: Callable, p: dict, cast_fp16: bool):
        """``fn(ctx, p)`` with errors re-raised naming the op."""
        ctx = _Ctx(step.op_type, self.opset, step.out_types[0].dtype if step.out_types else "",
                   keep_fp32=not cast_fp16)
        try:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                return fn(ctx, p)
        except CoreMLExecError as exc:
            raise type(exc)(f"{step.where()}: {exc}") from None
        except Exception as exc:
            raise ExecutionError(f"{step.where()}: {type(exc).__name__}: {exc}") from exc

    def _run_step(self, step: _Step, env: dict, cast_fp16: bool) -> list[np.ndarray]:
        p = self._bind(step, env)
        if step.kernel.check is not None:
            self._call(step, step.kernel.check, p, cast_fp16)
        result = self._call(step, step.kernel.fn, p, cast_fp16)
        results = result if isinstance(result, list) else [result]
        if len(results) != len(step.outputs):
            raise ExecutionError(f"{step.where()}: produced {len(results)} outputs, program declares "
                                 f"{len(step.outputs)}")
        out = []
        for value, ttype, name in zip(results, step.out_types, step.outputs):
            value = np.asarray(value)
            dtype = _NP_OF.get(ttype.dtype)
            if dtype is None:
                raise UnsupportedOpError(f"{step.where()}: output {name} has unsupported dtype {ttype.dtype}")
            if dtype == np.float16 and not cast_fp16:
                dtype = np.float32
            with np.errstate(over="ignore"):
                value = value.astype(dtype, copy=False)
            if ttype.rank is not None and value.ndim != ttype.rank:
                raise ExecutionError(f"{step.where()}: output {name} has rank {value.ndim}, the program "
                                     f"declares {ttype.rank} ({list(ttype.dims)})")
            for axis, d in enumerate(ttype.dims):
                if d is not None and value.shape[axis] != d:
                    raise ExecutionError(f"{step.where()}: output {name} has shape {list(value.shape)}, the "
                                         f"program declares {[x if x is not None else '?' for x in ttype.dims]}")
            out.append(value)
        return out

    def predict(self, inputs: dict) -> dict[str, np.ndarray]:
        """Run ``main`` on ``inputs`` ({input name: array or PIL image}); {output name: array}."""
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self._inputs]
        if missing or extra:
            raise CoreMLExecError(f"inputs: missing {missing}, unknown {extra} (model inputs {self.input_names})")
        env: dict[str, np.ndarray] = dict(self._consts)
        for name, info in self._inputs.items():
            env[name] = prepare_input(info, inputs[name], keep_fp32=self.precision == "fp32")
        cast_fp16 = self.precision == "model"
        for step in self._steps:
            values = self._run_step(step, env, cast_fp16)
            env.update(zip(step.outputs, values))
        out = {}
        for name in self.output_names:
            if name not in env:
                raise ExecutionError(f"output {name!r} was never computed")
            out[name] = np.array(env[name], copy=True)  # never a view of a stored constant or of an input
        return out

    @property
    def spec_op_types(self) -> dict[str, int]:
        """Op type -> count over every op of the function, constants and compile-time (constexpr) ops included."""
        return dict(self._all_op_types)

    @property
    def op_types(self) -> dict[str, int]:
        """Op type -> count over the executed (non-constant) ops of ``main``."""
        counts: dict[str, int] = {}
        for s in self._steps:
            counts[s.op_type] = counts.get(s.op_type, 0) + 1
        return counts
