"""Verification of exported artifacts: passes for good ones, fails (exit 1, clear report) for a broken one."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from click.testing import CliRunner  # noqa: E402

from bbe_mobile.cli import main  # noqa: E402
from bbe_mobile.export import convert as export, verify  # noqa: E402
from bbe_mobile.modeling.bundle import load_bundle  # noqa: E402
from test_export import SHARED, make_bundle, needs_shared, write_images  # noqa: E402


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("verify_bundle"))


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory) -> Path:
    """The same model with the person head perturbed (weights x1.5, bias +0.5)."""
    return make_bundle(tmp_path_factory.mktemp("broken_bundle"), perturb=0.5)


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("verify_images"), 6, seed=3)


@pytest.fixture(scope="module")
def good_tflite(bundle_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("good") / "tiny_fp32.tflite"
    export.export_artifact(load_bundle(bundle_dir), "tflite", "fp32", path)
    return path


@pytest.fixture(scope="module")
def broken_tflite(broken_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "tiny_fp32.tflite"
    export.export_artifact(load_bundle(broken_dir), "tflite", "fp32", path)
    return path


def test_verify_passes_for_good_artifact(good_tflite, bundle_dir, images_dir):
    """Every check passes, instance IoU included: an fp32 artifact's float noise (LiteRT: ~2e-6) never fails it,
    because decisions that noise could flip are not counted (decisions.py; on an AVX-512 CPU the old comparison
    gave instance IoU 0.95 here)."""
    report = verify.verify(str(good_tflite), str(bundle_dir), str(images_dir), 6)
    assert report["status"] == "passed", verify.format_report(report)
    m = report["metrics"]
    assert m["n_images"] == 6 and m["prob_max_abs"] < 1e-4
    assert m["instances_reference"] > 0, "the test model should find people (see conftest.decisive_heads)"
    assert m["instance_iou"] > 0.98 and m["mask_iou"] > 0.99 and m["count_abs_diff"] == 0
    assert m["matched_instances"] > 0  # the decisive heads leave instances to compare
    assert {c["name"] for c in report["checks"]} == {"prob_max_abs", "prob_mean_abs", "offsets_mean_abs",
                                                     "count_mismatch_rate", "mask_iou", "instance_iou"}


def test_verify_fails_for_broken_artifact(broken_tflite, bundle_dir, images_dir, tmp_path):
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(main, ["verify", str(broken_tflite), "--reference", str(bundle_dir), "--images",
                                       str(images_dir), "--num-images", "6", "--report", str(report_path)])
    assert result.exit_code == 1, result.output
    assert "FAILED: prob_max_abs" in result.output and "FAIL  prob_mean_abs" in result.output
    report = json.loads(report_path.read_text())
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # written atomically, no temp file left
    assert report["status"] == "failed" and report["precision"] == "fp32"
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert {"prob_max_abs", "prob_mean_abs", "mask_iou"} <= failed
    assert len(report["metrics"]["images"]) == 6


def test_convert_does_not_ship_a_failing_artifact(bundle_dir, broken_dir, images_dir, tmp_path, monkeypatch):
    """If the converted graph disagrees with the Keras model, an explicit ``--precision int8`` writes the report,
    not the artifact, removes an older artifact at that path (say from a --no-verify run), exits 1 and ends with
    one line naming what to try instead: no variant that was not verified to pass. The failing int8 is faked by
    an fp32 conversion of the broken model (the thresholds are int8's, untouched)."""
    broken = load_bundle(broken_dir)
    original = export.EXPORTERS["tflite"]
    monkeypatch.setitem(export.EXPORTERS, "tflite", lambda b, p, path, o: original(broken, "fp32", path, o))
    out = tmp_path / "out"
    out.mkdir()
    (out / "tiny_int8.tflite").write_bytes(b"an older, unverified artifact")
    result = CliRunner().invoke(main, ["convert", "--target", "tflite", "--precision", "int8", "--model",
                                       str(bundle_dir), "--out", str(out), "--verify-images", str(images_dir),
                                       "--num-verify", "4", "--calibration-images", str(images_dir)])
    assert result.exit_code == 1
    assert "tflite int8: verification failed: prob_mean_abs" in result.stderr
    assert "artifact not written, older one removed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tiny_int8.tflite.verify.json"]
    report = json.loads((out / "tiny_int8.tflite.verify.json").read_text())
    assert report["status"] == "failed" and report["precision"] == "int8"
    assert result.stderr.splitlines()[-1] == (
        "try instead: --target tflite without --precision (writes the fastest variant that passes), or "
        "--no-verify to write tflite int8 unverified")


def test_convert_by_default_writes_the_fastest_variant_that_passes(bundle_dir, broken_dir, images_dir, tmp_path,
                                                                  monkeypatch):
    """No --precision: int8 (faked to fail, as above) is refused with its failing figure, int8-selective (the next
    in speed order, faked by a faithful fp32 conversion) passes and is written, the rest are not tried; exit 0."""
    broken = load_bundle(broken_dir)
    original = export.EXPORTERS["tflite"]
    tried = []

    def fake(b, precision, path, options):
        tried.append(precision)
        return original(broken if precision == "int8" else b, "fp32", path, options)

    monkeypatch.setitem(export.EXPORTERS, "tflite", fake)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["convert", "--target", "tflite", "--model", str(bundle_dir), "--out",
                                       str(out), "--verify-images", str(images_dir), "--num-verify", "4",
                                       "--calibration-images", str(images_dir)])
    assert result.exit_code == 0, result.output
    assert tried == ["int8", "int8-selective"]
    refused = [line for line in result.output.splitlines() if line.startswith("refused")]
    assert len(refused) == 1 and "int8" in refused[0] and "prob_mean_abs" in refused[0], result.output
    assert (f"wrote tflite int8-selective (the fastest variant that passed verification; refused: int8): "
            f"{out / 'tiny_int8-selective.tflite'}") in result.output
    assert sorted(p.name for p in out.iterdir()) == ["tiny_int8-selective.tflite",
                                                     "tiny_int8-selective.tflite.verify.json",
                                                     "tiny_int8.tflite.verify.json"]


