import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbe_mobile.boxes import box_area, decode_boxes, pairwise_iou
from bbe_mobile.modeling.bundle import load_bundle
from bbe_mobile.modeling.network import ModelConfig
from bbe_mobile.training.data import AugmentConfig, CocoPersons
from bbe_mobile.training.train import TrainConfig, TrainError, bbe_losses, giou_per_cell, restore_newest_intact, train

TINY = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16)
FIXED = AugmentConfig(crop=64, base_size=64, scale_range=(1.0, 1.0), max_rotation_deg=0, max_translation=0,
                      flip=False, paste_probability=0)


def _handful(coco_train, n=4):
    ds = CocoPersons(*coco_train)
    ids = [i for i in ds.image_ids if ds.people_count(i) >= 1][:n]
    return CocoPersons(*coco_train, image_ids=ids)


@pytest.mark.slow
def test_loss_decreases_on_a_handful_of_real_images(coco_train, tmp_path):
    summary = train([_handful(coco_train)], tmp_path / "run", TINY,
                    TrainConfig(steps1=60, steps2=0, lr1=2e-3, batch_size=4, checkpoint_every=1000),
                    FIXED, input_size=64, progress=False)
    losses = np.array([s + b for _, s, b, _ in summary["history"]])
    assert losses[-10:].mean() < 0.7 * losses[:10].mean()
    assert (tmp_path / "run" / "model.keras").is_file() and (tmp_path / "run" / "bbe.json").is_file()
    assert any((tmp_path / "run" / "logs").iterdir())


@pytest.mark.slow
def test_resume_continues_step_counter_and_schedule(coco_train, tmp_path):
    config = TrainConfig(steps1=6, steps2=4, lr1=1e-3, lr2=1e-4, batch_size=2, checkpoint_every=3)
    first = train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False,
                  max_steps_this_run=4)
    assert first["steps"] == 4 and not (tmp_path / "model.keras").exists()
    second = train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False)
    assert second["start_step"] == 4 and second["steps"] == 10 and second["optimizer_iterations"] == 10
    assert second["learning_rate"] == pytest.approx(1e-4)
    assert (tmp_path / "model.keras").is_file()


@pytest.mark.slow
def test_snapshots_are_loadable_bundles_and_survive_resume(coco_train, tmp_path):
    config = TrainConfig(steps1=5, steps2=0, batch_size=2, checkpoint_every=2, snapshot_every=2,
                         giou_loss_weight=1.0)
    train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False, max_steps_this_run=3)
    snapshots = tmp_path / "snapshots"
    assert sorted(p.name for p in snapshots.iterdir()) == ["step-000002"]
    train([_handful(coco_train)], tmp_path, TINY, config, FIXED, input_size=64, progress=False)
    assert sorted(p.name for p in snapshots.iterdir()) == ["step-000002", "step-000004"]
    bundle = load_bundle(snapshots / "step-000004")
    assert bundle.info["steps"] == 4 and bundle.info["images_seen"] == 8 and bundle.input_size == 64


