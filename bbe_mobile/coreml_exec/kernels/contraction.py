"""Kernels that sum over an axis: the ``reduce_*`` family, ``matmul`` and ``linear``."""
from __future__ import annotations

import numpy as np

from bbe_mobile.coreml_exec.kernels.registry import _op
from bbe_mobile.coreml_exec.numerics import _ints, _scalar

@_op(["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "reduce_prod"], required=("x",),
     optional=("axes", "keep_dims"))
def _reduce(ctx, p):
    fn = {"reduce_mean": np.mean, "reduce_sum": np.sum, "reduce_max": np.max, "reduce_min": np.min,
          "reduce_prod": np.prod}[ctx.op_type]
    axes = p.get("axes")
    axes = None if axes is None else tuple(_ints(axes))
    return fn(p["x"], axis=axes, keepdims=bool(_scalar(p.get("keep_dims", False))))


@_op("matmul", required=("x", "y"), optional=("transpose_x", "transpose_y"))
def _matmul(ctx, p):
    x, y = p["x"], p["y"]
    if bool(_scalar(p.get("transpose_x", False))):
        x = np.swapaxes(x, -1, -2)
    if bool(_scalar(p.get("transpose_y", False))):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@_op("linear", required=("x", "weight"), optional=("bias",))
def _linear(ctx, p):
    y = np.matmul(p["x"], p["weight"].T)
    return y + p["bias"] if "bias" in p else y
