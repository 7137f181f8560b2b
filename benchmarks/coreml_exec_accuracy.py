"""Issue 5's acceptance figure: the fp32 Core ML ML Program of a model, run by the NumPy executor
(``bbe_mobile.coreml_exec``), against the Keras model on real val images: max relative error per output
(max |executor - Keras| / max |Keras| over all images). No Apple software involved.

Usage: python benchmarks/coreml_exec_accuracy.py [--model RUN] [--images DIR] [--num-images 20]
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bbe_mobile.export import convert, verify
from bbe_mobile.export.images import DEFAULT_VERIFY_DIR
from bbe_mobile.export.runtime import KerasRunner, load_runner
from bbe_mobile.letterbox import letterbox_image, read_image
from bbe_mobile.modeling.bundle import load_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model bundle (default: the bundled model)")
    parser.add_argument("--images", default=str(DEFAULT_VERIFY_DIR))
    parser.add_argument("--num-images", type=int, default=20)
    args = parser.parse_args()
    bundle = load_bundle(args.model)
    files = verify.select_images(args.images, args.num_images)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fp32.mlpackage"
        convert.export_artifact(bundle, "coreml", "fp32", path, convert.ExportOptions())
        executor, keras = load_runner(str(path)), KerasRunner(bundle)
        diff, scale = np.zeros(2), np.zeros(2)
        for f in files:
            canvas, _ = letterbox_image(read_image(str(f)), bundle.input_size)
            for k, (a, b) in enumerate(zip(executor.run(canvas), keras.run(canvas))):
                diff[k] = max(diff[k], float(np.abs(a - b).max()))
                scale[k] = max(scale[k], float(np.abs(b).max()))
    print(f"{bundle.name}: fp32 ML Program through bbe_mobile.coreml_exec vs Keras on {len(files)} images of "
          f"{args.images}, input {bundle.input_size}")
    for k, name in enumerate(("person_prob", "box_offsets")):
        print(f"  {name:<12} max abs error {diff[k]:.3g}  max relative error {diff[k] / scale[k]:.3g}")


if __name__ == "__main__":
    main()
