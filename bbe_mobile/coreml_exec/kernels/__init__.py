"""The op kernels, one module per family; importing this package registers every kernel in
``registry._KERNELS``. ``SUPPORTED_OPS`` is the authoritative list of the op types the executor runs."""
from __future__ import annotations

from bbe_mobile.coreml_exec.kernels import constexpr, contraction, elementwise, layout, spatial  # noqa: F401 (register)
from bbe_mobile.coreml_exec.kernels.registry import _KERNELS

SUPPORTED_OPS = tuple(sorted(set(_KERNELS) | {"const"}))