def test_verify_errors(good_tflite, bundle_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (([str(tmp_path / "nope.tflite")], "artifact not found"),
                          ([str(good_tflite), "--images", str(empty)], "no images"),
                          ([str(good_tflite), "--images", str(tmp_path / "missing")], "image directory not found"),
                          ([str(good_tflite), "--num-images", "0"], "must be positive")):
        result = CliRunner().invoke(main, ["verify", *args, "--reference", str(bundle_dir)])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


def test_instance_matching_is_label_permutation_invariant():
    ref = np.zeros((10, 10), np.int32)
    ref[:5, :5], ref[5:, 5:], ref[:3, 7:] = 1, 2, 3
    art = np.zeros_like(ref)
    art[:5, :5], art[5:, 5:] = 2, 1  # same masks, other numbering, one instance missing
    ious, n_ref, n_art = verify._instance_ious(ref, art)
    assert sorted(ious) == [1.0, 1.0] and (n_ref, n_art) == (3, 2)
    art[4, :5] = 0  # shrink one mask: 20 of 25 pixels
    ious, _, _ = verify._instance_ious(ref, art)
    assert sorted(ious) == [pytest.approx(0.8), 1.0]
    assert verify._instance_ious(ref, np.zeros_like(ref)) == ([], 3, 0)


def test_thresholds_cover_every_precision():
    for target, precisions in export.PRECISIONS.items():
        for precision in precisions:
            limits = verify.thresholds_for(precision, target)
            assert 0 < limits.mask_iou <= 1 and 0 < limits.instance_iou <= 1
    assert verify.thresholds_for("int8", "tflite").mask_iou == 0.93  # the acceptance figures
    assert verify.thresholds_for("int8", "tflite").instance_iou == 0.9
    doc = (Path(__file__).resolve().parent.parent / "docs" / "export.md").read_text()
    for precision in verify.THRESHOLDS:
        assert f"`{precision}`" in doc


@needs_shared
def test_real_images_selection_and_verification(good_tflite, bundle_dir):
    files = verify.select_images(SHARED / "val", 6)
    assert len(files) == 6 and files == sorted(files)
    doc = json.loads((SHARED / "instances_person_val.json").read_text())
    ids = {img["file_name"]: img["id"] for img in doc["images"]}
    people = {}
    for ann in doc["annotations"]:
        if not ann["iscrowd"]:
            people[ann["image_id"]] = people.get(ann["image_id"], 0) + 1
    counts = sorted(people.get(ids[f.name], 0) for f in files)
    assert counts[:3] == [1, 1, 1] and min(counts[3:]) >= 2  # half multi-person, half single
    report = verify.verify(str(good_tflite), str(bundle_dir), str(SHARED / "val"), 4)
    assert report["status"] == "passed", verify.format_report(report)


def _tflite_weight_spans(data: bytes) -> list[tuple[int, int]]:
    """(byte offset, length) of every non-empty buffer stored inside a TFLite flatbuffer."""
    from bbe_mobile.export.tflite_metadata import tflite_schema

    model = tflite_schema().Model.GetRootAs(data, 0)
    buffers = [model.Buffers(k) for k in range(model.BuffersLength())]
    return [(b._tab.Vector(b._tab.Offset(4)), b.DataLength()) for b in buffers if b.DataLength()]


def _altered(weights: np.ndarray) -> np.ndarray:
    """The same values reversed and sign-flipped: the same scale, so the graph still runs finitely."""
    return -weights.reshape(-1)[::-1].reshape(weights.shape)


@pytest.mark.parametrize("target", ["tflite", "onnx"])
def test_an_artifact_with_altered_weights_fails_verification(target, bundle_dir, images_dir, tmp_path):
    """Model files are untrusted: an artifact whose weight tensors (every float one of 64+ values) were
    overwritten still loads and runs, and ``verify`` catches it: exit 1."""
    path = tmp_path / f"tiny_fp32.{target}"
    export.export_artifact(load_bundle(bundle_dir), target, "fp32", path)
    if target == "tflite":
        data = bytearray(path.read_bytes())
        for start, length in _tflite_weight_spans(bytes(data)):
            if length >= 256 and length % 4 == 0 and b'"format"' not in data[start:start + length]:  # not metadata
                weights = np.frombuffer(bytes(data[start:start + length]), np.float32)
                data[start:start + length] = _altered(weights).tobytes()
        path.write_bytes(bytes(data))
    else:
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(path))
        for tensor in model.graph.initializer:
            weights = numpy_helper.to_array(tensor)
            if weights.dtype == np.float32 and weights.size >= 64:
                tensor.CopyFrom(numpy_helper.from_array(_altered(weights), tensor.name))
        onnx.save(model, str(path))
    result = CliRunner().invoke(main, ["verify", str(path), "--reference", str(bundle_dir), "--images",
                                       str(images_dir), "--num-images", "6"])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output
