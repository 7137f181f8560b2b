"""End-to-end tests of every CLI command on tiny models and real images."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from bbe_mobile.cli import main
from conftest import GOLDEN, ROOT


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_only_working_commands():
    result = run("--help")
    assert result.exit_code == 0
    commands = [line.split()[0] for line in result.output.split("Commands:")[1].strip().splitlines()]
    for command in commands:
        sub = run(command, "--help")
        assert sub.exit_code == 0, command
        assert "Usage:" in sub.output


def test_predict_writes_overlay_and_json(tiny_bundle, coco_val, tmp_path):
    images = sorted(Path(coco_val[0]).glob("*.jpg"))[:2]
    result = run("predict", *images, "--model", tiny_bundle, "--out", tmp_path, "--t-c", "0.1", "--t-fg", "0.1",
                 "--t-iou", "0.1")
    assert result.exit_code == 0, result.output
    for image in images:
        doc = json.loads((tmp_path / f"{image.stem}.json").read_text())
        assert (tmp_path / f"{image.stem}.png").stat().st_size > 1000
        for inst in doc["instances"]:
            mask = mask_utils.decode(inst["segmentation"])
            assert mask.shape == (doc["height"], doc["width"]) and 0 <= inst["score"] <= 1
    assert not list(tmp_path.glob(".tmp-*"))


def test_predict_bad_inputs(tiny_bundle, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(text), "--model", tiny_bundle,
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: not a readable image" in proc.stderr and not (tmp_path / "o").exists()
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(text), "--model",
                           str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_missing_model_file(coco_val, tmp_path):
    image = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    result = CliRunner().invoke(main, ["predict", str(image), "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "model not found" in result.output


def test_eval_metrics_reproduce_pycocotools_from_results_json(tiny_bundle, coco_val, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results, metrics = tmp_path / "r.json", tmp_path / "m.json"
    result = run("eval", "--images", coco_val[0], "--annotations", coco_val[1], "--model", tiny_bundle,
                 "--size", "64", "--subset", "multi", "--limit", "3", "--results", results, "--metrics-json", metrics,
                 "--t-c", "0.1", "--t-fg", "0.1", "--t-iou", "0.1")
    assert result.exit_code == 0, result.output
    m = json.loads(metrics.read_text())
    assert {"AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR100", "ARS", "ARM", "ARL",
            "person_iou"} <= set(m)
    detections = json.loads(results.read_text())
    assert detections, "the permissive thresholds should give instances"
    gt = COCO(coco_val[1])
    e = COCOeval(gt, gt.loadRes(str(results)), iouType="segm")
    e.params.imgIds = [i for i in [img["id"] for img in gt.dataset["images"]]
                       if len([a for a in gt.imgToAnns[i] if not a["iscrowd"]]) >= 2][:3]
    e.params.catIds = [1]
    e.evaluate(), e.accumulate(), e.summarize()
    np.testing.assert_allclose([m[k] for k in ("AP", "AP50", "AP75", "APS", "APM", "APL", "AR1", "AR10", "AR100",
                                               "ARS", "ARM", "ARL")], e.stats, atol=1e-12)


def test_eval_bad_annotations(tmp_path, coco_val):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = CliRunner().invoke(main, ["eval", "--images", coco_val[0], "--annotations", str(bad)])
    assert result.exit_code == 2 and "not a COCO instances json" in result.output


def test_golden_generator_reproduces_the_committed_files(tmp_path, coco_val):
    result = run("golden", "--out", tmp_path, "--coco-images", coco_val[0], "--coco-annotations", coco_val[1])
    assert result.exit_code == 0, result.output
    committed = sorted(p.name for p in GOLDEN.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (GOLDEN / name).read_bytes(), name
