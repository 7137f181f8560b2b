"""The options of ``bbe-mobile bench``: the formats it can measure, ``BenchOptions`` (the CLI's defaults),
the parsing of ``--formats`` and ``--threads``, and ``BenchError``, the one-line error of every bench module."""
from __future__ import annotations

import os
from dataclasses import dataclass

# format name -> (export target, precision); "keras" is the bundle itself
FORMATS = {
    "keras": (None, None),
    "tflite-fp32": ("tflite", "fp32"),
    "tflite-fp16": ("tflite", "fp16"),
    "tflite-dynamic-int8": ("tflite", "dynamic-int8"),
    "tflite-int8": ("tflite", "int8"),
    "tflite-int8-selective": ("tflite", "int8-selective"),
    "onnx-fp32": ("onnx", "fp32"),
    "coreml-fp16": ("coreml", "fp16"),
    "coreml-fp32": ("coreml", "fp32"),
    "coreml-int8": ("coreml", "int8"),
    "coreml-palette6": ("coreml", "palette6"),
    "coreml-palette4": ("coreml", "palette4"),
}
DEFAULT_FORMATS = "keras,tflite-fp32,tflite-int8,onnx-fp32,coreml-fp16"


class BenchError(ValueError):
    """Bad arguments or inputs of ``bench`` (one clear line)."""


@dataclass
class BenchOptions:
    """Everything ``run_bench`` needs; the defaults are the CLI's."""

    model: str | None = None
    formats: tuple[str, ...] = tuple(DEFAULT_FORMATS.split(","))
    input_size: int | None = None
    threads: tuple[int, ...] = tuple(dict.fromkeys((1, os.cpu_count() or 1)))
    device: str = "host"
    from_device: tuple[str, ...] = ()
    eval_images: str | None = None
    eval_annotations: str | None = None
    eval_limit: int | None = 50
    runs: int = 30
    warmup: int = 5
    grouper_runs: int = 100
    grouper_warmup: int = 10
    out: str = "bench_out"
    num_verify: int = 10
    num_accuracy: int = 100
    verify_images: str | None = None
    calibration_images: str | None = None
    num_calibration: int = 100
    twin: bool = True
    peers: bool = True
    grouper_sources: tuple[str, ...] = ("numpy", "swift", "kotlin")
    progress: bool = True


def parse_formats(text: str) -> tuple[str, ...]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if text.strip() == "all":
        names = list(FORMATS)
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise BenchError(f"unknown format {bad[0] if bad else text!r}: choose from {', '.join(FORMATS)} or all")
    return tuple(dict.fromkeys(names))


def parse_threads(text: str) -> tuple[int, ...]:
    try:
        threads = tuple(dict.fromkeys(int(t) for t in text.split(",") if t.strip()))
    except ValueError:
        raise BenchError(f"--threads must be a comma list of positive integers, got {text!r}") from None
    if not threads or min(threads) < 1:
        raise BenchError(f"--threads must be a comma list of positive integers, got {text!r}")
    return threads
