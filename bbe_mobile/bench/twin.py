"""The model against its semantic-only twin (``build_bbe(box_head=False)``, the same weights where shared):
the twin exported to TFLite fp32 and int8 by the export library's route, then both timed in alternated runs at
the same threads; the latency ratio BBE / twin is the paper's "virtually as efficient" claim measured."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from bbe_mobile.bench.formats import calibration_dir
from bbe_mobile.bench.options import BenchError, BenchOptions
from bbe_mobile.bench.timing import Progress, summarize, time_interleaved
from bbe_mobile.utils.atomic import atomic_path

TWIN_PRECISIONS = ("fp32", "int8")  # BBE vs semantic-only twin, TFLite


def twin_model(bundle):
    """The semantic-only twin: the same config without the box head, weights copied by layer name."""
    from bbe_mobile.modeling.bundle import build_from_config  # noqa: PLC0415

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

    from bbe_mobile.export import tflite  # noqa: PLC0415
    from bbe_mobile.export.images import calibration_canvases  # noqa: PLC0415

    @tf.function(input_signature=[tf.TensorSpec([1, input_size, input_size, 3], tf.float32, name="image")])
    def serve(image):
        return [tf.sigmoid(twin(image, training=False))]

    if precision not in ("fp32", "int8"):
        raise BenchError(f"twin precision {precision!r} not supported")
    canvases = None
    if precision == "int8":
        if not calibration:
            raise BenchError("the int8 twin needs calibration images (--calibration-images)")
        canvases = calibration_canvases(calibration, input_size, num_calibration)
    data = tflite.tflite_from_function(serve.get_concrete_function(), precision, canvases)
    tflite.check_tflite_weights(data, twin, precision, BenchError)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


class RawTFLite:
    """A bare LiteRT call for A/B timing: the prepared input set, invoke, every output read (no checks), so BBE
    and the twin pay exactly the same overhead."""

    def __init__(self, path, num_threads: int, canvas: np.ndarray):
        from bbe_mobile.export.runtime import new_litert_interpreter, quantize_input  # noqa: PLC0415

        self.interpreter = new_litert_interpreter(model_path=str(path), num_threads=num_threads)
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
