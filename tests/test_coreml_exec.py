"""bbe_mobile.coreml_exec: the NumPy ML Program executor, checked op by op against independent NumPy / TensorFlow
computations, and end to end against Keras on tiny BBE models (fp32, fp16, int8, 6- and 4-bit palettes, image
input, flexible shapes, export.py's artifacts). Tolerances are documented in docs/coreml_exec.md."""
from __future__ import annotations

import gc
import os
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ct = pytest.importorskip("coremltools")
tf = pytest.importorskip("tensorflow")

from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from bbe_mobile.coreml_exec import (  # noqa: E402
    CoreMLExecError,
    MLProgramExecutor,
    UnsupportedOpError,
)
from bbe_mobile.coreml_exec.numerics import _grid  # noqa: E402

RNG = np.random.default_rng(1234)
FP32_TOL = 1e-4  # max |executor - reference| / max |reference| for float32 programs
FP16_OP_TOL = 2e-3  # one op in fp16: the result is rounded once to fp16 (2^-11 relative) + fp32 noise


def rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _spec(shape, dtype):
    return mb.TensorSpec(shape=shape, dtype=types.fp16 if dtype == np.float16 else types.fp32)


def convert_mil(prog, opset, **kwargs):
    """ct.convert of a MIL program with no optimisation passes. ct.convert ends with a full gc.collect(), 0.3 s
    with TensorFlow loaded: skipped here (the test process keeps nothing it would free)."""
    with mock.patch.object(gc, "collect", lambda *a: 0):
        return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=opset,
                          pass_pipeline=ct.PassPipeline.EMPTY, **kwargs)


def run_mil(tmp_path, fn, inputs: list[np.ndarray], opset=None, name="m"):
    """Build a MIL program ``fn(*input_vars)`` (no optimisation passes), save it as an .mlpackage and run it
    through the executor. Returns (output array, executor)."""
    opset = opset or ct.target.iOS16
    specs = [_spec(a.shape, a.dtype) for a in inputs]
    if len(inputs) == 1:
        @mb.program(input_specs=specs, opset_version=opset)
        def prog(x):
            return fn(x)
    else:
        @mb.program(input_specs=specs, opset_version=opset)
        def prog(x, y):
            return fn(x, y)
    ml = convert_mil(prog, opset)
    path = tmp_path / f"{name}.mlpackage"
    ml.save(str(path))
    ex = MLProgramExecutor(path)
    out = ex.predict(dict(zip(ex.input_names, inputs)))
    assert len(out) == 1
    return next(iter(out.values())), ex


def nchw_to_nhwc(x):
    return np.transpose(np.asarray(x, np.float32), (0, 2, 3, 1))


def nhwc_to_nchw(x):
    return np.transpose(np.asarray(x, np.float32), (0, 3, 1, 2))


# --------------------------------------------------------------------------------------------- conv

CONV_CASES = [  # cin, cout, kernel, stride, dilation, pad_type, custom pad, groups, (H, W), bias
    (4, 8, 3, 1, 1, "same", None, 1, (9, 9), True),
    (4, 8, 3, 2, 1, "same", None, 1, (10, 10), False),  # even input, stride 2: TF pads the odd pixel after
    (4, 8, 3, 2, 1, "same", None, 1, (11, 12), True),
    (4, 8, 3, 2, 1, "valid", None, 1, (11, 10), True),
    (4, 8, 3, 1, 2, "same", None, 1, (12, 12), False),
    (4, 8, 1, 2, 1, "valid", None, 1, (10, 10), True),
    (4, 8, 1, 1, 1, "same", None, 1, (7, 5), False),
    (4, 8, 3, 1, 1, "custom", (1, 0, 2, 1), 1, (8, 9), True),
    (4, 8, 5, 2, 1, "same_lower", None, 1, (10, 10), False),
    (6, 6, 3, 2, 1, "same", None, 6, (10, 10), True),  # depthwise, stride 2
    (6, 6, 3, 1, 6, "same", None, 6, (4, 4), False),  # depthwise, dilation larger than the map (ASPP)
    (6, 6, 3, 1, 3, "same", None, 6, (11, 11), True),
    (6, 12, 3, 1, 1, "same", None, 6, (8, 8), False),  # depthwise, multiplier 2
    (8, 4, 3, 1, 1, "same", None, 2, (8, 8), True),  # grouped
]


