"""The executor's errors: ``UnsupportedOpError`` (a feature it does not implement, raised at load time where
possible) and ``ExecutionError`` (a program that fails while running), both ``CoreMLExecError``."""
from __future__ import annotations

class CoreMLExecError(ValueError):
    """The model cannot be loaded or executed faithfully."""


class UnsupportedOpError(CoreMLExecError, NotImplementedError):
    """The program uses an op (or an op parameter / feature) this executor does not implement."""


class ExecutionError(CoreMLExecError):
    """An op failed at run time or produced a result that contradicts the program (e.g. its declared shape)."""
