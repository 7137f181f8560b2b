"""The bundled model (``utils.paths.DEFAULT_MODEL``) through every ``convert`` variant, each verified against Keras
on 20 real val images by ``bbe-mobile convert`` itself before it ships an artifact (about 10 minutes)."""
from __future__ import annotations

import json
import os
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
    ("tflite", "dynamic-int8"): "8-bit weights move instances: instance IoU 0.864 < 0.9 (docs/export.md)",
    ("tflite", "int8"): "post-training full int8 moves instances: instance IoU 0.839 < 0.9 (docs/export.md)",
    ("tflite", "int8-selective"): "full int8 with 30 ops in float changes the count on 8 of 20 images (0.40 > 0.30)",
    ("coreml", "fp16"): "fp16 changes the instance count on 3 of 20 images (0.15 > 0.10; instance IoU 0.993)",
    ("coreml", "int8"): "8-bit linear weights move instances: instance IoU 0.878 < 0.9",
    ("coreml", "palette4"): "4-bit ASPP/decoder palettes: instance IoU 0.826 < 0.85",
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """``bbe-mobile convert --target all --precision all`` in a subprocess (its own TF/LiteRT state); the
    verification report of every variant, keyed by (target, precision), and the output directory. Map-level
    verification only (``--num-accuracy 0``): the AP of ten variants would take longer than the CI allows; the
    default chain below runs the accuracy gate."""
    need(COCO / "train")
    need(COCO / "val")
    out = tmp_path_factory.mktemp("bundled_convert")
    result = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "convert", "--target", "all", "--precision",
                             "all", "--out", str(out), "--calibration-images", str(COCO / "train"),
                             "--verify-images", str(COCO / "val"), "--num-verify", "20", "--num-accuracy", "0"],
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
@pytest.mark.skipif(os.environ.get("BBE_LONG_EXPORT_TESTS") != "1",
                    reason="the bundled model's default chain takes 4-8 min (CI's 30 min budget): run with "
                           "BBE_LONG_EXPORT_TESTS=1; test_verify runs the same chain on a tiny model")
@pytest.mark.parametrize("target", ["tflite"])  # coreml's chain (~15 min here, NumPy executor) was run by hand
def test_default_convert_writes_the_fastest_variant_that_passes(target, tmp_path):
    """``bbe-mobile convert --target T`` with no options, run from another directory (calibration, verification and
    accuracy images found from the package): exit 0, one verified artifact written and named, one ``refused`` line
    with its failing figures for each faster variant of the chain (full int8 fails on the bundled model: see
    KNOWN_FAILING). About 8 minutes on the loaded 2-core machine (three conversions, 2 x 120 forward passes each)."""
    need(COCO / "train")
    need(COCO / "val")
    result = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "convert", "--target", target],
                            cwd=tmp_path, capture_output=True, text=True, timeout=2400)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wrote = [line for line in result.stdout.splitlines() if line.startswith(f"wrote {target} ")]
    assert len(wrote) == 1, result.stdout
    precision = wrote[0].split()[2]
    chain = list(export.DEFAULT_CHAIN[target])
    refused = [line for line in result.stdout.splitlines() if line.startswith("refused")]
    assert [line.split()[2] for line in refused] == chain[: chain.index(precision)], result.stdout
    assert all("verification failed:" in line and "limit" in line for line in refused), refused
    name = export.artifact_name(MODEL_NAME, target, precision, export.ExportOptions())
    report = json.loads((tmp_path / "out" / "export" / (name + ".verify.json")).read_text())
    assert report["status"] == "passed" and report["accuracy"]["images"] == 100
    assert (tmp_path / "out" / "export" / name).exists()
    assert wrote[0].endswith(f": out/export/{name}")  # the default --out, relative to where convert ran
    assert result.stderr == "", result.stderr  # quiet by default
