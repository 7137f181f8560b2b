"""The exported formats under test: each converted into a cache keyed by the bundle and calibration set (or
reused from it) and verified against the Keras model, then timed at every thread count and, given an eval set,
scored for mask AP."""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np

from bbe_mobile.bench.options import FORMATS, BenchOptions
from bbe_mobile.bench.timing import Progress, summarize, time_interleaved
from bbe_mobile.utils.atomic import write_json


def _files_hash(paths, *extra: str) -> str:
    """Short sha256 of the files' names and bytes, then of ``extra`` strings."""
    h = hashlib.sha256()
    for f in paths:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    for text in extra:
        h.update(b"\0" + text.encode())
    return h.hexdigest()[:12]


def model_path(model: str | None) -> Path:
    from bbe_mobile.modeling.bundle import DEFAULT_MODEL, MODEL_FILE  # noqa: PLC0415

    root = Path(model) if model else DEFAULT_MODEL
    return root / MODEL_FILE if root.is_dir() else root


def calibration_dir(options: BenchOptions) -> str | None:
    """``--calibration-images``, else the default train images when present (None: no full-int8)."""
    from bbe_mobile.export.images import DEFAULT_CALIBRATION_DIR  # noqa: PLC0415

    if options.calibration_images:
        return options.calibration_images
    return str(DEFAULT_CALIBRATION_DIR) if DEFAULT_CALIBRATION_DIR.is_dir() else None


def cache_dir(out: Path, bundle, model_file: Path, options: BenchOptions) -> Path:
    """Artifacts are reused only for the same bundle files (model.keras and bbe.json: their metadata comes from
    both), input size and calibration set (directory and number of its images used)."""
    from bbe_mobile.export.images import image_files  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import CONFIG_FILE  # noqa: PLC0415

    calibration, used = calibration_dir(options), 0
    if calibration:
        with contextlib.suppress(ValueError):
            used = len(image_files(calibration, options.num_calibration))
    digest = _files_hash([model_file, model_file.parent / CONFIG_FILE],
                         str(Path(calibration).resolve()) if calibration else "")
    return out / "cache" / f"{bundle.name}_{bundle.input_size}_{digest}_cal{used}"


def _size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _verify_summary(report: dict | None) -> dict | None:
    if not report:
        return None
    m = report.get("metrics") or {}
    return {"status": report.get("status"), "message": report.get("message", ""), "n_images": m.get("n_images"),
            "prob_mean_abs": m.get("prob_mean_abs"), "offsets_mean_abs": m.get("offsets_mean_abs"),
            "mask_iou": m.get("mask_iou"), "instance_iou": m.get("instance_iou"),
            "count_mismatch_rate": m.get("count_mismatch_rate"),
            **{k: (report.get("accuracy") or {}).get(k) for k in ("ap_reference", "ap_artifact", "ap_drop", "ap_drop_std")}}


def prepare_formats(bundle, formats, cache: Path, options: BenchOptions, progress: Progress, log) -> list[dict]:
    """Convert (or reuse from ``cache``) every format, verify it (cached as NAME.verify.json). One row each."""
    from bbe_mobile.export import convert, verify  # noqa: PLC0415
    from bbe_mobile.export.accuracy import accuracy_set  # noqa: PLC0415
    from bbe_mobile.export.images import DEFAULT_VERIFY_DIR  # noqa: PLC0415

    rows = []
    exports = [f for f in formats if FORMATS[f][0]]
    progress.add(2 * len(exports), "convert + verify")
    ex_options = convert.ExportOptions(calibration_images=calibration_dir(options),
                                       num_calibration=options.num_calibration)
    verify_dir = options.verify_images or str(DEFAULT_VERIFY_DIR)
    files, accuracy_images, accuracy_cache = None, None, {}
    if options.num_verify > 0:
        try:
            files = verify.select_images(verify_dir, options.num_verify, flag="--verify-images")
            accuracy_images = accuracy_set(verify_dir, options.num_accuracy)
        except ValueError as exc:
            log(f"note: verification skipped: {exc}")
    accuracy_count = len(accuracy_images.image_ids) if accuracy_images else None
    for name in formats:
        target, precision = FORMATS[name]
        if target is None:
            path = model_path(options.model)
            rows.append({"format": name, "target": "keras", "precision": "fp32", "path": str(path),
                         "size_mb": _size_bytes(path) / 1e6, "convert_s": None, "status": "ok", "verify": None,
                         "note": "reference (tf.function graph, TensorFlow default threads)"})
            continue
        path = cache / convert.artifact_name(bundle.name, target, precision, ex_options)
        row = {"format": name, "target": target, "precision": precision, "path": str(path), "size_mb": None,
               "convert_s": None, "status": "ok", "verify": None, "note": ""}
        if path.exists():
            row["note"] = "cached"
        else:
            progress.bar.set_description(f"convert {name}")
            outcome = convert.convert(bundle, [target], {target: [precision]}, cache, ex_options, verify=False,
                                      log=lambda m: None)[0]
            if outcome.status == "failed":
                row.update(status="failed", note=outcome.message)
                rows.append(row)
                progress.step(2)
                log(f"note: {name} conversion failed: {outcome.message}")
                continue
            row["convert_s"] = outcome.result.convert_seconds
        progress.step()
        row["size_mb"] = _size_bytes(path) / 1e6
        report_path = cache / (path.name + ".verify.json")
        report = None
        if report_path.is_file():
            with contextlib.suppress(json.JSONDecodeError, OSError):
                report = json.loads(report_path.read_text())
            if report and ((report.get("metrics") or {}).get("n_images") != len(files or [])
                           or (report.get("accuracy") or {}).get("images") != accuracy_count):
                report = None
        if report is None and files:
            progress.bar.set_description(f"verify {name}")
            try:
                report = verify.verify_runner_path(path, bundle, files, precision=precision,
                                                   accuracy_images=accuracy_images, cache=accuracy_cache)
            except Exception as exc:  # noqa: BLE001 - a verification that cannot run is reported, not fatal
                log(f"note: {name} verification could not run: {type(exc).__name__}: {str(exc)[:150]}")
            if report is not None:
                if report.get("metrics"):
                    report["metrics"].pop("images", None)
                write_json(report_path, report, indent=1, default=str)
        progress.step()
        row["verify"] = _verify_summary(report)
        if target == "coreml":
            row["note"] = (row["note"] + "; " if row["note"] else "") + "latency n/a (macOS)"
        rows.append(row)
    return rows


