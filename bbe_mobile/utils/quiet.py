"""Quiet by default: the start-up lines of TensorFlow, oneDNN, absl and LiteRT are not shown on the command line
(``--verbose`` or ``BBE_VERBOSE=1`` brings them back; README, "Quiet by default").

TF_CPP_MIN_LOG_LEVEL hides TensorFlow's own C++ log, but TF 2.21 also logs through absl before absl is set up
("WARNING: All log messages before absl::InitializeLog() ...", "oneDNN custom operations are on ..."), which
no environment variable silences short of turning oneDNN off (that would change speed and numerics). So the
first ``import tensorflow`` and the creation of a LiteRT interpreter run with the process's stderr (file
descriptor 2) captured, and what was captured is written back without the known start-up lines: real errors
still show.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

VERBOSE_ENV = "BBE_VERBOSE"
# Start-up lines of TensorFlow, oneDNN, absl and LiteRT (one regular expression each, matched per line).
START_UP_LINES = tuple(re.compile(p) for p in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IWE]\d{4} [\d:. ]+\d+ \S+\] (oneDNN custom operations are on|This TensorFlow binary is optimized"
    r"|Unable to register cu|computation placer already registered|TF-TRT Warning)",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.",
    r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.",
    r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: ",  # the int8 quantiser's summary
))


def verbose() -> bool:
    """Whether start-up lines are wanted (``BBE_VERBOSE`` set to anything but empty or 0)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def is_start_up_line(line: str) -> bool:
    return any(p.search(line) for p in START_UP_LINES)


@contextlib.contextmanager
def start_up_lines_hidden():
    """Run the body with file descriptor 2 captured; afterwards write back every captured line that is not a
    start-up line. Does nothing when ``verbose()``."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines(keepends=True)
                    if not is_start_up_line(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Executes a module with its start-up lines hidden."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with start_up_lines_hidden():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, like the path finder, with a loader that hides its start-up lines."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_start_up(verbose_flag: bool = False) -> None:
    """Called by the CLI before any work: ``verbose_flag`` (``--verbose``) sets ``BBE_VERBOSE=1``; otherwise
    TensorFlow's C++ log is limited to errors (TF_CPP_MIN_LOG_LEVEL=3, kept if already set), absl's Python log
    to errors, and the first TensorFlow import hides its start-up lines."""
    if verbose_flag:
        os.environ[VERBOSE_ENV] = "1"
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from absl import logging as absl_logging  # noqa: PLC0415 (installed with TensorFlow)
    except ImportError:  # pragma: no cover - the base install has TensorFlow, hence absl
        pass
    else:
        absl_logging.set_verbosity(absl_logging.ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
