"""Measurements from phones and command-line benches in the ``bbe-bench/1`` format (docs/bench-format.md):
reading and validating such a file or a bench's stdout, and the paper's grouper target they are judged against."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from bbe_mobile.bench.options import BenchError

BENCH_FORMAT = "bbe-bench/1"
RESULT_KINDS = ("grouper", "tracker", "model", "preprocess", "upsample", "total")
PAPER_GROUPER_MS = (1.0, 2.0)  # the paper: grouping takes 1-2 ms on an iPhone 7
PAPER_NOTE = "paper: grouping 1-2 ms on an iPhone 7"


def _is_ms(value) -> bool:
    """A non-negative finite number (not a bool; an int too large for a float is not finite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and value >= 0
    except OverflowError:
        return False


def validate_bench_doc(doc, source: str) -> dict:
    """Check a ``bbe-bench/1`` document (docs/bench-format.md); BenchError with one line if it is malformed."""
    def bad(why: str):
        return BenchError(f"{source}: not a valid {BENCH_FORMAT} results file: {why}")

    if not isinstance(doc, dict):
        raise bad("the top level must be a JSON object")
    if doc.get("format") != BENCH_FORMAT:
        raise bad(f"'format' is {doc.get('format')!r}, expected {BENCH_FORMAT!r}")
    results = doc.get("results")
    if not isinstance(results, list) or not results:
        raise bad("'results' must be a non-empty list")
    for k, row in enumerate(results):
        if not isinstance(row, dict):
            raise bad(f"results[{k}] is not an object")
        if row.get("kind") not in RESULT_KINDS:
            raise bad(f"results[{k}].kind is {row.get('kind')!r}, expected one of {', '.join(RESULT_KINDS)}")
        for key in ("median_ms", "p90_ms", "min_ms"):
            optional_and_absent = key == "min_ms" and key not in row
            if not optional_and_absent and not _is_ms(row.get(key)):
                raise bad(f"results[{k}].{key} must be a non-negative finite number, got {row.get(key)!r:.40}")
        if row["p90_ms"] < row["median_ms"]:
            raise bad(f"results[{k}].p90_ms {row['p90_ms']} is below median_ms {row['median_ms']}")
    return doc


def read_bench_file(path: str | os.PathLike) -> dict:
    """Read and validate a ``bbe-bench/1`` file exported by the demo apps or the command-line benches."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"results file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an int past Python's digit limit
        raise BenchError(f"{path}: not a valid {BENCH_FORMAT} results file: invalid JSON ({exc})") from None
    return validate_bench_doc(doc, str(path))


def parse_bench_stdout(text: str, source: str) -> dict:
    """The JSON object a command-line bench printed on stdout."""
    start = text.find("{")
    if start < 0:
        raise BenchError(f"{source}: printed no JSON")
    try:
        doc = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise BenchError(f"{source}: printed invalid JSON ({exc})") from None
    return validate_bench_doc(doc, source)


def paper_verdict(ms: float) -> str:
    lo, hi = PAPER_GROUPER_MS
    return "below 1 ms" if ms < lo else ("within 1-2 ms" if ms <= hi else "above 2 ms")
