"""bbe_mobile.coreml_exec: op semantics and strictness checks on one-op MIL programs (no TensorFlow reference):
``log`` with its ``epsilon``, parameters MIL requires, load-time checks of constant parameters, the opset form of
``constexpr_lut_to_dense``, uneven ``split``, negative ``gather`` indices and outputs that never alias constants."""
from __future__ import annotations

import gc
from unittest import mock

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import get_new_symbol, types  # noqa: E402

from bbe_mobile.coreml_exec import ExecutionError, MLProgramExecutor, UnsupportedOpError  # noqa: E402

RNG = np.random.default_rng(4321)


def convert_mil(prog, opset, **kwargs):
    """ct.convert of a MIL program with no optimisation passes (and without ct.convert's closing gc.collect())."""
    with mock.patch.object(gc, "collect", lambda *a: 0):
        return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=opset,
                          pass_pipeline=ct.PassPipeline.EMPTY, **kwargs)


def one_op(fn, shape, dtype=np.float32, opset=None):
    """MLModel of the program ``fn(x)`` over one input ``x`` of ``shape`` / ``dtype``."""
    opset = opset or ct.target.iOS16

    @mb.program(input_specs=[mb.TensorSpec(shape=shape, dtype=types.fp16 if dtype == np.float16 else types.fp32)],
                opset_version=opset)
    def prog(x):
        return fn(x)

    return convert_mil(prog, opset)


def _ops(spec):
    f = spec.mlProgram.functions["main"]
    return f.block_specializations[f.opset].operations


def _op_of(spec, op_type: str):
    return next(o for o in _ops(spec) if o.type == op_type)


def _edited(ml, edit):
    """Executor of ``ml`` after ``edit(spec)`` (the weights directory stays the original's)."""
    spec = ml.get_spec()
    edit(spec)
    return MLProgramExecutor(ct.models.MLModel(spec, weights_dir=ml.weights_dir, skip_model_load=True))


# --------------------------------------------------------------------------------------------- log

@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
def test_log_applies_epsilon_in_the_ops_dtype(tmp_path, dtype):
    x = (np.abs(RNG.normal(size=(1, 4, 5, 6))) + 0.01).astype(dtype)
    x[0, 0, 0, :3] = [0.0, 1e-30, 1.0]  # log(0 + 1e-45) is finite in fp32; in fp16 epsilon rounds to 0
    ml = one_op(lambda v: mb.log(x=v), x.shape, dtype)
    assert "epsilon" in _op_of(ml.get_spec(), "log").inputs  # coremltools always writes it (default 1e-45)
    ml.save(str(tmp_path / "log.mlpackage"))
    ex = MLProgramExecutor(tmp_path / "log.mlpackage")
    out = ex.predict({"x": x})["log_0"]
    x32 = x.astype(np.float32)
    with np.errstate(divide="ignore"):
        ref = np.log(x32 + np.float32(1e-45)) if dtype == np.float32 else np.log(x32).astype(np.float16)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, ref)
    assert np.isfinite(out[0, 0, 0, 0]) == (dtype == np.float32)


def test_log_explicit_epsilon(tmp_path):
    x = np.abs(RNG.normal(size=(2, 3))).astype(np.float32)
    ml = one_op(lambda v: mb.log(x=v, epsilon=np.float32(0.5)), x.shape)
    out = MLProgramExecutor(ml).predict({"x": x})["log_0"]
    np.testing.assert_allclose(out, np.log(x + np.float32(0.5)), rtol=1e-6)


# --------------------------------------------------------------------------------------------- required params

@pytest.mark.parametrize("op_type,param", [("max_pool", "pad_type"), ("avg_pool", "pad_type"),
                                           ("leaky_relu", "alpha")])
