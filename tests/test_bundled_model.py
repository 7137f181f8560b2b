"""The bundled model (``utils.paths.DEFAULT_MODEL``) through every ``convert`` variant, each verified against Keras
on 20 real val images by ``bbe-mobile convert`` itself before it ships an artifact (about 10 minutes)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bbe_mobile.export import convert as export
from bbe_mobile.modeling.bundle import CONFIG_FILE, read_bundle_config
from bbe_mobile.utils.paths import DEFAULT_MODEL
from conftest import COCO, need

MODEL_NAME = read_bundle_config(DEFAULT_MODEL / CONFIG_FILE)[0]["name"]

VARIANTS = [(target, precision) for target in export.TARGETS for precision in export.PRECISIONS[target]]
# Variants that fail verification on the bundled model, with the measured reason (docs/export.md). strict: once
# a better model passes, the test fails until the entry is removed.
KNOWN_FAILING: dict[tuple[str, str], str] = {
    ("tflite", "dynamic-int8"): "8-bit weights move instances: instance IoU 0.775 < 0.9 (docs/export.md)",
    ("tflite", "int8"): "post-training full int8 moves instances: instance IoU 0.733 < 0.9 (docs/export.md)",
    ("coreml", "int8"): "8-bit linear weights move instances: instance IoU 0.833 < 0.9",
    ("coreml", "palette4"): "4-bit ASPP/decoder palettes: instance IoU 0.752 < 0.85",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """``bbe-mobile convert --target all --precision all`` in a subprocess (its own TF/LiteRT state); the
    verification report of every variant, keyed by (target, precision), and the output directory."""
    need(COCO / "train")
    need(COCO / "val")
    out = tmp_path_factory.mktemp("bundled_convert")
    result = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "convert", "--target", "all", "--precision",
                             "all", "--out", str(out), "--calibration-images", str(COCO / "train"),
                             "--verify-images", str(COCO / "val"), "--num-verify", "20"],
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some variant failed verification
    found = {}
    for target, precision in VARIANTS:
        name = export.artifact_name(MODEL_NAME, target, precision, export.ExportOptions())
        report = out / (name + ".verify.json")
        found[(target, precision)] = (json.loads(report.read_text()) if report.exists() else None, out / name)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("target,precision", [
    pytest.param(t, p, marks=pytest.mark.xfail(reason=KNOWN_FAILING[(t, p)], strict=True))
    if (t, p) in KNOWN_FAILING else (t, p) for t, p in VARIANTS])
def test_bundled_model_variant_passes_verification(reports, target, precision):
    report, artifact = reports[(target, precision)]
    assert report is not None, f"no verification report for {target} {precision}"
    assert report["metrics"]["n_images"] == 20
    assert report["status"] == "passed", report["checks"]
    assert artifact.exists()


@pytest.mark.slow
def test_default_tflite_convert_names_what_to_try(tmp_path):
    """``bbe-mobile convert --target tflite`` with its defaults (full int8, calibration and verification images
    found from the package), run from another directory: int8 fails verification on the bundled model (see
    KNOWN_FAILING), so it exits 1, writes only the report and names what to try instead."""
    need(COCO / "train")
    need(COCO / "val")
    result = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "convert", "--target", "tflite"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 1, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "out" / "export").iterdir()) == [f"{MODEL_NAME}_int8.tflite.verify.json"]
    failure = next(line for line in result.stderr.splitlines() if "tflite int8: verification failed:" in line)
    assert "instance_iou" in failure, failure
    assert result.stderr.splitlines()[-1] == (
        "try instead: --target tflite with --precision dynamic-int8, --precision fp16 or --precision fp32 "
        "(more faithful), or --no-verify to write tflite int8 unverified")
