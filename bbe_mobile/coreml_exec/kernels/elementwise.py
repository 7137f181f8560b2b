"""Element-wise kernels: binary and unary arithmetic, comparisons and activations, ``log``, ``clip``,
``leaky_relu``, ``rsqrt``, ``inverse`` and ``softmax``."""
from __future__ import annotations

import numpy as np

from bbe_mobile.coreml_exec.kernels.registry import _op
from bbe_mobile.coreml_exec.numerics import _scalar, _sigmoid
from bbe_mobile.coreml_exec.values import _NP_OF

_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.true_divide,
    "maximum": np.maximum, "minimum": np.minimum, "pow": np.power, "floor_div": np.floor_divide,
    "mod": np.mod, "equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
    "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}


@_op(list(_BINARY), required=("x", "y"))
def _binary(ctx, p):
    x, y = p["x"], p["y"]
    if ctx.op_type == "floor_div" and (x.dtype.kind == "f" or y.dtype.kind == "f"):
        return np.floor(np.true_divide(x, y))
    return _BINARY[ctx.op_type](x, y)


_UNARY = {
    "relu": lambda x: np.maximum(x, 0), "relu6": lambda x: np.clip(x, 0, 6), "sigmoid": _sigmoid,
    "tanh": np.tanh, "exp": np.exp, "sqrt": np.sqrt, "abs": np.abs, "square": np.square,
    "floor": np.floor, "ceil": np.ceil, "sign": np.sign, "sin": np.sin, "cos": np.cos,
    "silu": lambda x: x * _sigmoid(x), "identity": lambda x: x, "logical_not": np.logical_not,
}


@_op(list(_UNARY), required=("x",))
def _unary(ctx, p):
    return _UNARY[ctx.op_type](p["x"])


@_op("log", required=("x",), optional=("epsilon",))
def _log(ctx, p):
    # MIL: y = log(x + epsilon), epsilon of x's dtype (default 1e-45: a float32 denormal, 0 in fp16)
    x = p["x"]
    eps = p["epsilon"] if "epsilon" in p else np.asarray(1e-45, _NP_OF[ctx.dtype])
    return np.log(x + x.dtype.type(_scalar(eps)))


@_op("clip", required=("x", "alpha", "beta"))
def _clip(ctx, p):
    return np.clip(p["x"], _scalar(p["alpha"]), _scalar(p["beta"]))


@_op("leaky_relu", required=("x", "alpha"))
def _leaky_relu(ctx, p):
    a = _scalar(p["alpha"])
    return np.where(p["x"] >= 0, p["x"], p["x"] * np.float32(a))


@_op("rsqrt", required=("x",), optional=("epsilon",))
def _rsqrt(ctx, p):
    return 1.0 / np.sqrt(p["x"] + np.float32(_scalar(p.get("epsilon", 1e-12))))


@_op("inverse", required=("x",), optional=("epsilon",))
def _inverse(ctx, p):
    return 1.0 / (p["x"] + np.float32(_scalar(p.get("epsilon", 1e-4))))


@_op("softmax", required=("x",), optional=("axis",))
def _softmax(ctx, p):
    axis = int(_scalar(p.get("axis", -1)))
    x = p["x"]
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
