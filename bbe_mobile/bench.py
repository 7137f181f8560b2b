"""``bbe-mobile bench``: one table for speed, size and accuracy, per exported format and per grouper, against the
paper's target (grouping in 1-2 ms on an iPhone 7; "virtually as efficient as categorical semantic
segmentation").

What is measured (always on this host, one process):

- per format/precision (``FORMATS``): file size, model latency median/p90/IQR with 1 and with all threads
  (LiteRT / onnxruntime ``num_threads``; Keras runs with TensorFlow's default threads; Core ML cannot run on
  Linux: size only), the verification figures of ``bbe_mobile.verify`` against the Keras model, and the
  person mask AP on a COCO-format eval set when one is given. Artifacts are converted with the export library
  into a cache directory under ``--out`` keyed by a hash of the model bundle and the calibration set, and reused
  from there.
- the model against its semantic-only twin (``build_bbe(box_head=False)``, the same weights where shared):
  TFLite fp32 and int8, the same threads, runs alternated A/B; the latency ratio BBE / twin.
- the grouper in NumPy, Swift (``swift build -c release`` in ios_demo) and Kotlin (android_demo/grouper/bench.sh)
  on the golden ``bench_*`` cases, each where its toolchain exists; the grouper's share of the model latency.
- peers from ``../shared/peers`` (MediaPipe selfie 256x256, DeepLabv3-MobileNetV2 513 uint8) at their input size.

Device profiles (``bbe_mobile/profiles/*.json``) turn host numbers into a clearly labelled *estimate* for a
phone (single-core Geekbench ratio, see the profile files for sources and limits); ``--from-device`` adds real
phone measurements in the ``bbe-bench/1`` format (docs/bench-format.md) beside the host numbers and estimates
and compares them with the paper's 1-2 ms.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.atomic import atomic_path, write_json, write_text
from bbe_mobile.bench_grouper import summarize, time_numpy_grouper
from bbe_mobile.paths import REPO_ROOT, SHARED

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
IOS_DIR = REPO_ROOT / "ios_demo"
KOTLIN_BENCH = REPO_ROOT / "android_demo" / "grouper" / "bench.sh"
BENCH_FORMAT = "bbe-bench/1"
RESULT_KINDS = ("grouper", "model", "preprocess", "upsample", "total")
PAPER_GROUPER_MS = (1.0, 2.0)  # the paper: grouping takes 1-2 ms on an iPhone 7
PAPER_NOTE = "paper: grouping 1-2 ms on an iPhone 7"
PROFILE_KINDS = ("host", "phone")
# keys a phone profile must have (estimates and the Markdown report read them)
PHONE_PROFILE_KEYS = ("method", "method_short", "limits", "single_core.score", "single_core.benchmark",
                      "single_core.source", "host_reference.score", "host_reference.how")
PROFILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # used in output file names: no path, no leading dot

# format name -> (export target, precision); "keras" is the bundle itself
FORMATS = {
    "keras": (None, None),
    "tflite-fp32": ("tflite", "fp32"),
    "tflite-fp16": ("tflite", "fp16"),
    "tflite-dynamic-int8": ("tflite", "dynamic-int8"),
    "tflite-int8": ("tflite", "int8"),
    "onnx-fp32": ("onnx", "fp32"),
    "coreml-fp16": ("coreml", "fp16"),
    "coreml-fp32": ("coreml", "fp32"),
    "coreml-int8": ("coreml", "int8"),
    "coreml-palette6": ("coreml", "palette6"),
    "coreml-palette4": ("coreml", "palette4"),
}
DEFAULT_FORMATS = "keras,tflite-fp32,tflite-int8,onnx-fp32,coreml-fp16"
TWIN_PRECISIONS = ("fp32", "int8")  # BBE vs semantic-only twin, TFLite


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
    verify_images: str | None = None
    calibration_images: str | None = None
    num_calibration: int = 100
    twin: bool = True
    peers: bool = True
    grouper_sources: tuple[str, ...] = ("numpy", "swift", "kotlin")
    progress: bool = True


# ------------------------------------------------------------------------------------------------ parsing

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


# ------------------------------------------------------------------------------------------------ profiles

def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def _profile_value(profile: dict, key: str):
    """``profile[a][b]`` for ``key`` "a.b"; KeyError if any level is missing or not an object."""
    value = profile
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def load_profile(name: str) -> dict:
    """A device profile by name (``bbe_mobile/profiles/NAME.json``) or a path to a profile JSON, checked for every
    key the report reads."""
    path = Path(name) if name.endswith(".json") else PROFILES_DIR / f"{name}.json"
    if not path.is_file():
        raise BenchError(f"unknown device {name!r}: choose from {', '.join(profile_names())} (or a profile .json)")
    try:
        profile = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"bad device profile {path}: {exc}") from None
    if not isinstance(profile, dict):
        raise BenchError(f"bad device profile {path}: the top level must be a JSON object")
    profile.setdefault("name", path.stem)
    if not isinstance(profile["name"], str) or not PROFILE_NAME.fullmatch(profile["name"]):
        raise BenchError(f"bad device profile {path}: 'name' {profile['name']!r} must be letters, digits, '_', '.' "
                         "or '-' and not start with '.' (it names the output files)")
    if profile.get("kind") not in PROFILE_KINDS:
        raise BenchError(f"bad device profile {path}: 'kind' is {profile.get('kind')!r}, expected one of "
                         f"{', '.join(PROFILE_KINDS)}")
    if profile["kind"] == "phone":
        for key in PHONE_PROFILE_KEYS:
            try:
                _profile_value(profile, key)
            except KeyError:
                raise BenchError(f"bad device profile {path}: a phone profile needs {key!r}") from None
        try:
            scores = [float(_profile_value(profile, key)) for key in ("single_core.score", "host_reference.score")]
        except (TypeError, ValueError, OverflowError):
            raise BenchError(f"bad device profile {path}: single_core.score and host_reference.score must be "
                             "numbers") from None
        if not all(math.isfinite(s) and s > 0 for s in scores):
            raise BenchError(f"bad device profile {path}: scores must be positive")
    return profile


def speed_factor(profile: dict) -> float | None:
    """Phone ms = host ms x factor (host single-core score / phone single-core score); None for the host."""
    if profile.get("kind") != "phone":
        return None
    return float(profile["host_reference"]["score"]) / float(profile["single_core"]["score"])


# ------------------------------------------------------------------------------------------------ bbe-bench/1

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


# ------------------------------------------------------------------------------------------------ progress

class Progress:
    """One tqdm bar over every step (conversions, verifications, timed runs); its total grows as phases start."""

    def __init__(self, enabled: bool, log=print):
        from tqdm import tqdm  # noqa: PLC0415

        self.log = log
        self.bar = tqdm(total=0, disable=not enabled, unit="step", desc="bench", dynamic_ncols=True, leave=False,
                        file=sys.stderr)

    def add(self, n: int, phase: str | None = None) -> None:
        self.bar.total += n
        if phase:
            self.bar.set_description(phase)
        self.bar.refresh()

    def step(self, n: int = 1) -> None:
        self.bar.update(n)

    def write(self, message: str) -> None:
        """A log line that does not break the bar."""
        if self.bar.disable:
            self.log(message)
        else:
            with self.bar.external_write_mode(file=sys.stderr):
                self.log(message)

    def close(self) -> None:
        self.bar.close()


def time_interleaved(fns: dict, runs: int, warmup: int, progress: Progress | None = None) -> dict:
    """{key: [ms, ...]}: ``warmup`` untimed calls of each, then run r of every function before run r+1 of any
    (A/B/A/B...), so drifting machine load hits every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {key: [] for key in fns}
    for _ in range(runs):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(1000 * (time.perf_counter() - start))
        if progress:
            progress.step(len(fns))
    return times