def _keras_graph_call(bundle, canvas: np.ndarray):
    """The Keras model as a traced ``tf.function`` (graph mode): eager calls would time Python dispatch of every
    layer (hundreds of ms), not the network."""
    import tensorflow as tf  # noqa: PLC0415

    graph = tf.function(lambda x: bundle.model(x, training=False))
    x = tf.constant(canvas[None].astype(np.float32))

    def call():
        return [np.asarray(t) for t in graph(x)]

    call()  # trace now: tracing is not a forward pass, even with --warmup 0
    return call


def bench_formats(bundle, rows: list[dict], canvas: np.ndarray, options: BenchOptions, progress: Progress, log):
    """Latency of every runnable format at each thread count, all (format, threads) pairs interleaved."""
    from bbe_mobile.export.runtime import load_runner  # noqa: PLC0415

    runners = {}
    for row in rows:
        row["latency"] = {}
        if row["status"] != "ok" or row["target"] == "coreml":
            continue
        if row["target"] == "keras":
            runners[(row["format"], "tf")] = _keras_graph_call(bundle, canvas)
            continue
        try:
            loaded = {n: load_runner(row["path"], num_threads=n) for n in options.threads}
        except ValueError as exc:
            row.update(status="failed", note=f"cannot run: {exc}")
            log(f"note: {row['format']} cannot run: {exc}")
            continue
        for n, runner in loaded.items():
            runners[(row["format"], n)] = (lambda r=runner: r.run(canvas))
    progress.add(len(runners) * options.runs, "model latency")
    times = time_interleaved(runners, options.runs, options.warmup, progress)
    for row in rows:
        for (fmt, n), samples in times.items():
            if fmt == row["format"]:
                row["latency"][str(n)] = summarize(samples)


def eval_formats(bundle, rows: list[dict], dataset, options: BenchOptions, progress: Progress) -> None:
    """Person mask AP (pycocotools, paper protocol of evaluate.py) of every format that ran (failed rows skipped)."""
    from bbe_mobile.evaluate import evaluate  # noqa: PLC0415
    from bbe_mobile.export.runtime import KerasRunner, load_runner  # noqa: PLC0415
    from bbe_mobile.predictor import Predictor  # noqa: PLC0415

    ids = dataset.image_ids[: options.eval_limit] if options.eval_limit else dataset.image_ids
    runnable = [r for r in rows if r["status"] == "ok" and r["target"] != "coreml"]
    progress.add(len(runnable) * len(ids), "eval AP")
    for row in runnable:
        progress.bar.set_description(f"eval {row['format']}")
        runner = KerasRunner(bundle) if row["target"] == "keras" else load_runner(row["path"],
                                                                                  num_threads=max(options.threads))
        _, metrics = evaluate(Predictor(runner), dataset, ids, progress=False)
        progress.step(len(ids))
        row["eval"] = {"mask_ap": metrics["AP"], "mask_ap50": metrics["AP50"], "person_iou": metrics["person_iou"],
                       "images": metrics["images"]}
