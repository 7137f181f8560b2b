"""The NumPy executor of Core ML ML Programs, so converted ``.mlpackage`` files are checked numerically on Linux
(docs/coreml_exec.md). ``executor`` runs a program; ``values`` decodes its constants and weights, ``inputs`` checks
and converts its inputs, ``numerics`` and ``kernels/`` (one module per op family) compute its ops, ``errors``
holds what they raise.

The names below are this package's public interface, importable from here as before the executor was split.
"""
from __future__ import annotations

from bbe_mobile.coreml_exec.errors import CoreMLExecError, ExecutionError, UnsupportedOpError
from bbe_mobile.coreml_exec.executor import MLProgramExecutor
from bbe_mobile.coreml_exec.kernels import SUPPORTED_OPS

__all__ = ["MLProgramExecutor", "CoreMLExecError", "UnsupportedOpError", "ExecutionError", "SUPPORTED_OPS"]
