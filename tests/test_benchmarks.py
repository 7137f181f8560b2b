"""The training benchmarks run end to end on tiny settings (their figures are not checked: they are timings and
scores of throwaway models; what is checked is that every table row and output appears)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bbe_mobile.modeling.network import ModelConfig
from bbe_mobile.training.data import AugmentConfig, CocoPersons
from bbe_mobile.training.train import TrainConfig, train

from conftest import COCO, SHARED, load_benchmark, need


@pytest.mark.slow  # builds two tiny models and times them (~1 min)
def test_train_profile_prints_every_measure_for_every_variant(capsys):
    need(SHARED / "data" / "coco-person-extra" / "instances_person_extra.json")
    profile = load_benchmark("train_profile")
    assert profile.main(["--alpha", "0.35", "--crop", "64", "--batch-size", "2", "--rounds", "1", "--steps", "1",
                         "--split-repeats", "1", "--variant", "freeze_blocks=4"]) == 0
    out = capsys.readouterr().out
    assert "| base |" in out and "| freeze_blocks=4 |" in out
    for column in ("pipeline alone", "model step (cached batch)", "whole run", "backbone", "aspp", "decoder",
                   "heads", "loss", "optimizer"):
        assert column in out


@pytest.mark.slow  # builds a tiny model (~20 s)
def test_train_profile_backward_sets_reach_every_variable():
    """Each backward of the split returns a gradient for every variable of its set (session 6's version passed the
    variables as a tf.function argument and got None for all of them), and the sets shrink stage by stage."""
    need(SHARED / "data" / "coco-person-extra" / "instances_person_extra.json")
    profile = load_benchmark("train_profile")
    built = profile.Profiled(profile.ProfileConfig(alpha=0.35, crop=64, batch_size=2), profile.training_sets())
    sizes = []
    for name, _, backward in built.cuts:
        grads = backward()
        assert grads and all(g is not None for g in grads), name
        sizes.append(len(grads))
    assert [name for name, _, _ in built.cuts] == ["backbone", "aspp", "decoder", "heads", "loss"]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 2  # the loss: the two outputs


def test_train_profile_rejects_a_bad_variant():
    profile = load_benchmark("train_profile")
    with pytest.raises(SystemExit, match="bad --variant item 'crop'"):
        profile.parse_variant(profile.ProfileConfig(), "crop")
    assert profile.parse_variant(profile.ProfileConfig(), "crop=320,threads=1").crop == 320


@pytest.mark.slow  # trains 4 steps of a tiny model and scores 2 snapshots on 332 val images at 64 px (~1 min)
def test_learning_curve_scores_every_snapshot_and_caches(coco_train, tmp_path, capsys):
    need(COCO / "instances_person_val.json")
    fixed = AugmentConfig(crop=64, base_size=64, paste_probability=0)
    ds = CocoPersons(*coco_train)
    ids = [i for i in ds.image_ids if ds.people_count(i)][:4]
    run = tmp_path / "run"
    train([CocoPersons(*coco_train, image_ids=ids)], run, ModelConfig(alpha=0.35, aspp_filters=8, decoder_filters=8),
          TrainConfig(steps1=4, steps2=0, batch_size=2, snapshot_every=2), fixed, input_size=64, progress=False)
    curve = load_benchmark("learning_curve")
    png, scores = tmp_path / "curve.png", tmp_path / "curve.json"
    assert curve.main([str(run), "--size", "64", "--png", str(png), "--json", str(scores)]) == 0
    rows = json.loads(scores.read_text())[str(run)]
    assert [r["step"] for r in rows] == [2, 4] and [r["images_seen"] for r in rows] == [4, 8]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "snapshots" / "step-000002" / "curve_64.json").is_file()
    assert "| run | 4 | 8 |" in capsys.readouterr().out
    # A run started from a bundle (train --init): its axis starts at the bundle's images seen (scores cached).
    assert curve.main([str(run), "--size", "64", "--images-before", f"{run}=100", "--json", str(scores)]) == 0
    assert [r["images_seen"] for r in json.loads(scores.read_text())[str(run)]] == [104, 108]
    assert curve.main([str(run), "--images-before", "100"]) == 1
    assert "RUN=IMAGES" in capsys.readouterr().err


@pytest.mark.slow  # trains 4 steps of a tiny model with a box tower and runs it on 4 training samples (~40 s)
def test_run_losses_and_head_bn_modes_read_a_real_run(coco_train, tmp_path, capsys):
    need(SHARED / "data" / "coco-person-extra" / "instances_person_extra.json")
    fixed = AugmentConfig(crop=64, base_size=64, paste_probability=0)
    run = tmp_path / "run"
    train([CocoPersons(*coco_train)], run, ModelConfig(alpha=0.35, aspp_filters=8, decoder_filters=8, box_tower=1),
          TrainConfig(steps1=4, steps2=0, batch_size=2, snapshot_every=4, log_every=1), fixed, input_size=64,
          progress=False)
    assert load_benchmark("run_losses").main([str(run), "--every", "2", "--window", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 2 | run |") or line.startswith("| 4 | run |")]
    assert len(rows) == 2 and all(line.count("(") == 3 for line in rows)
    snapshot = run / "snapshots" / "step-000004"
    assert load_benchmark("head_bn_modes").main([str(snapshot), "--images", "4", "--crop", "64"]) == 0
    out = capsys.readouterr().out
    assert f"| {snapshot} | inference (moving averages) |" in out and f"| {snapshot} | batch statistics |" in out


@pytest.mark.slow  # converts two tiny models to TFLite fp32 + int8 and times them (~1 min)
def test_export_latency_compares_two_models_in_one_interleaved_run(tmp_path, capsys):
    from test_export import make_bundle, write_images

    images = write_images(tmp_path / "images", 4, seed=1)
    small = make_bundle(tmp_path / "small")
    wide = tmp_path / "wide"
    wide.mkdir()
    for f in small.iterdir():  # the same network under another name: a second model in the table
        (wide / f.name).write_bytes(f.read_bytes())
    doc = json.loads((wide / "bbe.json").read_text())
    (wide / "bbe.json").write_text(json.dumps(doc | {"name": "wide"}))
    bench = load_benchmark("export_latency")
    out_json = tmp_path / "bench.json"
    code = bench.main(["--model", str(small), "--model", str(wide), "--out", str(tmp_path / "out"), "--variants",
                       "tflite:fp32,tflite:int8", "--calibration-images", str(images), "--num-calibration", "4",
                       "--verify-images", str(images), "--num-verify", "2", "--runs", "3", "--warmup", "1",
                       "--threads", "1,2", "--json", str(out_json)])
    assert code in (0, 1)  # 1: a variant failed verification (random tiny weights)
    text = capsys.readouterr().out
    names = [json.loads((d / "bbe.json").read_text())["name"] for d in (small, wide)]
    for name in names:
        for variant in ("tflite fp32", "tflite int8"):
            row = next(line for line in text.splitlines() if line.startswith(name + " ") and variant in line)
            assert row.count(" ± ") == 2, row  # median ± spread at 1 and 2 threads
        assert f"{name}: TFLite full-int8 vs fp32 at 2 threads" in text
    assert "AP drop ± std" in text  # the column is "-" here: no COCO json beside these images
    doc = json.loads(out_json.read_text())
    assert doc["models"] == names and len(doc["rows"]) == 4
    assert all(set(r["latency_iqr_ms"]) == {"1", "2"} for r in doc["rows"])


def test_int8_layer_error_measures_the_model_convert_ships(tmp_path, capsys):
    """The ``full`` row of benchmarks/int8_layer_error.py equals the verification of the artifact that
    ``convert`` writes (same calibration, same quantiser), and the single-layer table has its --top rows."""
    from test_export import make_bundle, write_images

    from bbe_mobile.export.convert import ExportOptions, export_artifact
    from bbe_mobile.export.verify import compare, select_images
    from bbe_mobile.export.runtime import KerasRunner, TFLiteRunner
    from bbe_mobile.modeling.bundle import load_bundle

    images = write_images(tmp_path / "images", 4, seed=2)
    bundle_dir = make_bundle(tmp_path / "tiny")
    code = load_benchmark("int8_layer_error").main([
        "--model", str(bundle_dir), "--calibration-images", str(images), "--num-calibration", "3",
        "--images", str(images), "--num-verify", "3", "--layer-images", "2", "--top", "5", "--variants", "full"])
    assert code == 0
    text = capsys.readouterr().out
    layer_rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(layer_rows) == 5 and all(float(r.split("|")[3]) >= 0 for r in layer_rows)
    full = next(line for line in text.splitlines() if line.startswith("| full |")).split("|")[2:7]

    bundle = load_bundle(str(bundle_dir))
    path = tmp_path / "tiny_int8.tflite"
    export_artifact(bundle, "tflite", "int8", path,
                    ExportOptions(calibration_images=str(images), num_calibration=3))
    m = compare(TFLiteRunner(path), KerasRunner(bundle), select_images(str(images), 3))
    expected = ["-" if v is None else f"{v:.4f}"
                for v in (m["prob_mean_abs"], m["offsets_mean_abs"], m["mask_iou"], m["instance_iou"])]
    assert [c.strip() for c in full[:4]] == expected


@pytest.mark.slow  # calibrates a tiny model twice, quantises it three times, scores each on 10 val images (~1.5 min)
def test_int8_cures_keeps_the_worst_layers_in_float_and_scores_each_cure(tiny_bundle, tmp_path, capsys):
    """benchmarks/int8_cures.py: ``float-worst-K`` has exactly K float ops more than full int8, the more-calibration
    row counts its images, and every row has its AP drop and the miss against the 0.01 gate."""
    need(COCO / "instances_person_val.json")
    need(SHARED / "data" / "coco-person-extra" / "images")
    code = load_benchmark("int8_cures").main([
        "--model", tiny_bundle, "--calibration", "train:3", "--more-calibration", "train:2,extra:1",
        "--float-layers", "2", "--layer-images", "2", "--num-verify", "2", "--num-accuracy", "10", "--runs", "2",
        "--warmup", "1", "--out", str(tmp_path / "cures"), "--json", str(tmp_path / "cures.json")])
    assert code == 0
    rows = {cells[1].strip(): [c.strip() for c in cells] for cells in
            (line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| "))}
    assert rows["full"][2] == "0" and rows["float-worst-2"][2] == "2" and "more-calibration (3 images)" in rows
    for name in ("full", "float-worst-2", "more-calibration (3 images)"):
        assert " ± " in rows[name][9] and (rows[name][10] == "passes" or float(rows[name][10]) > 0), rows[name]
    assert len(json.loads((tmp_path / "cures.json").read_text())["rows"]) == 3


def test_choose_threshold_regroups_one_set_of_maps_per_value(tiny_bundle, capsys, monkeypatch):
    """benchmarks/choose_t_iou.py --param t_nms: one row per value, the best one named; the model runs once per
    image, not once per value."""
    need(COCO / "instances_person_train.json")
    bench = load_benchmark("choose_t_iou")
    calls = []
    forward = bench.Predictor.forward
    monkeypatch.setattr(bench.Predictor, "forward", lambda self, image: calls.append(1) or forward(self, image))
    bench.main(["--model", str(tiny_bundle), "--size", "64", "--param", "t_nms", "--values", "0.3,0.5",
                "--modes", "paper,refine-mean"])
    lines = capsys.readouterr().out.splitlines()
    images = int(lines[0].split()[0])
    assert lines[1].split() == ["t_nms", "mode", "AP", "AP50", "AR100"]
    assert [line.split()[:2] for line in lines[2:6]] == [["0.30", "paper"], ["0.50", "paper"],
                                                         ["0.30", "refine-mean"], ["0.50", "refine-mean"]]
    assert lines[6].startswith("best paper t_nms ") and "; refine-mean t_nms " in lines[6]
    assert len(calls) == images > 0
    with pytest.raises(SystemExit):
        bench.main(["--model", str(tiny_bundle), "--modes", "paper,fancy"])


@pytest.mark.slow
def test_grouper_modes_ap_regroups_cached_maps(tiny_bundle, tmp_path, capsys, monkeypatch):
    """benchmarks/grouper_modes_ap.py: one row per variant on both dev sets; the model runs once per image, and
    not at all once the maps are cached."""
    need(COCO / "val")
    from bbe_mobile.predictor import Predictor

    bench = load_benchmark("grouper_modes_ap")
    calls = []
    forward = Predictor.forward
    monkeypatch.setattr(Predictor, "forward", lambda self, image: calls.append(1) or forward(self, image))
    args = ["--model", str(tiny_bundle), "--size", "64", "--cache", str(tmp_path), "--variants", "paper,refine x2"]
    bench.main(args)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| paper") or
            line.startswith("| refine x2")]
    assert len(rows) == 2 and all(len(row.split("|")) == 13 for row in rows)
    assert len(calls) == 32 + 300
    bench.main(args[:-1] + ["refine x2", "--versus", "paper", "--samples", "20"])
    assert len(calls) == 32 + 300
    out = capsys.readouterr().out.split("paired bootstrap (20 samples)")[1]
    versus = [line for line in out.splitlines() if line.startswith("| refine x2")]
    assert len(versus) == 1 and versus[0].count(" ± ") == 2 and versus[0].count(" to ") == 2
    with pytest.raises(SystemExit):
        bench.main(args[:-1] + ["median"])


def test_paired_bootstrap_of_a_grouping_against_itself_is_zero():
    bench = load_benchmark("grouper_modes_ap")
    gt = {"gtIgnore": np.zeros(2), "dtScores": [0.9, 0.5], "dtMatches": np.array([[1, 0]] * 10),
          "dtIgnore": np.zeros((10, 2))}
    worse = {**gt, "dtMatches": np.array([[0, 1]] * 10)}
    assert bench.paired_difference([gt, None, gt], [gt, None, gt], 50) == (0.0, 0.0, 0.0, 0.0)
    difference, std, low, high = bench.paired_difference([gt, gt], [worse, worse], 50)
    assert difference > 0 and low <= difference <= high and std >= 0


def test_grouper_modes_speed_times_each_mode_and_its_ratio(capsys, monkeypatch):
    module = load_benchmark("grouper_modes_speed")
    monkeypatch.setattr("sys.argv", ["grouper_modes_speed.py", "--repeats", "2", "--runs", "2", "--tools", "numpy",
                                     "--case", "bench_65_10"])
    module.main()
    out = capsys.readouterr().out
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| numpy")]
    assert [r[1] for r in rows] == ["bench_65_10", "bench_65_10_refine"]  # bench_65_10 has no mean variant
    assert rows[1][4].endswith("target <= 1.5x |")
    monkeypatch.setattr("sys.argv", ["grouper_modes_speed.py", "--tools", "fortran"])
    with pytest.raises(SystemExit):
        module.main()
