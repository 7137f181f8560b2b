import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bbe_mobile.data import AugmentConfig, CocoPersons
from bbe_mobile.model import ModelConfig
from bbe_mobile.train import TrainConfig, TrainError, train

TINY = ModelConfig(aspp_filters=16, decoder_filters=16)
FIXED = AugmentConfig(crop=64, base_size=64, scale_range=(1.0, 1.0), max_rotation_deg=0, max_translation=0,
                      flip=False, paste_probability=0)


def _handful(coco_train, n=4):
    ds = CocoPersons(*coco_train)
    ids = [i for i in ds.image_ids if ds.people_count(i) >= 1][:n]
    return CocoPersons(*coco_train, image_ids=ids)


def test_loss_decreases_on_a_handful_of_real_images(coco_train, tmp_path):
    summary = train([_handful(coco_train)], tmp_path / "run", TINY,
                    TrainConfig(steps1=60, steps2=0, lr1=2e-3, batch_size=4, checkpoint_every=1000),
                    FIXED, input_size=64, progress=False)
    losses = np.array([s + b for _, s, b in summary["history"]])
    assert losses[-10:].mean() < 0.7 * losses[:10].mean()
    assert (tmp_path / "run" / "model.keras").is_file() and (tmp_path / "run" / "bbe.json").is_file()
    assert any((tmp_path / "run" / "logs").iterdir())


def test_resume_continues_step_counter_and_schedule(coco_train, tmp_path):
    config = TrainConfig(steps1=6, steps2=4, lr1=1e-3, lr2=1e-4, batch_size=2, checkpoint_every=3)
    first = train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False,
                  max_steps_this_run=4)
    assert first["steps"] == 4 and not (tmp_path / "model.keras").exists()
    second = train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False)
    assert second["start_step"] == 4 and second["steps"] == 10 and second["optimizer_iterations"] == 10
    assert second["learning_rate"] == pytest.approx(1e-4)
    assert (tmp_path / "model.keras").is_file()


def test_resume_after_kill(coco_train, tmp_path):
    """Kill a training process after its second checkpoint; the resumed run starts from that checkpoint."""
    images, annotations = coco_train
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "bbe_mobile.cli", "train", "--train-set", images, annotations, "--out", str(out),
           "--crop", "64", "--base-size", "64", "--input-size", "64", "--batch-size", "2", "--steps1", "400",
           "--steps2", "10", "--checkpoint-every", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    index = out / "checkpoints" / "checkpoint"
    deadline = time.time() + 240
    while time.time() < deadline and not (index.exists() and "ckpt-4" in index.read_text()):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert index.exists(), "no checkpoint was written before the deadline"
    saved = int(index.read_text().split('"')[1].split("-")[-1])
    state = json.loads((out / "train_state.json").read_text())
    assert state["train"]["steps1"] == 400
    ds = CocoPersons(images, annotations)
    summary = train([ds], out, ModelConfig(), TrainConfig(steps1=400, steps2=10, batch_size=2, checkpoint_every=2),
                    AugmentConfig(crop=64, base_size=64), input_size=64, progress=False, max_steps_this_run=1)
    assert summary["start_step"] == saved >= 4
    assert summary["optimizer_iterations"] == saved + 1


def test_incompatible_resume_is_refused_without_writing(coco_train, tmp_path):
    train([_handful(coco_train, 2)], tmp_path, TINY, TrainConfig(steps1=1, steps2=0, batch_size=2), FIXED,
          input_size=64, progress=False)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(TrainError, match="holds a run with model"):
        train([_handful(coco_train, 2)], tmp_path, ModelConfig(aspp_filters=8, decoder_filters=8),
              TrainConfig(steps1=1, steps2=0, batch_size=2), FIXED, input_size=64, progress=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_init_model_with_other_architecture_is_refused(coco_train, tmp_path, tiny_bundle):
    with pytest.raises(TrainError, match="architecture"):
        train([_handful(coco_train, 2)], tmp_path / "x", ModelConfig(), TrainConfig(steps1=1, steps2=0, batch_size=2),
              FIXED, input_size=64, init_model=tiny_bundle, progress=False)
    assert not (tmp_path / "x").exists()


def test_mirrored_strategy_on_two_logical_cpus(coco_train, tmp_path):
    images, annotations = coco_train
    result = subprocess.run(
        [sys.executable, "-m", "bbe_mobile.cli", "train", "--train-set", images, annotations, "--out",
         str(tmp_path / "m"), "--crop", "64", "--base-size", "64", "--input-size", "64", "--batch-size", "4",
         "--steps1", "2", "--steps2", "0", "--strategy", "mirrored", "--logical-cpus", "2",
         "--balance-instances", "--box-loss-weight", "2"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 device(s)" in result.stdout and "model written" in result.stdout
    state = json.loads((tmp_path / "m" / "train_state.json").read_text())
    assert state["train"]["balance_instances"] is True and state["train"]["box_loss_weight"] == 2.0


@pytest.mark.parametrize("case", ["missing_json", "no_person", "corrupt_json", "missing_image"])
def test_bad_data_gives_one_line_error_and_no_output(case, tmp_path, coco_train):
    images, annotations = coco_train
    data = json.loads(Path(annotations).read_text())
    ann = tmp_path / "ann.json"
    if case == "no_person":
        data["categories"] = [{"id": 3, "name": "car", "supercategory": "vehicle"}]
        ann.write_text(json.dumps(data))
    elif case == "corrupt_json":
        ann.write_text(Path(annotations).read_text()[:1000])
    elif case == "missing_image":
        data["images"][0]["file_name"] = "nope.jpg"
        ann.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "train", "--train-set", images, str(ann),
                             "--out", str(out), "--steps1", "1", "--steps2", "0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr[-1500:]
    assert not out.exists()
