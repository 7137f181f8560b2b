"""``bbe-mobile bench``: one table for speed, size and accuracy, per exported format and per grouper, against
the paper's target (grouping in 1-2 ms on an iPhone 7; "virtually as efficient as categorical semantic
segmentation"). This module checks the options, runs every part and writes the result files.

What is measured (always on this host, one process):

- per format/precision (``bench.formats``): file size, model latency median/p90/IQR with 1 and with all threads
  (LiteRT / onnxruntime ``num_threads``; Keras runs with TensorFlow's default threads; Core ML cannot run on
  Linux: size only), the verification figures of ``bbe_mobile.export.verify`` against the Keras model, and the
  person mask AP on a COCO-format eval set when one is given. Artifacts are converted with the export library
  into a cache directory under ``--out`` keyed by a hash of the model bundle and the calibration set, and reused
  from there.
- the model against its semantic-only twin (``bench.twin``): TFLite fp32 and int8, the same threads, runs
  alternated A/B; the latency ratio BBE / twin.
- the grouper in NumPy, Swift and Kotlin (``bench.groupers``) on the golden ``bench_*`` cases, each where its
  toolchain exists; the grouper's share of the model latency.
- peers from ``../shared/peers`` (``bench.peers``) at their input size.

Device profiles (``bench.device_profiles``) turn host numbers into a clearly labelled *estimate* for a phone;
``--from-device`` adds real phone measurements in the ``bbe-bench/1`` format (``bench.device_results``) beside
the host numbers and estimates and compares them with the paper's 1-2 ms."""
from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from bbe_mobile.bench.chart import draw_chart
from bbe_mobile.bench.device_profiles import load_profile
from bbe_mobile.bench.device_results import PAPER_GROUPER_MS, PAPER_NOTE, read_bench_file
from bbe_mobile.bench.estimates import estimates, grouper_share
from bbe_mobile.bench.formats import bench_formats, cache_dir, eval_formats, model_path, prepare_formats
from bbe_mobile.bench.groupers import GROUPER_SOURCES, bench_groupers
from bbe_mobile.bench.options import BenchError, BenchOptions
from bbe_mobile.bench.peers import bench_peers
from bbe_mobile.bench.report import format_markdown
from bbe_mobile.bench.timing import Progress, timing_canvas
from bbe_mobile.bench.twin import bench_twin
from bbe_mobile.utils.atomic import write_text


def check_options(options: BenchOptions) -> None:
    """Every argument that can be checked without the model, so bad input fails before any work."""
    from bbe_mobile.export.images import ExportError, image_files  # noqa: PLC0415

    if options.input_size is not None and (options.input_size <= 0 or options.input_size % 16):
        raise BenchError(f"--input-size must be a positive multiple of 16, got {options.input_size}")
    if options.runs < 1 or options.warmup < 0:
        raise BenchError("--runs must be >= 1 (and warm-up >= 0)")
    if options.grouper_runs < 1 or options.grouper_warmup < 1:
        raise BenchError(f"--grouper-runs and the grouper warm-up must be >= 1, got {options.grouper_runs} and "
                         f"{options.grouper_warmup}")
    if options.num_calibration < 1:
        raise BenchError(f"--num-calibration must be >= 1, got {options.num_calibration}")
    unknown = [s for s in options.grouper_sources if s not in GROUPER_SOURCES]
    if unknown:
        raise BenchError(f"unknown grouper source {unknown[0]!r}: choose from {', '.join(GROUPER_SOURCES)}")
    if bool(options.eval_images) != bool(options.eval_annotations):
        raise BenchError("--eval-images and --eval-annotations go together")
    for flag, directory in (("--verify-images", options.verify_images),
                            ("--calibration-images", options.calibration_images)):
        if directory:
            try:
                image_files(directory, 1)
            except ExportError as exc:
                raise BenchError(f"{flag}: {exc}") from None