@pytest.mark.slow
def test_a_damaged_checkpoint_is_named_and_the_one_before_it_used(coco_train, tmp_path, caplog):
    """A truncated newest checkpoint (or a damaged state file) is detected: training says so and resumes from
    the previous checkpoint; with every checkpoint damaged it refuses in one line and writes nothing."""
    config = TrainConfig(steps1=8, steps2=0, batch_size=2, checkpoint_every=2)
    run = lambda: train([_handful(coco_train, 2)], tmp_path, TINY, config, FIXED, input_size=64,  # noqa: E731
                        progress=False, max_steps_this_run=1)
    train([_handful(coco_train, 2)], tmp_path, TINY, config, FIXED, input_size=64, progress=False,
          max_steps_this_run=4)
    ckpts = tmp_path / "checkpoints"
    (ckpts / "checkpoint").write_text("garbage {{{")  # the state file names nothing usable
    assert run()["start_step"] == 4
    data = next(ckpts.glob("ckpt-5.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="bbe_mobile.training.train"):
        summary = run()
    assert summary["start_step"] == 4 and summary["steps"] == 5
    ours = [r.getMessage() for r in caplog.records if r.name == "bbe_mobile.training.train"]
    assert [m.split(" (")[0] for m in ours] == [f"checkpoint {ckpts / 'ckpt-5'} is damaged"]
    assert ours[0].endswith("(IndexError: Read less bytes than requested): falling back to the one before it")
    for path in ckpts.glob("ckpt-*.data-*"):
        path.write_bytes(b"\0" * 16)
    before = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file())
    with pytest.raises(TrainError, match=f"no intact checkpoint in {ckpts}: ckpt-5 .*; ckpt-4 .*remove the") as info:
        run()
    assert "\n" not in str(info.value)
    assert sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*") if p.is_file()) == before


def test_an_unfinished_first_checkpoint_means_starting_over(tmp_path, caplog):
    """Killed while writing its first checkpoint (a truncated ``ckpt-2`` with its ``ckpt-2_temp`` shards still
    there), a run has nothing to resume: ``restore_newest_intact`` says so and returns None; the same truncated
    checkpoint without the temp directory is damage and refused."""
    import tensorflow as tf

    ckpts = tmp_path / "checkpoints"
    checkpoint = tf.train.Checkpoint(v=tf.Variable(tf.range(1000, dtype=tf.float32)))
    checkpoint.write(str(ckpts / "ckpt-2"))
    data = next(ckpts.glob("ckpt-2.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    (ckpts / "ckpt-2_temp").mkdir()
    with caplog.at_level("WARNING", logger="bbe_mobile.training.train"):
        assert restore_newest_intact(checkpoint, ckpts) is None
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"checkpoint {ckpts / 'ckpt-2'} was being written when its run stopped"]
    (ckpts / "ckpt-2_temp").rmdir()
    with pytest.raises(TrainError, match="no intact checkpoint"):
        restore_newest_intact(checkpoint, ckpts)


@pytest.mark.slow
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


@pytest.mark.slow
def test_incompatible_resume_is_refused_without_writing(coco_train, tmp_path):
    train([_handful(coco_train, 2)], tmp_path, TINY, TrainConfig(steps1=1, steps2=0, batch_size=2), FIXED,
          input_size=64, progress=False)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(TrainError, match="holds a run with model"):
        train([_handful(coco_train, 2)], tmp_path, ModelConfig(alpha=0.35, aspp_filters=8, decoder_filters=8),
              TrainConfig(steps1=1, steps2=0, batch_size=2), FIXED, input_size=64, progress=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.slow
def test_a_run_older_than_an_architecture_field_resumes_at_its_default(coco_train, tmp_path):
    """A run whose state predates a ModelConfig field (box_tower) was made with that field's default: it resumes
    with the default and is refused with another value."""
    train([_handful(coco_train, 2)], tmp_path, TINY, TrainConfig(steps1=1, steps2=1, batch_size=2), FIXED,
          input_size=64, progress=False, max_steps_this_run=1)
    state_file = tmp_path / "train_state.json"
    state = json.loads(state_file.read_text())
    del state["model"]["box_tower"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(TrainError, match="holds a run with model"):
        train([_handful(coco_train, 2)], tmp_path, ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16,
              box_tower=1), TrainConfig(steps1=1, steps2=1, batch_size=2), FIXED, input_size=64, progress=False)
    summary = train([_handful(coco_train, 2)], tmp_path, TINY, TrainConfig(steps1=1, steps2=1, batch_size=2), FIXED,
                    input_size=64, progress=False)
    assert summary["start_step"] == 1 and summary["steps"] == 2


def test_init_model_with_other_architecture_is_refused(coco_train, tmp_path, tiny_bundle):
    with pytest.raises(TrainError, match="architecture"):
        train([_handful(coco_train, 2)], tmp_path / "x", ModelConfig(), TrainConfig(steps1=1, steps2=0, batch_size=2),
              FIXED, input_size=64, init_model=tiny_bundle, progress=False)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_init_model_fine_tunes_at_another_output_stride(coco_train, tmp_path, tiny_bundle):
    """The output stride changes dilations, not weights: a stride-16 bundle starts a stride-8 run with its weights."""
    at_8 = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16, output_stride=8)
    train([_handful(coco_train, 2)], tmp_path, at_8, TrainConfig(steps1=1, steps2=0, lr1=0.0, batch_size=2),
          FIXED, input_size=64, init_model=tiny_bundle, progress=False)
    tuned, source = load_bundle(str(tmp_path)), load_bundle(tiny_bundle)
    assert tuned.config == at_8
    for mine, theirs in zip(tuned.model.weights, source.model.weights, strict=True):
        if "moving" not in mine.path:  # lr 0: only the heads' batch-norm statistics move
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.path)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(coco_train, tmp_path):
    images, annotations = coco_train
    result = subprocess.run(
        [sys.executable, "-m", "bbe_mobile.cli", "train", "--train-set", images, annotations, "--out",
         str(tmp_path / "m"), "--crop", "64", "--base-size", "64", "--input-size", "64", "--batch-size", "4",
         "--steps1", "2", "--steps2", "0", "--strategy", "mirrored", "--logical-cpus", "2",
         "--balance-instances", "--box-loss-weight", "2", "--giou-loss-weight", "0.5"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 device(s)" in result.stdout and "model written" in result.stdout
    state = json.loads((tmp_path / "m" / "train_state.json").read_text())
    assert state["train"]["balance_instances"] is True and state["train"]["box_loss_weight"] == 2.0
    assert state["train"]["giou_loss_weight"] == 0.5


@pytest.mark.slow
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


offset_arrays = st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=8, max_size=8)


@settings(max_examples=60, deadline=None)
@given(offset_arrays)
def test_giou_matches_pixel_boxes_decoded_by_the_grouper(values):
    """GIoU in anchor units equals GIoU of the pixel boxes ``boxes.decode_boxes`` gives at any anchor centre."""
    import tensorflow as tf

    pred, target = np.array(values[:4], np.float32), np.array(values[4:], np.float32)
    got = float(giou_per_cell(tf.constant(pred[None, None, None]), tf.constant(target[None, None, None]))[0, 0, 0])
    a, b = (decode_boxes(o.astype(np.float64), np.float64(37.0), np.float64(-5.0)) for o in (pred, target))
    iou = pairwise_iou(a[None], b[None])[0, 0]
    union = box_area(a) + box_area(b) - iou * (box_area(a) + box_area(b)) / (1 + iou)
    hull = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    assert got == pytest.approx(iou - (hull - union) / hull, abs=1e-4)
    assert -1.0 <= got <= 1.0


def test_giou_loss_is_zero_on_exact_boxes_and_counts_only_weighted_cells():
    import tensorflow as tf

    offsets = tf.constant(np.random.default_rng(0).normal(size=(2, 3, 3, 4)), tf.float32)
    weights = np.zeros((2, 3, 3, 1), np.float32)
    weights[0, 1, 1] = 1
    logits = tf.zeros((2, 3, 3, 1))
    _, l1, giou = bbe_losses(logits, offsets, tf.zeros((2, 3, 3, 1)), offsets, tf.constant(weights))
    np.testing.assert_allclose(giou.numpy(), [0, 0], atol=1e-6)
    np.testing.assert_allclose(l1.numpy(), [0, 0], atol=1e-6)
    moved = offsets + tf.constant([5.0, 0, 0, 0])  # a box far away: GIoU < 0, loss > 1 on the weighted cell
    _, _, giou = bbe_losses(logits, moved, tf.zeros((2, 3, 3, 1)), offsets, tf.constant(weights))
    assert giou.numpy()[0] > 1.0 and giou.numpy()[1] == 0.0
