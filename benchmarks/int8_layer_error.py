"""Where full-integer int8 TFLite loses against the float model: single-layer errors and end-to-end figures.

    nice -n 5 python benchmarks/int8_layer_error.py [--model BUNDLE] [--layer-images 8] [--num-verify 20]
        [--top 15] [--variants full,float:CONV_2D,float:DEPTHWISE_CONV_2D]

1. The model is calibrated exactly as ``convert --target tflite --precision int8`` does it (the first
   ``--num-calibration`` train images, measured ranges: ``bbe_mobile.export.calibration``).
2. Single-layer error: the int8 model is rebuilt with TFLite's numeric-verify instrumentation and run through
   ``QuantizationDebugger`` on the first ``--layer-images`` verification images. For each quantised op it compares
   the int8 output with the float op run on the same (dequantised) inputs, so each row is that layer's own error
   (weights, bias and output rounding), not the error it inherits. Printed: the ``--top`` layers by RMSE in
   units of their output step (``RMSE / scale``: 0.29 is the floor of output rounding alone), with the RMSE.
3. End to end: each ``--variants`` entry is quantised and verified against the Keras model on the
   ``--num-verify`` verification images (the figures of ``bbe-mobile verify``). ``full`` is the shipped
   full-integer model; ``float:OP[+OP]`` keeps every op of those TFLite types in float (a diagnostic: such a
   model is not full-integer), which tells how much of the gap those ops are responsible for.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BBE_SHARED", ROOT.parent / "shared")) / "data" / "coco-person-mini"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="Bundle directory (default: the bundled model).")
    p.add_argument("--calibration-images", default=str(SHARED / "train"))
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--images", default=str(SHARED / "val"), help="Verification images.")
    p.add_argument("--num-verify", type=int, default=20)
    p.add_argument("--layer-images", type=int, default=8, help="Verification images for the single-layer errors.")
    p.add_argument("--top", type=int, default=15, help="Layers printed, worst first.")
    p.add_argument("--variants", default="full,float:CONV_2D,float:DEPTHWISE_CONV_2D")
    return p.parse_args(argv)


def calibrated_model(bundle, calibration_images: str, num_calibration: int) -> bytes:
    """The float flatbuffer with measured int8 ranges that ``convert`` quantises."""
    from bbe_mobile.export.images import calibration_canvases  # noqa: PLC0415

    return calibrated_model_of(bundle, calibration_canvases(calibration_images, bundle.input_size, num_calibration))


def calibrated_model_of(bundle, canvases) -> bytes:
    """The float flatbuffer of ``bundle`` with int8 ranges measured on ``canvases`` ((S, S, 3) letterboxes)."""
    import tensorflow as tf  # noqa: PLC0415

    from bbe_mobile.export.calibration import calibrate  # noqa: PLC0415
    from bbe_mobile.export.serving import serving_function  # noqa: PLC0415
    from bbe_mobile.export.tflite import int8_converter  # noqa: PLC0415

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serving_function(bundle.model, bundle.input_size, 1).get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return calibrate(int8_converter(converter, canvases, tf.float32), canvases)


def end_to_end(bundle, calibrated: bytes, variant: str, files) -> dict:
    """Verification figures of the int8 model of ``variant`` (``full`` or ``float:OP[+OP]``) against Keras."""
    import tensorflow as tf  # noqa: PLC0415

    from bbe_mobile.export.calibration import quantize_calibrated  # noqa: PLC0415
    from bbe_mobile.export.tflite import tflite_with_metadata  # noqa: PLC0415
    from bbe_mobile.export.runtime import KerasRunner, TFLiteRunner  # noqa: PLC0415
    from bbe_mobile.export.verify import compare  # noqa: PLC0415

    if variant == "full":
        data = quantize_calibrated(calibrated, tf.float32)
    elif variant.startswith("float:"):
        data = quantize_calibrated(calibrated, tf.float32, denylisted_ops=variant[len("float:"):].split("+"))
    else:
        raise SystemExit(f"error: unknown variant {variant!r} (full or float:OP[+OP])")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(tflite_with_metadata(bundle, data, "int8"))
        return compare(TFLiteRunner(path), KerasRunner(bundle), files)


def main(argv=None) -> int:
    args = parse_args(argv)
    from bbe_mobile.export.verify import select_images  # noqa: PLC0415
    from bbe_mobile.letterbox import letterbox_image, read_image  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415
    from bbe_mobile.utils.paths import DEFAULT_MODEL  # noqa: PLC0415

    bundle = load_bundle(args.model or str(DEFAULT_MODEL))
    files = select_images(args.images, args.num_verify)
    calibrated = calibrated_model(bundle, args.calibration_images, args.num_calibration)
    canvases = [letterbox_image(read_image(str(f)), bundle.input_size)[0] for f in files[: args.layer_images]]
    from bbe_mobile.export.calibration import layer_errors  # noqa: PLC0415

    rows = sorted(layer_errors(calibrated, canvases), key=lambda r: -r[2])
    print(f"{bundle.name}: single-layer int8 error on {len(canvases)} images, worst {args.top} of {len(rows)} layers")
    print("| layer | RMSE | RMSE / output step |\n|---|---:|---:|")
    for name, rmse, steps, _ in rows[: args.top]:
        print(f"| `{name[-70:]}` | {rmse:.4f} | {steps:.2f} |")
    print(f"\nend to end on {len(files)} verification images (thresholds: docs/export.md)")
    print("| variant | prob mean abs | offsets mean abs | mask IoU | instance IoU | count mismatch |")
    print("|---|---:|---:|---:|---:|---:|")
    for variant in args.variants.split(","):
        m = end_to_end(bundle, calibrated, variant, files)
        figures = [m["prob_mean_abs"], m["offsets_mean_abs"], m["mask_iou"], m["instance_iou"]]
        cells = ["-" if v is None else f"{v:.4f}" for v in figures]  # None: nobody found by either model
        print(f"| {variant} | {' | '.join(cells)} | {m['count_mismatch_rate']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