# ------------------------------------------------------------------------------------------------ artifacts

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
    from bbe_mobile.bundle import DEFAULT_MODEL, MODEL_FILE  # noqa: PLC0415

    root = Path(model) if model else DEFAULT_MODEL
    return root / MODEL_FILE if root.is_dir() else root


def calibration_dir(options: BenchOptions) -> str | None:
    """``--calibration-images``, else the default train images when present (None: no full-int8)."""
    from bbe_mobile.export import DEFAULT_CALIBRATION_DIR  # noqa: PLC0415

    if options.calibration_images:
        return options.calibration_images
    return str(DEFAULT_CALIBRATION_DIR) if DEFAULT_CALIBRATION_DIR.is_dir() else None


def cache_dir(out: Path, bundle, model_file: Path, options: BenchOptions) -> Path:
    """Artifacts are reused only for the same bundle files (model.keras and bbe.json: their metadata comes from
    both), input size and calibration set (directory and number of its images used)."""
    from bbe_mobile.bundle import CONFIG_FILE  # noqa: PLC0415
    from bbe_mobile.export import image_files  # noqa: PLC0415

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
            "count_mismatch_rate": m.get("count_mismatch_rate")}


def prepare_formats(bundle, formats, cache: Path, options: BenchOptions, progress: Progress, log) -> list[dict]:
    """Convert (or reuse from ``cache``) every format, verify it (cached as NAME.verify.json). One row each."""
    from bbe_mobile import export, verify  # noqa: PLC0415

    rows = []
    exports = [f for f in formats if FORMATS[f][0]]
    progress.add(2 * len(exports), "convert + verify")
    ex_options = export.ExportOptions(calibration_images=calibration_dir(options),
                                      num_calibration=options.num_calibration)
    verify_dir = options.verify_images or str(export.DEFAULT_VERIFY_DIR)
    files = None
    if options.num_verify > 0:
        try:
            files = verify.select_images(verify_dir, options.num_verify, flag="--verify-images")
        except ValueError as exc:
            log(f"note: verification skipped: {exc}")
    for name in formats:
        target, precision = FORMATS[name]
        if target is None:
            path = model_path(options.model)
            rows.append({"format": name, "target": "keras", "precision": "fp32", "path": str(path),
                         "size_mb": _size_bytes(path) / 1e6, "convert_s": None, "status": "ok", "verify": None,
                         "note": "reference (tf.function graph, TensorFlow default threads)"})
            continue
        path = cache / export.artifact_name(bundle.name, target, precision, ex_options)
        row = {"format": name, "target": target, "precision": precision, "path": str(path), "size_mb": None,
               "convert_s": None, "status": "ok", "verify": None, "note": ""}
        if path.exists():
            row["note"] = "cached"
        else:
            progress.bar.set_description(f"convert {name}")
            outcome = export.convert(bundle, [target], {target: [precision]}, cache, ex_options, verify=False,
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
            if report and (report.get("metrics") or {}).get("n_images") != len(files or []):
                report = None
        if report is None and files:
            progress.bar.set_description(f"verify {name}")
            try:
                report = verify.verify_runner_path(path, bundle, files, precision=precision)
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


# ------------------------------------------------------------------------------------------------ twin

def twin_model(bundle):
    """The semantic-only twin: the same config without the box head, weights copied by layer name."""
    from bbe_mobile.bundle import build_from_config  # noqa: PLC0415

    config = dataclasses.replace(bundle.config, box_head=False)
    twin = build_from_config(config, bundle.input_size)
    copied = 0
    for layer in twin.layers:
        if layer.weights:
            layer.set_weights(bundle.model.get_layer(layer.name).get_weights())
            copied += 1
    if not copied:
        raise BenchError("the semantic-only twin shares no weights with the model")
    return twin


def export_twin_tflite(twin, input_size: int, precision: str, path: Path, calibration: str | None,
                       num_calibration: int) -> Path:
    """The twin as TFLite by the export library's route (concrete function, no trackable; sigmoid inside)."""
    import tensorflow as tf  # noqa: PLC0415

    from bbe_mobile import export  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([1, input_size, input_size, 3], tf.float32, name="image")])
    def serve(image):
        return [tf.sigmoid(twin(image, training=False))]

    if precision not in ("fp32", "int8"):
        raise BenchError(f"twin precision {precision!r} not supported")
    canvases = None
    if precision == "int8":
        if not calibration:
            raise BenchError("the int8 twin needs calibration images (--calibration-images)")
        canvases = export.calibration_canvases(calibration, input_size, num_calibration)
    data = export.tflite_from_function(serve.get_concrete_function(), precision, canvases)
    export.check_tflite_weights(data, twin, precision, BenchError)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


