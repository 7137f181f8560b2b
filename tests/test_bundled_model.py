"""The bundled model (``models/bbe_mnv2_035``) through every ``convert`` variant, each verified against Keras on
20 real val images exactly as ``bbe-mobile convert`` does before it ships an artifact (about 5 minutes)."""
from __future__ import annotations

import pytest

from bbe_mobile import export
from conftest import COCO, need

VARIANTS = [(target, precision) for target in export.TARGETS for precision in export.PRECISIONS[target]]
# Variants that fail verification on the bundled model, with the measured reason (docs/export.md). strict: once
# a better model passes, the test fails until the entry is removed.
KNOWN_FAILING: dict[tuple[str, str], str] = {
    ("tflite", "int8"): "post-training full int8 moves instances: instance IoU 0.834 < 0.9 (quantisation-aware "
                        "fine-tuning needed)",
    ("coreml", "palette4"): "4-bit ASPP/decoder palettes: instance IoU 0.844 < 0.85",
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    from bbe_mobile.bundle import load_bundle

    need(COCO / "train")
    need(COCO / "val")
    out = tmp_path_factory.mktemp("bundled_convert")
    targets = list(export.TARGETS)
    precisions = {t: list(export.PRECISIONS[t]) for t in targets}
    options = export.ExportOptions(calibration_images=str(COCO / "train"), num_calibration=100)
    results = export.convert(load_bundle(None), targets, precisions, out, options,
                             verify_images=str(COCO / "val"), num_verify=20, log=lambda *_: None)
    return {(o.target, o.precision): o for o in results}


@pytest.mark.slow
@pytest.mark.parametrize("target,precision", [
    pytest.param(t, p, marks=pytest.mark.xfail(reason=KNOWN_FAILING[(t, p)], strict=True))
    if (t, p) in KNOWN_FAILING else (t, p) for t, p in VARIANTS])
def test_bundled_model_variant_passes_verification(outcomes, target, precision):
    outcome = outcomes[(target, precision)]
    assert outcome.result is not None, outcome.message
    assert outcome.report is not None and outcome.report["n_images"] == 20
    assert outcome.status == "ok", outcome.message
    assert outcome.path.exists()
