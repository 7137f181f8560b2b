"""The kernel registry: ``_op`` registers a kernel for one or more MIL op types with its required, optional
and list parameters and an optional load-time check; ``_Ctx`` is what a kernel knows besides its inputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

@dataclass(frozen=True)
class _Kernel:
    fn: Callable
    required: frozenset
    optional: frozenset
    lists: frozenset = frozenset()  # parameters that are variadic lists (e.g. concat values)
    # check(ctx, p): validates the constant parameters (feature support, opset form). Called at load time with
    # the parameters bound to constants only, and again before every run with all parameters.
    check: Callable | None = None


_KERNELS: dict[str, _Kernel] = {}


def _op(names, required=(), optional=(), lists=(), check=None):
    def deco(fn):
        for name in ([names] if isinstance(names, str) else names):
            _KERNELS[name] = _Kernel(fn, frozenset(required), frozenset(optional), frozenset(lists), check)
        return fn
    return deco


class _Ctx:
    """What a kernel may know besides its inputs: op type, opset and the declared dtype of its first output."""

    def __init__(self, op_type: str, opset: int, dtype: str, keep_fp32: bool = False):
        self.op_type = op_type
        self.opset = opset
        self.dtype = dtype  # MIL dtype name ("fp16", "fp32", ...) the program declares for output 0
        self.keep_fp32 = keep_fp32  # precision="fp32": float16 activations are kept in float32