class RawTFLite:
    """A bare LiteRT call for A/B timing: the prepared input set, invoke, every output read (no checks), so BBE
    and the twin pay exactly the same overhead."""

    def __init__(self, path, num_threads: int, canvas: np.ndarray):
        from bbe_mobile.runtime import litert_interpreter_class, quantize_input  # noqa: PLC0415

        self.interpreter = litert_interpreter_class()(model_path=str(path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        detail = self.interpreter.get_input_details()[0]
        self.x = quantize_input(canvas[None].astype(np.float32), detail)
        self.index = detail["index"]
        self.outputs = [d["index"] for d in self.interpreter.get_output_details()]

    def __call__(self):
        self.interpreter.set_tensor(self.index, self.x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.outputs]


def bench_twin(bundle, rows: list[dict], cache: Path, canvas: np.ndarray, options: BenchOptions,
               progress: Progress, log) -> list[dict]:
    """BBE vs semantic-only twin, TFLite fp32 and int8, each thread count, alternated runs."""
    by_precision = {r["precision"]: r for r in rows if r["target"] == "tflite" and r["status"] == "ok"}
    wanted = [p for p in TWIN_PRECISIONS if p in by_precision]
    missing = [p for p in TWIN_PRECISIONS if p not in by_precision]
    if missing:
        log(f"note: BBE/semantic-only ratio not measured for TFLite {', '.join(missing)} "
            f"(add tflite-{missing[0]} to --formats)")
    if not wanted:
        return []
    calibration = calibration_dir(options)
    progress.add(len(wanted), "convert twin")
    twin = None
    out = []
    for precision in wanted:
        path = cache / f"{bundle.name}_semantic_{precision}.tflite"
        if not path.exists():
            progress.bar.set_description(f"convert twin {precision}")
            twin = twin if twin is not None else twin_model(bundle)
            start = time.perf_counter()
            try:
                export_twin_tflite(twin, bundle.input_size, precision, path, calibration, options.num_calibration)
            except Exception as exc:  # noqa: BLE001 - report, go on
                log(f"note: twin TFLite {precision} conversion failed: {type(exc).__name__}: {str(exc)[:150]}")
                progress.step()
                continue
            progress.write(f"converted the semantic-only twin ({precision}) in {time.perf_counter() - start:.1f} s")
        progress.step()
        for n in options.threads:
            out.append({"precision": precision, "threads": n, "bbe_path": by_precision[precision]["path"],
                        "twin_path": str(path), "twin_size_mb": path.stat().st_size / 1e6,
                        "bbe_size_mb": by_precision[precision]["size_mb"]})
    progress.add(len(out) * 2 * options.runs, "time BBE vs twin")
    for row in out:
        progress.bar.set_description(f"BBE vs twin {row['precision']} {row['threads']}t")
        fns = {"bbe": RawTFLite(row["bbe_path"], row["threads"], canvas),
               "twin": RawTFLite(row["twin_path"], row["threads"], canvas)}
        times = time_interleaved(fns, options.runs, options.warmup, progress)
        row["bbe"], row["twin"] = summarize(times["bbe"]), summarize(times["twin"])
        row["ratio"] = row["bbe"]["median_ms"] / row["twin"]["median_ms"]
        # spread of the ratio: IQR of the per-pair ratios (paired because the runs alternate)
        pair = np.asarray(times["bbe"]) / np.asarray(times["twin"])
        row["ratio_iqr"] = float(np.subtract(*np.percentile(pair, [75, 25])))
    return out


# ------------------------------------------------------------------------------------------------ grouper

def _skipped(source: str, note: str) -> dict:
    return {"source": source, "status": "skipped", "note": note, "results": []}


def numpy_grouper(runs: int, warmup: int) -> dict:
    doc = time_numpy_grouper(runs=runs, warmup=warmup)
    return {"source": "numpy", "status": "ok", "note": "Python + NumPy (per-call interpreter overhead included)",
            "results": doc["results"]}


def swift_grouper(runs: int, warmup: int, timeout: float = 900) -> dict:
    """Build (``swift build -c release``, incremental) and run ``bbe-grouper-bench``; skipped without swift."""
    swift = shutil.which("swift")
    if not swift:
        return _skipped("swift", "swift not found on PATH: Swift grouper skipped")
    if not (IOS_DIR / "Package.swift").is_file():
        return _skipped("swift", f"{IOS_DIR}/Package.swift missing: Swift grouper skipped")
    build = subprocess.run([swift, "build", "-c", "release", "--product", "bbe-grouper-bench"], cwd=IOS_DIR,
                           capture_output=True, text=True, timeout=timeout)
    if build.returncode != 0:
        tail = (build.stderr or build.stdout).strip().splitlines()[-1:] or ["?"]
        return _skipped("swift", f"swift build failed: {tail[0][:200]}")
    binary = IOS_DIR / ".build" / "release" / "bbe-grouper-bench"
    run = subprocess.run([str(binary), "--runs", str(runs), "--warmup", str(warmup)], capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        return _skipped("swift", f"bbe-grouper-bench exited {run.returncode}: {run.stderr.strip()[-200:]}")
    doc = parse_bench_stdout(run.stdout, "bbe-grouper-bench")
    return {"source": "swift", "status": "ok", "note": "release build", "results": doc["results"]}


def kotlin_grouper(runs: int, warmup: int, timeout: float = 900) -> dict:
    """``android_demo/grouper/bench.sh`` (JVM, after JIT warm-up); skipped without java/kotlinc."""
    missing = [tool for tool in ("java", "kotlinc") if not shutil.which(tool)]
    if missing:
        return _skipped("kotlin", f"{' and '.join(missing)} not found on PATH: Kotlin grouper skipped "
                                  "(apt-get install -y default-jdk kotlin junit4)")
    run = subprocess.run(["bash", str(KOTLIN_BENCH), "--runs", str(runs), "--warmup", str(max(warmup, 50))],
                         capture_output=True, text=True, timeout=timeout)
    if run.returncode != 0:
        return _skipped("kotlin", f"bench.sh exited {run.returncode}: {run.stderr.strip()[-200:]}")
    doc = parse_bench_stdout(run.stdout, "android_demo/grouper/bench.sh")
    return {"source": "kotlin", "status": "ok", "note": "JVM (HotSpot) after JIT warm-up", "results": doc["results"]}


GROUPER_SOURCES = {"numpy": numpy_grouper, "swift": swift_grouper, "kotlin": kotlin_grouper}


def bench_groupers(options: BenchOptions, progress: Progress, log) -> list[dict]:
    progress.add(len(options.grouper_sources), "grouper")
    out = []
    for source in options.grouper_sources:
        progress.bar.set_description(f"grouper {source}")
        try:
            result = GROUPER_SOURCES[source](options.grouper_runs, options.grouper_warmup)
        except (subprocess.TimeoutExpired, OSError, ValueError, RuntimeError) as exc:
            result = _skipped(source, f"{source} grouper bench failed: {str(exc).splitlines()[0][:200]}")
        if result["status"] != "ok":
            log(f"note: {result['note']}")
        out.append(result)
        progress.step()
    return out


# ------------------------------------------------------------------------------------------------ model latency

def timing_canvas(size: int, verify_dir: str | None) -> np.ndarray:
    """A letterboxed real val image (a random canvas when none is available)."""
    from bbe_mobile.export import image_files  # noqa: PLC0415
    from bbe_mobile.letterbox import letterbox_image, read_image  # noqa: PLC0415

    try:
        return letterbox_image(read_image(str(image_files(verify_dir, 1)[0])), size)[0]
    except (ValueError, OSError, TypeError):
        return np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)


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
    from bbe_mobile.runtime import load_runner  # noqa: PLC0415

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


def bench_peers(options: BenchOptions, progress: Progress, log) -> list[dict]:
    """Peer segmenters from ../shared/peers at their input sizes, the same threads, interleaved."""
    from bbe_mobile.peers import shared_peers  # noqa: PLC0415

    if not (SHARED / "peers").is_dir():
        log(f"note: peers skipped: {SHARED / 'peers'} is absent")
        return []
    image = None
    try:
        from bbe_mobile.export import DEFAULT_VERIFY_DIR, image_files  # noqa: PLC0415
        from bbe_mobile.letterbox import read_image  # noqa: PLC0415

        image = read_image(str(image_files(options.verify_images or DEFAULT_VERIFY_DIR, 1)[0]))
    except (ValueError, OSError):
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    fns, info = {}, {}
    for n in options.threads:
        try:
            peers = shared_peers(SHARED, num_threads=n)
        except ValueError as exc:
            log(f"note: peers skipped: {exc}")
            return []
        for peer in peers:
            tensor = peer.prepare(image)
            fns[(peer.name, n)] = (lambda p=peer, t=tensor: p.forward(t))
            info[peer.name] = {"name": peer.name, "kind": peer.kind, "path": peer.path,
                               "input": f"{peer.input_hw[1]}x{peer.input_hw[0]}",
                               "dtype": np.dtype(peer.input["dtype"]).name,
                               "size_mb": Path(peer.path).stat().st_size / 1e6, "latency": {}}
    progress.add(len(fns) * options.runs, "peers")
    times = time_interleaved(fns, options.runs, options.warmup, progress)
    for (name, n), samples in times.items():
        info[name]["latency"][str(n)] = summarize(samples)
    return list(info.values())


def eval_formats(bundle, rows: list[dict], dataset, options: BenchOptions, progress: Progress) -> None:
    """Person mask AP (pycocotools, paper protocol of evaluate.py) of every format that ran (failed rows skipped)."""
    from bbe_mobile.evaluate import evaluate  # noqa: PLC0415
    from bbe_mobile.predictor import Predictor  # noqa: PLC0415
    from bbe_mobile.runtime import KerasRunner, load_runner  # noqa: PLC0415

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


# ------------------------------------------------------------------------------------------------ driver

def check_options(options: BenchOptions) -> None:
    """Every argument that can be checked without the model, so bad input fails before any work."""
    from bbe_mobile.export import ExportError, image_files  # noqa: PLC0415

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
    from bbe_mobile import export  # noqa: PLC0415
    from bbe_mobile.bundle import load_bundle  # noqa: PLC0415
    from bbe_mobile.data import CocoPersons  # noqa: PLC0415

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
        canvas = timing_canvas(bundle.input_size, options.verify_images or str(export.DEFAULT_VERIFY_DIR))
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


def reference_model(result: dict) -> dict | None:
    """The model latency the grouper is compared with: TFLite int8 (else fp32, else any) at the most threads."""
    rows = {r["format"]: r for r in result["formats"] if r.get("latency")}
    for fmt in ("tflite-int8", "tflite-fp32", "onnx-fp32", *rows):
        if fmt in rows:
            lat = rows[fmt]["latency"]
            key = max(lat, key=lambda k: int(k) if k.isdigit() else 0)
            return {"format": fmt, "threads": key, "median_ms": lat[key]["median_ms"]}
    return None


def grouper_share(result: dict) -> list[dict]:
    """Grouper time on the 129x129 cases (the map of a 513/516 input) as a share of the model latency."""
    ref = reference_model(result)
    if ref is None:
        return []
    out = []
    for g in result["groupers"]:
        for r in g["results"]:
            if r.get("height") == 129 and r.get("kind", "grouper") == "grouper":
                out.append({"source": g["source"], "case": r["name"], "people": r.get("people"),
                            "grouper_ms": r["median_ms"], "model_format": ref["format"],
                            "model_threads": ref["threads"], "model_ms": ref["median_ms"],
                            "share": r["median_ms"] / ref["median_ms"]})
    return out


def estimates(result: dict) -> dict | None:
    """Phone estimates: host single-thread ms x (host score / phone score). None for the host profile."""
    profile = result["profile"]
    factor = speed_factor(profile)
    if factor is None:
        return None
    models = []
    for row in result["formats"]:
        lat = row.get("latency", {}).get("1")
        if lat:
            models.append({"format": row["format"], "host_ms": lat["median_ms"], "estimate_ms": lat["median_ms"] * factor})
    preferred = profile.get("grouper_source", "numpy")
    order = [preferred] + [s for s in ("swift", "kotlin", "numpy") if s != preferred]
    groupers = []
    source = next((s for s in order if any(g["source"] == s and g["status"] == "ok" for g in result["groupers"])),
                  None)
    if source:
        rows = next(g for g in result["groupers"] if g["source"] == source)["results"]
        for r in rows:
            est = r["median_ms"] * factor
            groupers.append({"source": source, "case": r["name"], "host_ms": r["median_ms"], "estimate_ms": est,
                             "paper": paper_verdict(est)})
    return {"factor": factor, "label": f"ESTIMATE for {profile.get('label', profile['name'])} "
                                       f"(host single-thread x {factor:.2f}, {profile['method_short']})",
            "grouper_source": source, "models": models, "groupers": groupers}


# ------------------------------------------------------------------------------------------------ reporting

def _ms(stat: dict | None) -> str:
    if not stat:
        return "-"
    return f"{stat['median_ms']:.2f} / {stat['p90_ms']:.2f}" if stat["median_ms"] < 10 else \
        f"{stat['median_ms']:.1f} / {stat['p90_ms']:.1f}"


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_markdown(result: dict) -> str:
    """The whole report as Markdown (also what the CLI prints)."""
    m, s, prof = result["model"], result["settings"], result["profile"]
    threads = s["threads"]
    many = max(threads)
    est = result.get("estimates")
    lines = [f"# bbe-mobile bench: {m['name']} (input {m['input_size']}, maps {m['grid']}x{m['grid']})", ""]
    host = result["host"]
    lines.append(f"Model file: `{m['path']}`.")
    lines.append(f"Measured on this host: {host['cpu']}, {host['cores']} cores, {host['system']} {host['machine']}; "
                 f"{s['runs']} runs after {s['warmup']} warm-up (grouper {s['grouper_runs']}/{s['grouper_warmup']}), "
                 f"interleaved; median / p90 in ms; load average at the end {_f(host.get('load_1min_at_end'), 2)}.")
    lines.append(f"Reference: **{PAPER_NOTE}** (and the model \"virtually as efficient as categorical semantic "
                 "segmentation\").")
    if est:
        lines.append(f"Device profile `{prof['name']}`: **{est['label']}** - estimates, not measurements.")
    lines.append("")
    lines.append("## Model, per format")
    lines.append("")
    head = ["format", "size MB", "1 thread ms", f"{many} threads ms"]
    if est:
        head.append(f"{prof['name']} ESTIMATE ms")
    head += ["verify", "prob mean abs", "mask IoU", "inst IoU"]
    has_eval = any(r.get("eval") for r in result["formats"])
    if has_eval:
        head += ["mask AP", "AP50"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    est_by = {e["format"]: e for e in (est or {}).get("models", [])}
    for r in result["formats"]:
        lat = r.get("latency", {})
        if r["target"] == "coreml":
            one = many_cell = "n/a (macOS)"
        elif r["target"] == "keras":
            one, many_cell = "-", _ms(lat.get("tf")) + " (TF graph, default threads)"
        else:
            one, many_cell = _ms(lat.get("1")), _ms(lat.get(str(many)))
        if r["status"] != "ok":
            one = many_cell = "failed"
        v = r.get("verify") or {}
        cells = [r["format"], _f(r.get("size_mb")), one, many_cell]
        if est:
            e = est_by.get(r["format"])
            cells.append(f"~{e['estimate_ms']:.1f} (est.)" if e else "-")
        vstatus = v.get("status", "reference" if r["target"] == "keras" else "-")
        cells += [vstatus, _f(v.get("prob_mean_abs"), 4), _f(v.get("mask_iou")), _f(v.get("instance_iou"))]
        if has_eval:
            ev = r.get("eval") or {}
            cells += [_f(ev.get("mask_ap")), _f(ev.get("mask_ap50"))]
        lines.append("| " + " | ".join(cells) + " |")
    if 1 not in threads:
        lines.append("")
        lines.append("(no 1-thread runs: estimates need --threads including 1)")
    lines.append("")
    lines.append("## BBE vs semantic-only twin (TFLite, same backbone/decoder/weights, no box head; alternated runs)")
    lines.append("")
    if result["twin"]:
        lines += ["| precision | threads | BBE ms | semantic-only ms | ratio BBE/semantic | ratio IQR | BBE MB | "
                  "semantic MB |", "|---|---|---|---|---|---|---|---|"]
        for t in result["twin"]:
            lines.append(f"| {t['precision']} | {t['threads']} | {_ms(t['bbe'])} | {_ms(t['twin'])} | "
                         f"**{t['ratio']:.3f}** | {t['ratio_iqr']:.3f} | {t['bbe_size_mb']:.3f} | "
                         f"{t['twin_size_mb']:.3f} |")
    else:
        lines.append("not measured (needs tflite-fp32 / tflite-int8 in --formats)")
    lines.append("")
    lines.append(f"## Grouper (golden bench cases; {PAPER_NOTE})")
    lines.append("")
    sources = result["groupers"]
    ok = [g for g in sources if g["status"] == "ok"]
    cases = []
    for g in ok:
        for r in g["results"]:
            key = (r.get("height"), r.get("people"), r.get("name"))
            if key not in cases:
                cases.append(key)
    cases.sort(key=lambda k: (k[0] or 0, k[1] or 0))
    head = ["case", "map", "people"] + [f"{g['source']} ms" for g in ok]
    if est and est["groupers"]:
        head.append(f"{prof['name']} ESTIMATE ms ({est['grouper_source']})")
    head.append("paper (iPhone 7)")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    est_g = {e["case"]: e for e in (est or {}).get("groupers", [])}
    for h, people, name in cases:
        cells = [name, f"{h}x{h}" if h else "-", str(people if people is not None else "-")]
        for g in ok:
            r = next((r for r in g["results"] if r.get("name") == name), None)
            cells.append(_ms(r))
        if est and est["groupers"]:
            e = est_g.get(name)
            cells.append(f"~{e['estimate_ms']:.2f} (est., {e['paper']})" if e else "-")
        cells.append("1-2 ms")
        lines.append("| " + " | ".join(cells) + " |")
    for g in sources:
        lines.append(f"- {g['source']}: {g['note']}")
    if result["grouper_share"]:
        lines.append("")
        lines.append("Grouper share of model latency (129x129 maps, the output of a 513/516 input):")
        lines.append("")
        first = result["grouper_share"][0]
        lines.append(f"model: {first['model_format']} ({first['model_threads']} threads) {first['model_ms']:.1f} ms")
        lines.append("")
        by_source: dict[str, list[dict]] = {}
        for sh in result["grouper_share"]:
            by_source.setdefault(sh["source"], []).append(sh)
        for source, shares in by_source.items():
            lines.append(f"- {source}: " + ", ".join(
                f"{sh['people']} {'person' if sh['people'] == 1 else 'people'} {sh['grouper_ms']:.2f} ms = {100 * sh['share']:.1f} %" for sh in shares))
    if result["peers"]:
        lines.append("")
        lines.append("## Peers (../shared/peers, LiteRT, at their input size)")
        lines.append("")
        lines += ["| peer | input | dtype | size MB | 1 thread ms | " + f"{many} threads ms |", "|---|---|---|---|---|---|"]
        for p in result["peers"]:
            lines.append(f"| {p['name']} | {p['input']} | {p['dtype']} | {p['size_mb']:.3f} | "
                         f"{_ms(p['latency'].get('1'))} | {_ms(p['latency'].get(str(many)))} |")
    if result["from_device"]:
        lines.append("")
        lines.append("## Measured on device (--from-device; real measurements, shown beside the host numbers and "
                     "estimates above)")
        for doc in result["from_device"]:
            lines.append("")
            lines.append(f"`{doc['file']}`: source {doc.get('source', '?')}, device {doc.get('device', '?')}, "
                         f"{doc.get('runs', '?')} runs after {doc.get('warmup', '?')} warm-up")
            lines.append("")
            lines += ["| kind | name | precision | median ms | p90 ms | vs paper 1-2 ms (grouper) |",
                      "|---|---|---|---|---|---|"]
            for r in doc["results"]:
                verdict = paper_verdict(r["median_ms"]) if r["kind"] == "grouper" else "-"
                lines.append(f"| {r['kind']} | {r.get('name', '-')} | {r.get('precision', '-')} | "
                             f"{r['median_ms']:.3f} | {r['p90_ms']:.3f} | {verdict} |")
    if est:
        lines.append("")
        lines.append(f"## How the {prof['name']} estimate is made")
        lines.append("")
        lines.append(f"{prof['method']} Phone score: {prof['single_core']['score']} "
                     f"({prof['single_core']['benchmark']}, {prof['single_core']['source']}). Host reference score: "
                     f"{prof['host_reference']['score']} ({prof['host_reference']['how']}). Limits: {prof['limits']}")
    if result["notes"]:
        lines.append("")
        lines.append("Notes: " + "; ".join(result["notes"]))
    lines.append("")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in result.get("phase_seconds", {}).items())
    lines.append(f"Total bench time {result['seconds']:.0f} s" + (f" ({phases})." if phases else "."))
    return "\n".join(lines) + "\n"


def _chart_bars(result: dict) -> list[tuple[str, float, float, str]]:
    """(label, median, p90, kind) with kind measured / estimate / device / peer / grouper."""
    bars = []
    many = str(max(result["settings"]["threads"]))
    for r in result["formats"]:
        for key in dict.fromkeys(("1", many, "tf")):
            stat = r.get("latency", {}).get(key)
            if stat:
                label = "TF graph" if key == "tf" else f"{key}t"
                bars.append((f"{r['format']} {label}", stat["median_ms"], stat["p90_ms"], "model"))
    for t in result["twin"]:
        bars.append((f"semantic-only {t['precision']} {t['threads']}t", t["twin"]["median_ms"], t["twin"]["p90_ms"],
                     "twin"))
    for p in result["peers"]:
        for key, stat in p["latency"].items():
            bars.append((f"{p['name'][:34]} {key}t", stat["median_ms"], stat["p90_ms"], "peer"))
    for g in result["groupers"]:
        for r in g["results"]:
            if r.get("kind", "grouper") == "grouper":
                bars.append((f"grouper {g['source']} {r['name'].removeprefix('bench_')}", r["median_ms"], r["p90_ms"],
                             "grouper"))
    est = result.get("estimates")
    if est:
        for e in est["models"]:
            bars.append((f"EST {e['format']} 1t", e["estimate_ms"], e["estimate_ms"], "estimate"))
        for e in est["groupers"]:
            bars.append((f"EST grouper {e['source']} {e['case'].removeprefix('bench_')}", e["estimate_ms"],
                         e["estimate_ms"], "estimate"))
    for doc in result["from_device"]:
        for r in doc["results"]:
            bars.append((f"{doc.get('device', 'device')} {r['kind']} {r.get('name', '')}"[:40], r["median_ms"],
                         r["p90_ms"], "device"))
    return bars


COLORS = {"model": (52, 101, 164), "twin": (114, 159, 207), "peer": (117, 80, 123), "grouper": (78, 154, 6),
          "estimate": (245, 121, 0), "device": (204, 0, 0)}
LEGEND = {"model": "BBE model (host)", "twin": "semantic-only twin (host)", "peer": "peers (host)",
          "grouper": "grouper (host)", "estimate": "phone ESTIMATE", "device": "measured on device"}


def draw_chart(result: dict, path: str | os.PathLike) -> None:
    """Horizontal bars (log-scale ms; median bar, p90 whisker) with the paper's 1-2 ms grouper band; PIL only."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    bars = [b for b in _chart_bars(result) if b[1] > 0]
    font = ImageFont.load_default()
    row_h, left, right, top, bottom = 16, 300, 40, 60, 70
    width = 1100
    height = top + bottom + row_h * max(len(bars), 1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    lo = 10 ** math.floor(math.log10(min([b[1] for b in bars] + [0.5])))
    hi = 10 ** math.ceil(math.log10(max([b[2] for b in bars] + [PAPER_GROUPER_MS[1] * 2])))
    span = math.log10(hi) - math.log10(lo)

    def x(ms: float) -> float:
        return left + (width - left - right) * (math.log10(max(ms, lo)) - math.log10(lo)) / span

    plot_bottom = top + row_h * max(len(bars), 1)
    draw.rectangle([x(PAPER_GROUPER_MS[0]), top - 6, x(PAPER_GROUPER_MS[1]), plot_bottom], fill=(255, 236, 179))
    draw.text((x(PAPER_GROUPER_MS[0]) + 2, top - 20), "paper: grouper 1-2 ms (iPhone 7)", fill=(150, 100, 0), font=font)
    decade = lo
    while decade <= hi * 1.0001:
        gx = x(decade)
        draw.line([gx, top - 6, gx, plot_bottom], fill=(220, 220, 220))
        draw.text((gx - 12, plot_bottom + 4), f"{decade:g}", fill="black", font=font)
        decade *= 10
    draw.text((left, plot_bottom + 18), "milliseconds per run (log scale; bar = median, whisker = p90)", fill="black",
              font=font)
    m = result["model"]
    title = (f"bbe-mobile bench: {m['name']} input {m['input_size']} on {result['host']['cpu']} "
             f"({result['host']['cores']} cores)")
    if result.get("estimates"):
        title += f" + {result['profile']['name']} ESTIMATES"
    draw.text((10, 10), title, fill="black", font=font)
    for k, (label, median, p90, kind) in enumerate(bars):
        y = top + k * row_h
        draw.text((10, y + 2), label[:46], fill="black", font=font)
        draw.rectangle([left, y + 3, x(median), y + row_h - 3], fill=COLORS[kind])
        if p90 > median:
            draw.line([x(median), y + row_h // 2, x(p90), y + row_h // 2], fill="black")
            draw.line([x(p90), y + 4, x(p90), y + row_h - 4], fill="black")
        draw.text((x(max(p90, median)) + 4, y + 2), f"{median:.3g}", fill=(80, 80, 80), font=font)
    lx = 10
    for kind in dict.fromkeys(b[3] for b in bars):
        draw.rectangle([lx, height - 22, lx + 10, height - 12], fill=COLORS[kind])
        draw.text((lx + 14, height - 24), LEGEND[kind], fill="black", font=font)
        lx += 30 + int(draw.textlength(LEGEND[kind], font=font))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


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


__all__ = ["BenchError", "BenchOptions", "FORMATS", "DEFAULT_FORMATS", "run_bench", "write_outputs",
           "format_markdown", "read_bench_file", "validate_bench_doc", "load_profile", "profile_names",
           "parse_formats", "parse_threads", "draw_chart", "summarize"]