def run_bench(options: BenchOptions, log=print) -> dict:
    """Run everything; returns the result document (also what ``write_outputs`` saves)."""
    from bbe_mobile.export.images import DEFAULT_VERIFY_DIR  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415
    from bbe_mobile.training.data import CocoPersons  # noqa: PLC0415

    profile = load_profile(options.device)
    devices = [read_bench_file(p) | {"file": str(p)} for p in options.from_device]  # fail early
    check_options(options)
    dataset = CocoPersons(options.eval_images, options.eval_annotations) if options.eval_images else None
    started = time.perf_counter()
    bundle = load_bundle(options.model, input_size=options.input_size)  # a missing model fails before the bar
    progress = Progress(options.progress, log)
    notes: list[str] = []

    def note(message: str) -> None:
        notes.append(message.removeprefix("note: "))
        progress.write(message)

    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        phases[name] = round(now - clock[0], 2)
        clock[0] = now

    try:
        phases["load"] = round(time.perf_counter() - started, 2)
        out = Path(options.out)
        cache = cache_dir(out, bundle, model_path(options.model), options)
        cache.mkdir(parents=True, exist_ok=True)
        rows = prepare_formats(bundle, options.formats, cache, options, progress, note)
        phase("convert_verify")
        canvas = timing_canvas(bundle.input_size, options.verify_images or str(DEFAULT_VERIFY_DIR))
        bench_formats(bundle, rows, canvas, options, progress, note)
        phase("model_latency")
        twin = bench_twin(bundle, rows, cache, canvas, options, progress, note) if options.twin else []
        phase("twin")
        groupers = bench_groupers(options, progress, note)
        phase("grouper")
        peers = bench_peers(options, progress, note) if options.peers else []
        phase("peers")
        if dataset is not None:
            eval_formats(bundle, rows, dataset, options, progress)
            phase("eval")
    finally:
        progress.close()
    result = {
        "format": "bbe-mobile-bench/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": bundle.name, "path": str(model_path(options.model)), "input_size": bundle.input_size,
                  "stride": bundle.stride, "grid": bundle.input_size // bundle.stride},
        "host": host_info(),
        "settings": {"threads": list(options.threads), "runs": options.runs, "warmup": options.warmup,
                     "grouper_runs": options.grouper_runs, "grouper_warmup": options.grouper_warmup,
                     "num_verify": options.num_verify, "num_calibration": options.num_calibration,
                     "cache": str(cache)},
        "paper": {"grouper_ms": list(PAPER_GROUPER_MS), "device": "iPhone 7", "note": PAPER_NOTE},
        "profile": profile,
        "formats": rows, "twin": twin, "groupers": groupers, "peers": peers,
        "from_device": devices, "notes": notes,
    }
    result["grouper_share"] = grouper_share(result)
    result["estimates"] = estimates(result)
    result["seconds"] = time.perf_counter() - started
    result["phase_seconds"] = phases
    return result


def host_info() -> dict:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine(), "system": platform.system(),
            "python": platform.python_version(), "load_1min_at_end": load}


def _plain(value):
    """``value`` with NumPy scalars and arrays as Python numbers and lists (for ``json.dumps``)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return value


def write_outputs(result: dict, out: str | os.PathLike) -> dict:
    """``bench_<device>.json``, ``.md`` and ``.png`` in ``out`` (each written atomically; nothing is written when
    the result has a non-finite figure). Returns the paths."""
    out = Path(out)
    stem = f"bench_{result['profile']['name']}"
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md", "png": out / f"{stem}.png"}
    try:
        text = json.dumps(_plain(result), indent=1, allow_nan=False)
    except ValueError as exc:
        raise BenchError(f"the bench result has a non-finite figure, nothing written: {exc}") from None
    markdown = format_markdown(result)
    write_text(paths["json"], text)
    write_text(paths["markdown"], markdown)
    draw_chart(result, paths["png"])
    return paths
