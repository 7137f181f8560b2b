"""Cures for the full-int8 TFLite accuracy drop, each measured by the accuracy gate (mask AP drop against Keras
on the held-out labelled images, bootstrap spread), the map-level verification figures and LiteRT latency.

    nice -n 5 python benchmarks/int8_cures.py [--model BUNDLE] [--num-accuracy 100] [--num-verify 20]
        [--calibration train:100] [--more-calibration train:254,extra:200] [--float-layers 5,10,20]
        [--layer-images 8] [--runs 20] [--warmup 3] [--json cures.json]

Variants (rows):
- ``full``: full int8 exactly as ``convert --precision int8`` makes it (measured ranges, ``--calibration``).
- ``float-worst-K`` (for each K of ``--float-layers``): the K quantised layers with the largest single-layer
  error stay in float (TFLite's ``QuantizationDebugger`` on the numeric-verify model, RMSE in units of the
  layer's output step, ranked on ``--layer-images`` *calibration* images so the AP images stay unseen), the
  rest int8 (``mlir_quantize(denylisted_nodes=...)``).
- ``more-calibration``: full int8 calibrated on ``--more-calibration`` (``train`` = coco-person-mini/train,
  ``extra`` = coco-person-extra/images: 310 crowded val2017 images, none in the dev sets; neither holds an AP
  image).
- ``float-all-conv`` is not here: ``benchmarks/int8_layer_error.py`` measures op-type denylists.

Latency: LiteRT, 2 threads, every variant and the fp32 artifact timed interleaved on one letterboxed val image;
median and half the interquartile range.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BBE_SHARED", ROOT.parent / "shared")) / "data"
CALIBRATION_DIRS = {"train": SHARED_DATA / "coco-person-mini" / "train",
                    "extra": SHARED_DATA / "coco-person-extra" / "images"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="Bundle directory (default: the bundled model).")
    p.add_argument("--calibration", default="train:100", help="Calibration of the base model: SOURCE:N[,...] "
                   f"with SOURCE in {', '.join(CALIBRATION_DIRS)} (first N by file name).")
    p.add_argument("--more-calibration", default="train:254,extra:200", help="Calibration of the "
                   "more-calibration row (empty: no such row).")
    p.add_argument("--float-layers", default="5,10,20", help="Comma list of K: worst layers kept in float.")
    p.add_argument("--layer-images", type=int, default=8, help="Calibration images ranking the layers.")
    p.add_argument("--num-verify", type=int, default=20)
    p.add_argument("--num-accuracy", type=int, default=100)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", default="out/int8-cures", help="Directory of the variants' .tflite files.")
    p.add_argument("--json", dest="json_path", default=None)
    return p.parse_args(argv)


def calibration_canvases(spec: str, input_size: int):
    """Letterboxed calibration images of ``spec`` (``SOURCE:N[,SOURCE:N]``)."""
    from bbe_mobile.export.images import calibration_canvases as canvases_of  # noqa: PLC0415

    out = []
    for item in filter(None, spec.split(",")):
        source, _, count = item.partition(":")
        if source not in CALIBRATION_DIRS or not count.isdigit():
            raise SystemExit(f"error: bad calibration {item!r}: SOURCE:N with SOURCE in {', '.join(CALIBRATION_DIRS)}")
        out += canvases_of(CALIBRATION_DIRS[source], input_size, int(count))
    return out


def float_ops(data: bytes) -> int:
    """Operators of a TFLite flatbuffer that compute in float (a float32 output), DEQUANTIZE not counted."""
    from bbe_mobile.export.tflite_metadata import tflite_schema  # noqa: PLC0415

    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    graph = model.subgraphs[0]
    dequantize = schema.BuiltinOperator.DEQUANTIZE
    return sum(1 for op in graph.operators
               if graph.tensors[op.outputs[0]].type == schema.TensorType.FLOAT32
               and max(model.operatorCodes[op.opcodeIndex].builtinCode,
                       model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) != dequantize)


def main(argv=None) -> int:
    args = parse_args(argv)
    import tensorflow as tf  # noqa: PLC0415

    from int8_layer_error import calibrated_model_of  # noqa: PLC0415

    from bbe_mobile.bench.timing import time_interleaved, timing_canvas  # noqa: PLC0415
    from bbe_mobile.export.accuracy import accuracy_set  # noqa: PLC0415
    from bbe_mobile.export.calibration import quantize_calibrated, worst_layers  # noqa: PLC0415
    from bbe_mobile.export.images import DEFAULT_VERIFY_DIR  # noqa: PLC0415
    from bbe_mobile.export.runtime import KerasRunner, TFLiteRunner  # noqa: PLC0415
    from bbe_mobile.export.tflite import tflite_from_function, tflite_with_metadata  # noqa: PLC0415
    from bbe_mobile.export.serving import serving_function  # noqa: PLC0415
    from bbe_mobile.export.verify import select_images, verify_runners  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415

    bundle = load_bundle(args.model)
    files = select_images(str(DEFAULT_VERIFY_DIR), args.num_verify)
    images = accuracy_set(str(DEFAULT_VERIFY_DIR), args.num_accuracy)
    if images is None:
        raise SystemExit("error: no labelled held-out images (COCO json beside the val images)")
    reference = KerasRunner(bundle)
    cache: dict = {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    base_canvases = calibration_canvases(args.calibration, bundle.input_size)
    calibrated = calibrated_model_of(bundle, base_canvases)
    variants = {"full": quantize_calibrated(calibrated, tf.float32)}
    ks = [int(k) for k in args.float_layers.split(",") if k.strip()]
    if ks:
        ranked = worst_layers(calibrated, base_canvases[: args.layer_images], max(ks))
        print("worst layers (single-layer error, worst first): " + ", ".join(ranked), file=sys.stderr, flush=True)
        for k in ks:
            variants[f"float-worst-{k}"] = quantize_calibrated(calibrated, tf.float32, denylisted_nodes=ranked[:k])
    if args.more_calibration:
        more = calibration_canvases(args.more_calibration, bundle.input_size)
        variants[f"more-calibration ({len(more)} images)"] = quantize_calibrated(calibrated_model_of(bundle, more),
                                                                                  tf.float32)
        del more
    cf = serving_function(bundle.model, bundle.input_size, 1).get_concrete_function()
    fp32_path = out / "fp32.tflite"
    fp32_path.write_bytes(tflite_with_metadata(bundle, tflite_from_function(cf, "fp32"), "fp32"))

    rows = []
    for name, data in variants.items():
        path = out / (name.split(" ")[0] + ".tflite")
        path.write_bytes(tflite_with_metadata(bundle, data, "int8"))
        report = verify_runners(TFLiteRunner(path), reference, files, "int8", "tflite", str(path), bundle.name,
                                images, cache)
        rows.append({"variant": name, "path": str(path), "size_mb": len(data) / 1e6, "float_ops": float_ops(data),
                     "report": report})
        ap = report["accuracy"]
        print(f"  {name}: AP drop {ap['ap_drop']:.4f} ± {ap['ap_drop_std']:.4f}; {report['status']} "
              f"{report['message']}", file=sys.stderr, flush=True)

    canvas = timing_canvas(bundle.input_size, str(DEFAULT_VERIFY_DIR))
    paths = {"fp32": str(fp32_path)} | {r["variant"]: r["path"] for r in rows}
    runners = {key: TFLiteRunner(p, num_threads=2) for key, p in paths.items()}
    times = time_interleaved({k: functools.partial(r.run, canvas) for k, r in runners.items()}, args.runs,
                             args.warmup)
    print_table(rows, times, args)
    if args.json_path:
        for row in rows:
            row["report"]["metrics"].pop("images", None)
        Path(args.json_path).write_text(json.dumps({"rows": rows, "latency_ms": times}, indent=1, default=str))
    return 0


def _latency(samples: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return f"{median:.1f} ± {(q3 - q1) / 2:.1f}"


def print_table(rows, times, args) -> None:
    limit = rows[0]["report"]["accuracy"]["limit"] if rows else 0.01
    print(f"mask AP on {args.num_accuracy} held-out labelled images (drop = Keras - artifact, bootstrap std, 5-95 %); "
          f"map-level figures on {args.num_verify} verification images; LiteRT 2 threads, median ± IQR/2 of "
          f"{args.runs} interleaved runs")
    print("| variant | float ops | size MB | offsets mean abs | mask IoU | inst IoU | Keras AP | artifact AP | AP drop ± std "
          "(5-95 %) | misses the 0.01 gate by | map-level verify | 2 thr ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| tflite fp32 (for the latency) | all | | | | | | | | | | {_latency(times['fp32'])} |")
    for r in rows:
        m, ap = r["report"]["metrics"], r["report"]["accuracy"]
        miss = ap["ap_drop"] - limit
        inst = "-" if m["instance_iou"] is None else f"{m['instance_iou']:.4f}"
        print(f"| {r['variant']} | {r['float_ops']} | {r['size_mb']:.3f} | {m['offsets_mean_abs']:.4f} | {m['mask_iou']:.4f} | {inst} | "
              f"{ap['ap_reference']:.3f} | {ap['ap_artifact']:.3f} | {ap['ap_drop']:.3f} ± {ap['ap_drop_std']:.3f} "
              f"({ap['ap_drop_p05']:.3f} to {ap['ap_drop_p95']:.3f}) | {'passes' if miss <= 0 else f'{miss:.2g}'} | "
              f"{'pass' if r['report']['status'] == 'passed' else 'FAILED'} | {_latency(times[r['variant']])} |")


if __name__ == "__main__":
    sys.exit(main())