def _tf_pads(pad_type, pad, hw, k, s, d):
    """Explicit (before, after) pads for the reference; 'same' is left to TF's own SAME padding."""
    if pad_type == "custom":
        return [(pad[0], pad[1]), (pad[2], pad[3])]
    if pad_type == "same_lower":  # TF SAME total, the odd pixel before
        out = []
        for i in hw:
            total = max((-(-i // s) - 1) * s + (k - 1) * d + 1 - i, 0)
            out.append((total - total // 2, total // 2))
        return out
    return None


def tf_conv(x, w, b, stride, dilation, pad_type, pad, groups):
    """Reference conv with TensorFlow: x NCHW, w (Cout, Cin/g, K, K) as MIL stores it."""
    xh = tf.constant(nchw_to_nhwc(x))
    cout, cg, k, _ = w.shape
    w = np.asarray(w, np.float32)
    explicit = _tf_pads(pad_type, pad, x.shape[2:], k, stride, dilation)
    padding = "SAME" if pad_type == "same" else "VALID"
    if explicit is not None:
        xh = tf.pad(xh, [[0, 0], list(explicit[0]), list(explicit[1]), [0, 0]])
    cin = x.shape[1]
    if groups == 1:
        y = tf.nn.conv2d(xh, np.transpose(w, (2, 3, 1, 0)), stride, padding, dilations=dilation)
    elif cg == 1 and groups == cin:
        mult = cout // cin
        f = np.transpose(w.reshape(cin, mult, k, k), (2, 3, 0, 1))
        y = tf.nn.depthwise_conv2d(xh, f, [1, stride, stride, 1], padding, dilations=[dilation, dilation])
    else:
        cog = cout // groups
        y = tf.concat([tf.nn.conv2d(xh[..., g * cg:(g + 1) * cg], np.transpose(w[g * cog:(g + 1) * cog], (2, 3, 1, 0)),
                                    stride, padding, dilations=dilation) for g in range(groups)], axis=-1)
    y = y.numpy()
    if b is not None:
        y = y + np.asarray(b, np.float32)
    return nhwc_to_nchw(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: f"k{c[2]}s{c[3]}d{c[4]}{c[5]}g{c[7]}_{c[8][0]}x{c[8][1]}")
def test_conv(tmp_path, case, dtype):
    cin, cout, k, s, d, pad_type, pad, groups, hw, bias = case
    x = RNG.normal(size=(1, cin, *hw)).astype(dtype)
    w = RNG.normal(size=(cout, cin // groups, k, k)).astype(dtype)
    b = RNG.normal(size=(cout,)).astype(dtype) if bias else None

    def fn(v):
        kw = {"bias": b} if b is not None else {}
        if pad_type == "custom":
            kw["pad"] = list(pad)
        return mb.conv(x=v, weight=w, strides=[s, s], dilations=[d, d], pad_type=pad_type, groups=groups, **kw)

    out, _ = run_mil(tmp_path, fn, [x])
    ref = tf_conv(x, w, b, s, d, pad_type, pad, groups)
    assert out.dtype == dtype
    assert rel_err(out, ref) <= (FP32_TOL if dtype == np.float32 else FP16_OP_TOL)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(h=st.integers(3, 13), w=st.integers(3, 13), k=st.sampled_from([1, 2, 3, 5]), s=st.integers(1, 3),
       d=st.integers(1, 3), pad_type=st.sampled_from(["same", "valid", "same_lower"]), depthwise=st.booleans())
def test_conv_geometry_property(tmp_path, h, w, k, s, d, pad_type, depthwise):
    """Random sizes, kernels, strides, dilations and pad types (odd/even, kernel larger than stride, ...)."""
    if s > 1:
        d = 1  # TF has no strided dilated convolution
    if pad_type == "valid" and (h < (k - 1) * d + 1 or w < (k - 1) * d + 1):
        return
    cin = 3
    groups, cout = (cin, cin) if depthwise else (1, 4)
    x = RNG.normal(size=(1, cin, h, w)).astype(np.float32)
    wt = RNG.normal(size=(cout, cin // groups, k, k)).astype(np.float32)
    out, _ = run_mil(tmp_path, lambda v: mb.conv(x=v, weight=wt, strides=[s, s], dilations=[d, d], pad_type=pad_type,
                                                  groups=groups), [x])
    assert rel_err(out, tf_conv(x, wt, None, s, d, pad_type, None, groups)) <= FP32_TOL


# --------------------------------------------------------------------------------------------- resizing

UPSAMPLE_CASES = [  # (H, W), scale_h, scale_w, align_corners, half_pixel_centers
    ((4, 5), 2, 2, False, True),
    ((4, 5), 4, 4, False, True),
    ((4, 5), 2, 3, True, False),
    ((3, 4), 2, 2, False, False),
    ((33, 8), (129 + 1e-4) / 33, 2, False, True),  # fractional scale, as the converter writes for 33 -> 129
    ((8, 6), 2.5, 1.5, False, True),
    ((5, 5), 3.0, 3.0, True, False),
]


def tf_resize(x_nchw, out_hw, align_corners, half_pixel):
    y = tf.raw_ops.ResizeBilinear(images=nchw_to_nhwc(x_nchw), size=list(out_hw), align_corners=align_corners,
                                  half_pixel_centers=half_pixel)
    return nhwc_to_nchw(y.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", UPSAMPLE_CASES,
                         ids=lambda c: f"{c[0]}x{c[1]:.3g}x{c[2]:.3g}_ac{int(c[3])}_hp{int(c[4])}")
def test_upsample_bilinear(tmp_path, case, dtype):
    hw, sh, sw, ac, hp = case
    x = RNG.normal(size=(1, 3, *hw)).astype(dtype)
    if float(sh).is_integer() and float(sw).is_integer():
        sh, sw = int(sh), int(sw)
    else:  # both scales must have the same type
        sh, sw = np.float32(sh), np.float32(sw)
    out, _ = run_mil(tmp_path, lambda v: mb.upsample_bilinear(x=v, scale_factor_height=sh, scale_factor_width=sw,
                                                               align_corners=ac, half_pixel_centers=hp), [x])
    out_hw = (int(np.floor(hw[0] * np.float32(sh))), int(np.floor(hw[1] * np.float32(sw))))
    ref = tf_resize(x, out_hw, ac, hp)
    assert out.shape == ref.shape
    assert rel_err(out, ref) <= (FP32_TOL if dtype == np.float32 else FP16_OP_TOL)


def test_upsample_bilinear_ios15_default_is_align_corners(tmp_path):
    """Before iOS16 there is no half_pixel_centers: align_corners=False means half-pixel (MIL docs)."""
    x = RNG.normal(size=(1, 2, 4, 4)).astype(np.float32)
    out, _ = run_mil(tmp_path, lambda v: mb.upsample_bilinear(x=v, scale_factor_height=2, scale_factor_width=2,
                                                               align_corners=False), [x], opset=ct.target.iOS15)
    assert rel_err(out, tf_resize(x, (8, 8), False, True)) <= FP32_TOL


@pytest.mark.parametrize("mode,ac,hp", [("STRICT_ALIGN_CORNERS", True, False), ("ALIGN_CORNERS", True, False),
                                        ("DEFAULT", False, False), ("UNALIGN_CORNERS", False, True)])
@pytest.mark.parametrize("out_hw", [(9, 4), (13, 16)])
def test_resize_bilinear(tmp_path, mode, ac, hp, out_hw):
    x = RNG.normal(size=(1, 3, 5, 7)).astype(np.float32)
    out, _ = run_mil(tmp_path, lambda v: mb.resize_bilinear(x=v, target_size_height=out_hw[0],
                                                             target_size_width=out_hw[1], sampling_mode=mode), [x])
    assert rel_err(out, tf_resize(x, out_hw, ac, hp)) <= FP32_TOL


@pytest.mark.parametrize("mode,ac,hp", [("DEFAULT", False, False), ("STRICT_ALIGN_CORNERS", True, False),
                                        ("UNALIGN_CORNERS", False, True)])
def test_resize_ios17(tmp_path, mode, ac, hp):
    x = RNG.normal(size=(1, 3, 5, 7)).astype(np.float32)
    out, _ = run_mil(tmp_path, lambda v: mb.resize(x=v, shape=np.array([10, 21], np.int32), resized_dims=np.uint32(2),
                                                    sampling_mode=mode), [x], opset=ct.target.iOS17)
    assert rel_err(out, tf_resize(x, (10, 21), ac, hp)) <= FP32_TOL


def test_sampling_grids_match_the_mil_documentation():
    """Grid points of coremltools' resize_bilinear / upsample_bilinear docstrings (Xin = 2)."""
    np.testing.assert_allclose(_grid(2, 5, "UNALIGN_CORNERS"), [0, 0.1, 0.5, 0.9, 1], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 5, "STRICT_ALIGN_CORNERS"), [0, 0.25, 0.5, 0.75, 1], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 5, "DEFAULT"), [0, 0.4, 0.8, 1, 1], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 5, "OFFSET_CORNERS"), [0.1, 0.3, 0.5, 0.7, 0.9], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 6, "UNALIGN_CORNERS"), [0, 0, 1 / 3, 2 / 3, 1, 1], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 6, "DEFAULT"), [0, 1 / 3, 2 / 3, 1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(_grid(2, 6, "OFFSET_CORNERS"), [1 / 12, 0.25, 5 / 12, 7 / 12, 0.75, 11 / 12],
                               atol=1e-6)
    np.testing.assert_allclose(_grid(5, 1, "ALIGN_CORNERS"), [2.0])


# --------------------------------------------------------------------------------------------- other ops

X4 = RNG.normal(size=(1, 4, 5, 6)).astype(np.float32)
C4 = RNG.normal(size=(1, 4, 1, 1)).astype(np.float32)
BN = [RNG.normal(size=4).astype(np.float32) for _ in range(4)]
BN[1] = np.abs(BN[1]) + 0.1  # variance


def _bn_ref(x, c):
    mean, var, gamma, beta = (c(v).astype(np.float32).reshape(1, 4, 1, 1) for v in BN)
    return (x - mean) / np.sqrt(var + np.float32(c(1e-3))) * gamma + beta


def _tf_pool(kind):
    def ref(x, c):
        fn = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
        return nhwc_to_nchw(fn(nchw_to_nhwc(x), 3, 2, "SAME").numpy())
    return ref


# name: (builder(x_var, c), reference(x as float32, c)); c(value) casts a constant to the program's dtype
OPS = {
    "add_broadcast_const": (lambda v, c: mb.add(x=v, y=c(C4)), lambda x, c: x + c(C4)),
    "mul_broadcast_const": (lambda v, c: mb.mul(x=v, y=c(C4)), lambda x, c: x * c(C4)),
    "sub_scalar": (lambda v, c: mb.sub(x=v, y=c(1.5)), lambda x, c: x - 1.5),
    "real_div": (lambda v, c: mb.real_div(x=v, y=c(3.0)), lambda x, c: x / 3.0),
    "maximum": (lambda v, c: mb.maximum(x=v, y=c(C4)), lambda x, c: np.maximum(x, c(C4))),
    "minimum": (lambda v, c: mb.minimum(x=v, y=c(0.25)), lambda x, c: np.minimum(x, 0.25)),
    "relu": (lambda v, c: mb.relu(x=v), lambda x, c: np.maximum(x, 0)),
    "relu6": (lambda v, c: mb.relu6(x=mb.mul(x=v, y=c(5.0))), lambda x, c: np.clip(5 * x, 0, 6)),
    "clip": (lambda v, c: mb.clip(x=v, alpha=c(-0.5), beta=c(0.7)), lambda x, c: np.clip(x, c(-0.5), c(0.7))),
    "sigmoid": (lambda v, c: mb.sigmoid(x=mb.mul(x=v, y=c(8.0))), lambda x, c: 1 / (1 + np.exp(-8.0 * x))),
    "tanh": (lambda v, c: mb.tanh(x=v), lambda x, c: np.tanh(x)),
    "transpose": (lambda v, c: mb.transpose(x=v, perm=[0, 2, 3, 1]), lambda x, c: x.transpose(0, 2, 3, 1)),
    "reshape": (lambda v, c: mb.reshape(x=v, shape=[1, 4, 30]), lambda x, c: x.reshape(1, 4, 30)),
    "reshape_minus1": (lambda v, c: mb.reshape(x=v, shape=[2, -1]), lambda x, c: x.reshape(2, -1)),
    "reduce_mean_keep": (lambda v, c: mb.reduce_mean(x=v, axes=[2, 3], keep_dims=True),
                         lambda x, c: x.mean(axis=(2, 3), keepdims=True)),
    "reduce_mean_drop": (lambda v, c: mb.reduce_mean(x=v, axes=[1]), lambda x, c: x.mean(axis=1)),
    "concat": (lambda v, c: mb.concat(values=[v, mb.mul(x=v, y=c(2.0))], axis=1),
               lambda x, c: np.concatenate([x, 2 * x], axis=1)),
    "concat_interleave": (lambda v, c: mb.concat(values=[v, mb.mul(x=v, y=c(2.0))], axis=1, interleave=True),
                          lambda x, c: np.stack([x, 2 * x], axis=2).reshape(1, 8, 5, 6)),
    "cast_roundtrip": (lambda v, c: mb.cast(x=mb.cast(x=v, dtype="fp16"), dtype="fp32"),
                       lambda x, c: x.astype(np.float16).astype(np.float32)),
    "batch_norm": (lambda v, c: mb.batch_norm(x=v, mean=c(BN[0]), variance=c(BN[1]), gamma=c(BN[2]),
                                              beta=c(BN[3]), epsilon=c(1e-3)), _bn_ref),
    "pad_constant": (lambda v, c: mb.pad(x=v, pad=[1, 2, 0, 3], mode="constant", constant_val=c(0.5)),
                     lambda x, c: np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 3)), constant_values=0.5)),
    "pad_reflect": (lambda v, c: mb.pad(x=v, pad=[1, 2, 2, 1], mode="reflect"),
                    lambda x, c: np.pad(x, ((0, 0), (0, 0), (1, 2), (2, 1)), mode="reflect")),
    "pad_replicate": (lambda v, c: mb.pad(x=v, pad=[1, 2, 2, 1], mode="replicate"),
                      lambda x, c: np.pad(x, ((0, 0), (0, 0), (1, 2), (2, 1)), mode="edge")),
    "slice_by_index": (lambda v, c: mb.slice_by_index(x=v, begin=[0, 1, 0, 1], end=[1, 4, 3, 6],
                                                      stride=[1, 2, 1, 2], end_mask=[False, False, True, False],
                                                      squeeze_mask=[True, False, False, False]),
                       lambda x, c: x[0, 1:4:2, 0:, 1:6:2]),
    "max_pool_same": (lambda v, c: mb.max_pool(x=v, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same"),
                      _tf_pool("max")),
    "avg_pool_same": (lambda v, c: mb.avg_pool(x=v, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same",
                                               exclude_padding_from_average=True), _tf_pool("avg")),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", list(OPS))
def test_op(tmp_path, name, dtype):
    build, ref_fn = OPS[name]

    def c(value):
        return np.asarray(value).astype(dtype)

    x = X4.astype(dtype)
    out, _ = run_mil(tmp_path, lambda v: build(v, c), [x])
    ref = ref_fn(x.astype(np.float32), c)
    if name != "cast_roundtrip":
        assert out.dtype == dtype
    assert rel_err(out, ref) <= (FP32_TOL if dtype == np.float32 else FP16_OP_TOL), name


def test_two_input_broadcast(tmp_path):
    x = RNG.normal(size=(1, 4, 5, 6)).astype(np.float32)
    y = RNG.normal(size=(1, 4, 1, 1)).astype(np.float32)
    out, _ = run_mil(tmp_path, lambda a, b: mb.add(x=mb.mul(x=a, y=b), y=b), [x, y])
    assert rel_err(out, x * y + y) <= FP32_TOL


# --------------------------------------------------------------------------------------------- constexpr ops

def _pack(values: np.ndarray, nbits: int) -> np.ndarray:
    """Pack unsigned n-bit values LSB first (the layout of the iOS16 constexpr_lut_to_dense indices)."""
    bits = ((values.reshape(-1, 1) >> np.arange(nbits)) & 1).astype(np.uint8).reshape(-1)
    return np.packbits(bits, bitorder="little")


def _const_through_add(tmp_path, make_weight, shape, opset):
    """out = x + weight with x = 0: the executor's decompressed constant."""
    x = np.zeros(shape, np.float16)
    out, _ = run_mil(tmp_path, lambda v: mb.add(x=v, y=make_weight()), [x], opset=opset)
    return out.astype(np.float32)


def test_constexpr_affine_dequantize(tmp_path):
    q = RNG.integers(-128, 128, size=(6, 3, 2, 2)).astype(np.int8)
    zp = RNG.integers(-5, 5, size=6).astype(np.int8)
    scale = (RNG.uniform(0.01, 0.1, size=6)).astype(np.float16)
    out = _const_through_add(tmp_path, lambda: mb.constexpr_affine_dequantize(
        quantized_data=q, zero_point=zp, scale=scale, axis=0), q.shape, ct.target.iOS16)
    ref = ((q.astype(np.float32) - zp.reshape(6, 1, 1, 1)) * scale.astype(np.float32).reshape(6, 1, 1, 1))
    np.testing.assert_array_equal(out, ref.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("nbits", [2, 4, 6, 8])
def test_constexpr_lut_to_dense_ios16(tmp_path, nbits):
    shape = (5, 3, 3, 3)  # 135 elements: the packed bits do not end on a byte boundary for 2/6 bits
    idx = RNG.integers(0, 2 ** nbits, size=shape).astype(np.uint8)
    lut = RNG.normal(size=2 ** nbits).astype(np.float16)
    out = _const_through_add(tmp_path, lambda: mb.constexpr_lut_to_dense(
        lut=lut, indices=_pack(idx, nbits), shape=np.array(shape, np.uint32)), shape, ct.target.iOS16)
    np.testing.assert_array_equal(out, lut[idx].astype(np.float32))


def test_constexpr_blockwise_shift_scale_ios18(tmp_path):
    data = RNG.integers(-8, 8, size=(4, 6, 1, 1)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, size=(4, 2, 1, 1)).astype(np.float16)  # blocks of 3 input channels
    offset = RNG.integers(-2, 2, size=(4, 2, 1, 1)).astype(np.int8)
    out = _const_through_add(tmp_path, lambda: mb.constexpr_blockwise_shift_scale(
        data=data, scale=scale, offset=offset), data.shape, ct.target.iOS18)
    ref = (data.astype(np.float32) - np.repeat(offset, 3, axis=1)) * np.repeat(scale.astype(np.float32), 3, axis=1)
    np.testing.assert_array_equal(out, ref.astype(np.float16).astype(np.float32))


def test_constexpr_lut_to_dense_ios18_grouped_and_vector(tmp_path):
    # Case 1 of the coremltools docstring: two 2-bit tables over the first axis
    idx = np.array([2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3], np.uint8).reshape(6, 2)
    lut = np.array([1, 5, 9, 13, 2, 10, 18, 26], np.float16).reshape(2, 1, 4, 1)
    out = _const_through_add(tmp_path, lambda: mb.constexpr_lut_to_dense(
        indices=idx.astype(types.np_uint2_dtype), lut=lut), (6, 2), ct.target.iOS18)
    np.testing.assert_array_equal(out, [[9, 13], [13, 1], [5, 1], [26, 2], [18, 10], [2, 26]])
    # Case 2.1: vector palettisation (3-vectors) along axis 1
    idx = np.array([[[0, 0], [1, 0]], [[1, 1], [0, 0]]], np.uint8)
    a, b = [1.0, 2.0, 3.0], [10.0, 20.0, 30.0]
    lut = np.array([a, b], np.float16).reshape(1, 1, 1, 2, 3)
    out = _const_through_add(tmp_path, lambda: mb.constexpr_lut_to_dense(
        indices=idx.astype(types.np_uint1_dtype), lut=lut, vector_axis=np.int32(1)), (2, 6, 2), ct.target.iOS18)
    expected = np.array([[[a[0], a[0]], [a[1], a[1]], [a[2], a[2]], [b[0], a[0]], [b[1], a[1]], [b[2], a[2]]],
                         [[b[0], b[0]], [b[1], b[1]], [b[2], b[2]], [a[0], a[0]], [a[1], a[1]], [a[2], a[2]]]])
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("target,kind", [("iOS16", "int8"), ("iOS18", "int8_block"), ("iOS16", "palette4"),
                                         ("iOS18", "palette4_group")])
def test_compressed_weights_match_coremltools_decompression(tmp_path, target, kind):
    """A conv program compressed by coremltools.optimize: executor output == executor on coremltools' own
    decompress_weights of the same model (so every weight decompresses bit-exactly)."""
    import coremltools.optimize.coreml as cto

    opset = getattr(ct.target, target)
    w = RNG.normal(size=(16, 8, 3, 3)).astype(np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8, 6, 6), dtype=types.fp16)], opset_version=opset)
    def prog(x):
        return mb.conv(x=x, weight=w, pad_type="same")

    ml = convert_mil(prog, opset)
    config = {
        "int8": cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0),
        "int8_block": cto.OpLinearQuantizerConfig(mode="linear", granularity="per_block", block_size=4,
                                                  weight_threshold=0),
        "palette4": cto.OpPalettizerConfig(mode="uniform", nbits=4, weight_threshold=0),
        "palette4_group": cto.OpPalettizerConfig(mode="uniform", nbits=4, granularity="per_grouped_channel",
                                                 group_size=4, weight_threshold=0),
    }[kind]
    compress = cto.linear_quantize_weights if kind.startswith("int8") else cto.palettize_weights
    small = compress(ml, cto.OptimizationConfig(global_config=config))
    small.save(str(tmp_path / "c.mlpackage"))
    cto.decompress_weights(small).save(str(tmp_path / "d.mlpackage"))
    ex_c, ex_d = MLProgramExecutor(tmp_path / "c.mlpackage"), MLProgramExecutor(tmp_path / "d.mlpackage")
    constexpr = {t for t in ex_c.spec_op_types if t.startswith("constexpr_")}
    assert constexpr, "the model was not compressed"
    x = RNG.normal(size=(1, 8, 6, 6)).astype(np.float16)
    a, d = ex_c.predict({"x": x}), ex_d.predict({"x": x})
    np.testing.assert_array_equal(next(iter(a.values())), next(iter(d.values())))


# --------------------------------------------------------------------------------------------- errors

def test_unknown_op_raises_a_clear_error(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu(x=x, name="first")
        return mb.cumsum(x=y, axis=1, name="running_total")

    convert_mil(prog, ct.target.iOS16).save(str(tmp_path / "u.mlpackage"))
    with pytest.raises(UnsupportedOpError) as info:
        MLProgramExecutor(tmp_path / "u.mlpackage")
    message = str(info.value)
    assert "'cumsum'" in message and "op #" in message and "running_total" in message


def test_bad_inputs_are_rejected(tmp_path):
    x = RNG.normal(size=(1, 2, 3, 3)).astype(np.float32)
    _, ex = run_mil(tmp_path, lambda v: mb.relu(x=v), [x])
    with pytest.raises(CoreMLExecError, match="shape"):
        ex.predict({"x": np.zeros((1, 2, 4, 4), np.float32)})
    with pytest.raises(CoreMLExecError, match="missing"):
        ex.predict({})


# --------------------------------------------------------------------------------------------- image inputs

@pytest.mark.parametrize("layout", ["RGB", "BGR", "GRAYSCALE"])
def test_image_input_scale_bias_and_color_layout(tmp_path, layout):
    from PIL import Image

    c = 1 if layout == "GRAYSCALE" else 3

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, c, 6, 5))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.mul(x=x, y=np.arange(1, c + 1, dtype=np.float32).reshape(1, c, 1, 1), name="y")

    bias = [-0.1, -0.2, -0.3][:c]
    ml = convert_mil(prog, ct.target.iOS16, inputs=[ct.ImageType(
        name="x", shape=(1, c, 6, 5), scale=1 / 255, bias=bias, color_layout=getattr(ct.colorlayout, layout))])
    ml.save(str(tmp_path / "i.mlpackage"))
    ex = MLProgramExecutor(tmp_path / "i.mlpackage")
    rgb = RNG.integers(0, 256, size=(6, 5, 3)).astype(np.uint8)
    if layout == "GRAYSCALE":
        pil = Image.fromarray(rgb).convert("L")
        pixels = np.asarray(pil, np.float32)[None]
        arrays = [np.asarray(pil), np.asarray(pil)[..., None]]
    else:
        pil = Image.fromarray(rgb)
        pixels = np.transpose(rgb.astype(np.float32), (2, 0, 1))
        if layout == "BGR":
            pixels = pixels[::-1]
        arrays = [rgb, rgb[None], rgb.astype(np.float32)]
    ref = (pixels * np.float32(1 / 255) + np.array(bias, np.float32).reshape(c, 1, 1)) * \
        np.arange(1, c + 1, dtype=np.float32).reshape(c, 1, 1)
    for feed in [pil, *arrays]:
        out = ex.predict({"x": feed})["y"]
        assert rel_err(out[0], ref) <= FP32_TOL
    with pytest.raises(CoreMLExecError):
        ex.predict({"x": np.zeros((7, 5, 3), np.uint8)})


# --------------------------------------------------------------------------------------------- end to end

def _calibrated_tiny_bbe(size: int = 64):
    """A tiny BBE whose activations stay near unit scale: batch-norm statistics measured on random images
    (per-channel means, one layer-wide variance), box head weights scaled up. A freshly initialised network's
    activations shrink to ~1e-10 and would underflow fp16, testing nothing."""
    import keras

    from bbe_mobile.modeling.network import build_bbe

    keras.utils.set_random_seed(0)
    model = build_bbe(size, alpha=0.35, aspp_filters=16, decoder_filters=16)
    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer in norms:
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([gamma, beta, mean, np.full_like(var, var.mean())])
    head = model.get_layer("box_offsets")
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 300, bias])
    return model, images[:1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, x = _calibrated_tiny_bbe()
    ref = [np.asarray(r) for r in model(x, training=False)]
    d = tmp_path_factory.mktemp("bbe")
    return model, x, ref, d


def _convert_keras(model, path, precision, inputs=None, target=None):
    ml = ct.convert(model, source="tensorflow", convert_to="mlprogram",
                    inputs=inputs or [ct.TensorType(shape=(1, 64, 64, 3))],
                    minimum_deployment_target=target or ct.target.iOS16,
                    compute_precision=getattr(ct.precision, precision))
    ml.save(str(path))
    return ml


def _bbe_errors(ex: MLProgramExecutor, feed, ref) -> list[float]:
    """Relative errors of (person_logits, box_offsets); Core ML's output names are generic, matched by channels."""
    out = ex.predict({ex.input_names[0]: feed})
    errs = []
    for r in ref:
        (o,) = [v for v in out.values() if v.shape[-1] == r.shape[-1]]
        errs.append(rel_err(o.astype(np.float32), r))
    return errs


@pytest.fixture(scope="module")
def tiny_fp32(tiny):
    model, x, ref, d = tiny
    _convert_keras(model, d / "fp32.mlpackage", "FLOAT32")
    return d / "fp32.mlpackage"


@pytest.fixture(scope="module")
def tiny_fp16(tiny):
    model, x, ref, d = tiny
    return _convert_keras(model, d / "fp16.mlpackage", "FLOAT16")


@pytest.mark.slow  # trains batch-norm statistics and converts the tiny BBE network (~10 s)
def test_bbe_fp32_matches_keras(tiny, tiny_fp32):
    _, x, ref, _ = tiny
    ex = MLProgramExecutor(tiny_fp32)
    assert {"conv", "upsample_bilinear", "reduce_mean", "concat", "relu6"} <= set(ex.op_types)
    errs = _bbe_errors(ex, x, ref)
    assert max(errs) <= FP32_TOL, errs
    # an MLModel object (as export code holds it) works too and gives the same result
    from_object = MLProgramExecutor(ct.models.MLModel(str(tiny_fp32), skip_model_load=True))
    assert _bbe_errors(from_object, x, ref) == errs


FP16_E2E_TOL = 0.1  # measured ~0.02-0.04 on this random network (mostly from the fp16 weights)
COMPRESSED_E2E_TOL = {"int8": 0.25, "palette6": 0.6, "palette4": 1.0}  # vs Keras, random weights (docs)


@pytest.mark.slow  # a second Core ML conversion of the tiny BBE network
def test_bbe_fp16_matches_keras(tiny, tiny_fp16):
    _, x, ref, d = tiny
    ex = MLProgramExecutor(d / "fp16.mlpackage")
    errs = _bbe_errors(ex, x, ref)
    assert max(errs) <= FP16_E2E_TOL, errs
    # the fp16 rounding is real: without it the result differs from the fp16 run
    ex32 = MLProgramExecutor(d / "fp16.mlpackage", precision="fp32")
    assert _bbe_errors(ex32, x, ref) != errs


@pytest.mark.slow  # weight compression of a Core ML conversion, ~7-9 s each
@pytest.mark.parametrize("kind", ["int8", "palette6", "palette4"])
def test_bbe_compressed(tiny, tiny_fp16, kind):
    import coremltools.optimize.coreml as cto

    _, x, ref, d = tiny
    if kind == "int8":
        small = cto.linear_quantize_weights(tiny_fp16, cto.OptimizationConfig(
            global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")))
    else:
        small = cto.palettize_weights(tiny_fp16, cto.OptimizationConfig(
            global_config=cto.OpPalettizerConfig(mode="kmeans", nbits=int(kind[-1]))))
    small.save(str(d / f"{kind}.mlpackage"))
    ex = MLProgramExecutor(d / f"{kind}.mlpackage")
    assert any(t.startswith("constexpr_") for t in ex.spec_op_types)
    errs = _bbe_errors(ex, x, ref)
    assert max(errs) <= COMPRESSED_E2E_TOL[kind], errs
    # every weight decompresses exactly as coremltools' own decompression does
    cto.decompress_weights(small).save(str(d / f"{kind}_decompressed.mlpackage"))
    plain = MLProgramExecutor(d / f"{kind}_decompressed.mlpackage")
    assert not any(t.startswith("constexpr_") for t in plain.spec_op_types)
    a, b = ex.predict({"image": x}), plain.predict({"image": x})
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def _edit_const(spec, op_type: str, param: str, edit) -> None:
    """Edit the constant bound to ``param`` of the first ``op_type`` op of ``main`` (it must be used once)."""
    f = spec.mlProgram.functions["main"]
    ops = f.block_specializations[f.opset].operations
    op = next(o for o in ops if o.type == op_type)
    name = op.inputs[param].arguments[0].name
    users = [o for o in ops for a in o.inputs.values() for b in a.arguments if b.name == name]
    assert len(users) == 1, f"{name} is shared"
    const = next(o for o in ops if o.type == "const" and o.outputs[0].name == name)
    edit(const.attributes["val"].immediateValue.tensor)


def _has_param(spec, op_type: str, param: str) -> bool:
    f = spec.mlProgram.functions["main"]
    op = next(o for o in f.block_specializations[f.opset].operations if o.type == op_type)
    return param in op.inputs


@pytest.mark.slow  # needs the tiny BBE network converted (~12 s)
@pytest.mark.parametrize("breakage", ["conv_pad_off_by_one", "resize_align_corners"])
def test_a_broken_conversion_is_caught(tiny, tiny_fp32, tmp_path, breakage):
    """The executor is faithful enough to see a one-pixel pad shift or a wrong resize sampling grid."""
    _, x, ref, _ = tiny
    ml = ct.models.MLModel(str(tiny_fp32), skip_model_load=True)
    spec = ml.get_spec()
    if breakage == "conv_pad_off_by_one":  # the first conv (3x3, stride 2, TF SAME pads 0 before / 1 after)
        def pad_type(t):
            t.strings.values[0] = "custom"

        def pad(t):
            t.ints.values[:] = [1, 0, 1, 0]

        _edit_const(spec, "conv", "pad_type", pad_type)
        _edit_const(spec, "conv", "pad", pad)
    else:
        def true(t):
            t.bools.values[0] = True

        def false(t):
            t.bools.values[0] = False

        # the converter writes align_corners=False and leaves half_pixel_centers to its default (True then)
        _edit_const(spec, "upsample_bilinear", "align_corners", true)
        if _has_param(spec, "upsample_bilinear", "half_pixel_centers"):
            _edit_const(spec, "upsample_bilinear", "half_pixel_centers", false)
    broken = ct.models.MLModel(spec, weights_dir=ml.weights_dir, skip_model_load=True)
    broken.save(str(tmp_path / "broken.mlpackage"))
    errs = _bbe_errors(MLProgramExecutor(tmp_path / "broken.mlpackage"), x, ref)
    assert max(errs) > 100 * FP32_TOL, errs
    assert max(_bbe_errors(MLProgramExecutor(tiny_fp32), x, ref)) <= FP32_TOL


def test_flexible_shapes(tmp_path):
    """RangeDim and EnumeratedShapes: a graph with a dilated depthwise conv (converted through shape / slice /
    pad ops), a broadcast global mean and a 2x resize by a fixed factor, run at several sizes."""
    rng = np.random.default_rng(5)
    w1 = tf.constant(rng.normal(size=(3, 3, 3, 8)).astype(np.float32) * 0.3)
    w2 = tf.constant(rng.normal(size=(3, 3, 8, 1)).astype(np.float32) * 0.3)

    @tf.function(input_signature=[tf.TensorSpec((1, None, None, 3), tf.float32)])
    def f(x):
        y = tf.nn.relu6(tf.nn.conv2d(x / 127.5 - 1, w1, 2, "SAME"))
        y = tf.nn.depthwise_conv2d(y, w2, [1, 1, 1, 1], "SAME", dilations=[2, 2])
        y = y + tf.reduce_mean(y, axis=[1, 2], keepdims=True)
        y = tf.image.resize(y, tf.shape(y)[1:3] * tf.constant([2, 2]), method="bilinear")
        return tf.sigmoid(y)

    cf = f.get_concrete_function()
    shapes = {
        "range": ct.TensorType(shape=(1, ct.RangeDim(32, 128, 64), ct.RangeDim(32, 128, 64), 3)),
        "enumerated": ct.TensorType(shape=ct.EnumeratedShapes(shapes=[(1, 64, 64, 3), (1, 96, 96, 3)],
                                                              default=(1, 64, 64, 3))),
    }
    for kind, spec in shapes.items():
        ml = ct.convert([cf], source="tensorflow", convert_to="mlprogram", inputs=[spec],
                        minimum_deployment_target=ct.target.iOS16, compute_precision=ct.precision.FLOAT32)
        ml.save(str(tmp_path / f"{kind}.mlpackage"))
        ex = MLProgramExecutor(tmp_path / f"{kind}.mlpackage")
        sizes = [64, 96] if kind == "enumerated" else [32, 48, 96]
        for s in sizes:
            x = rng.uniform(0, 255, (1, s, s, 3)).astype(np.float32)
            (out,) = ex.predict({ex.input_names[0]: x}).values()
            assert rel_err(out, f(x).numpy()) <= FP32_TOL, (kind, s)
        bad = 80 if kind == "enumerated" else 160
        with pytest.raises(CoreMLExecError, match="shape"):
            ex.predict({ex.input_names[0]: np.zeros((1, bad, bad, 3), np.float32)})


# --------------------------------------------------------------------------------------------- export.py

def _export(model, tmp_path, precision, **options):
    export = pytest.importorskip("bbe_mobile.export")
    if not hasattr(export, "export_artifact") or not hasattr(export, "ExportOptions"):
        pytest.skip("bbe_mobile.export has no export_artifact / ExportOptions")
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.bundle import ModelBundle
    from bbe_mobile.modeling.network import ModelConfig

    bundle = ModelBundle(model, ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16), 64, GrouperConfig(), "tiny", {})
    path = tmp_path / f"tiny_{precision}.mlpackage"
    export.export_artifact(bundle, "coreml", precision, path, export.ExportOptions(**options))
    return path


def _prob_offsets(out: dict):
    from bbe_mobile.export.artifact_info import OFFSETS_OUTPUT, PROB_OUTPUT

    return out[PROB_OUTPUT].astype(np.float32), out[OFFSETS_OUTPUT].astype(np.float32)


@pytest.mark.slow  # a full export.py Core ML conversion (~9 s)
def test_export_py_fp32_image_artifact(tiny, tmp_path):
    model, x, ref, _ = tiny
    path = _export(model, tmp_path, "fp32")
    ex = MLProgramExecutor(path)
    prob, offsets = _prob_offsets(ex.predict({ex.input_names[0]: x}))  # the (1, S, S, 3) float canvas
    assert rel_err(prob, 1 / (1 + np.exp(-ref[0].astype(np.float64)))) <= FP32_TOL
    assert rel_err(offsets, ref[1]) <= FP32_TOL


@pytest.mark.slow  # the flexible conversion alone takes ~30 s
def test_export_py_flexible_fp16_artifact(tiny, tmp_path):
    from bbe_mobile.modeling.network import build_bbe

    model, _, _, _ = tiny
    path = _export(model, tmp_path, "fp16", flexible_sizes=(96,))
    ex = MLProgramExecutor(path)
    rng = np.random.default_rng(9)
    for size in (64, 96):
        other = build_bbe(size, alpha=0.35, aspp_filters=16, decoder_filters=16)
        other.set_weights(model.get_weights())
        x = rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)
        logits, offsets_ref = (np.asarray(r) for r in other(x, training=False))
        prob, offsets = _prob_offsets(ex.predict({ex.input_names[0]: x}))
        assert float(np.abs(prob - 1 / (1 + np.exp(-logits))).max()) <= 0.05, size  # export.md fp16 limit
        assert rel_err(offsets, offsets_ref) <= FP16_E2E_TOL, size