def test_parameters_mil_requires_are_not_defaulted(op_type, param):
    x = RNG.normal(size=(1, 2, 4, 4)).astype(np.float32)
    build = {
        "max_pool": lambda v: mb.max_pool(x=v, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
        "avg_pool": lambda v: mb.avg_pool(x=v, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
        "leaky_relu": lambda v: mb.leaky_relu(x=v, alpha=np.float32(0.2)),
    }[op_type]
    ml = one_op(build, x.shape)
    (out,) = MLProgramExecutor(ml).predict({"x": x}).values()  # complete program: runs
    if op_type == "leaky_relu":
        np.testing.assert_allclose(out, np.where(x >= 0, x, np.float32(0.2) * x), rtol=1e-6)

    def drop(spec):
        del _op_of(spec, op_type).inputs[param]

    with pytest.raises(UnsupportedOpError, match=rf"'{op_type}'.*required parameters \['{param}'\] missing"):
        _edited(ml, drop)


# --------------------------------------------------------------------------------------------- load-time checks

@pytest.mark.parametrize("case", ["ceil_mode", "gather_batch_dims", "resize_3_dims"])
def test_unsupported_constant_parameters_fail_at_load(tmp_path, case):
    shape, opset, build, message = {
        "ceil_mode": ((1, 2, 5, 5), ct.target.iOS16,
                      lambda v: mb.max_pool(x=v, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid",
                                            ceil_mode=True), "ceil_mode"),
        "gather_batch_dims": ((2, 3, 4), ct.target.iOS16,
                              lambda v: mb.gather(x=v, indices=np.array([[0, 2], [1, 0]], np.int32), axis=1,
                                                  batch_dims=1), "batch_dims"),
        "resize_3_dims": ((2, 3, 4), ct.target.iOS17,
                          lambda v: mb.resize(x=v, shape=np.array([1, 6, 8], np.int32), resized_dims=np.uint32(3),
                                              interpolation_mode="LINEAR", sampling_mode="DEFAULT"), "3 dimensions"),
    }[case]
    one_op(build, shape, opset=opset).save(str(tmp_path / "m.mlpackage"))
    with pytest.raises(UnsupportedOpError, match=message) as info:
        MLProgramExecutor(tmp_path / "m.mlpackage")  # the constructor, not predict
    assert "op #" in str(info.value)


def _pack(values: np.ndarray, nbits: int) -> np.ndarray:
    bits = ((values.reshape(-1, 1) >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little")


def test_lut_to_dense_form_follows_the_opset():
    shape = (4, 3)
    idx = RNG.integers(0, 4, size=shape).astype(np.uint8)
    lut = RNG.normal(size=4).astype(np.float16)
    ml = one_op(lambda v: mb.add(x=v, y=mb.constexpr_lut_to_dense(lut=lut, indices=_pack(idx, 2),
                                                                  shape=np.array(shape, np.uint32))),
                shape, np.float16, ct.target.iOS16)
    (out,) = MLProgramExecutor(ml).predict({"x": np.zeros(shape, np.float16)}).values()
    np.testing.assert_array_equal(out, lut[idx])

    def drop_shape(spec):  # iOS16 constexpr parameters are attributes
        del _op_of(spec, "constexpr_lut_to_dense").attributes["shape"]

    with pytest.raises(UnsupportedOpError, match=r"iOS16.*required parameters \['shape'\] missing"):
        _edited(ml, drop_shape)


# --------------------------------------------------------------------------------------------- run time

def test_split_num_splits_must_divide_the_axis(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, get_new_symbol(), 4))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.split(x=x, num_splits=2, axis=1)

    ml = convert_mil(prog, ct.target.iOS16, inputs=[ct.TensorType(name="x", shape=(1, ct.RangeDim(2, 12), 4))])
    ex = MLProgramExecutor(ml)
    x = RNG.normal(size=(1, 6, 4)).astype(np.float32)
    a, b = ex.predict({"x": x}).values()
    np.testing.assert_array_equal(a, x[:, :3])
    np.testing.assert_array_equal(b, x[:, 3:])
    with pytest.raises(ExecutionError, match=r"'split'.*not divisible by num_splits=2"):
        ex.predict({"x": np.zeros((1, 5, 4), np.float32)})  # the declared output dims are dynamic


def test_gather_negative_indices():
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)
    idx = np.array([[-1, 0], [2, -5]], np.int32)
    ml = one_op(lambda v: mb.gather(x=v, indices=idx, axis=1), x.shape)
    (out,) = MLProgramExecutor(ml).predict({"x": x}).values()
    np.testing.assert_array_equal(out, x[:, [[4, 0], [2, 0]]])


def test_outputs_do_not_alias_stored_constants():
    w = np.arange(6, dtype=np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.relu(x=x), mb.reshape(x=w, shape=[2, 3])  # the reshape of a constant is a view of it

    ex = MLProgramExecutor(convert_mil(prog, ct.target.iOS16))
    first = ex.predict({"x": np.ones((1, 4), np.float32)})["reshape_0"]
    assert not any(np.shares_memory(first, c) for c in ex._consts.values() if isinstance(c, np.ndarray))
    first[:] = -1
    np.testing.assert_array_equal(ex.predict({"x": np.ones((1, 4), np.float32)})["reshape_0"], w.reshape(2, 3))
