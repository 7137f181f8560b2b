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
from conftest import GOLDEN, ROOT, need


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
    lines = result.stdout.strip().splitlines()  # one line per image (no bar: stderr is not a terminal)
    assert len(lines) == len(images)
    for line, image in zip(lines, images):
        doc = json.loads((tmp_path / f"{image.stem}.json").read_text())
        people = len(doc["instances"])
        assert line == (f"{image}: {people} {'person' if people == 1 else 'people'} -> "
                        f"{tmp_path / (image.stem + '.png')}, {tmp_path / (image.stem + '.json')}")
    for image in images:
        doc = json.loads((tmp_path / f"{image.stem}.json").read_text())
        assert (tmp_path / f"{image.stem}.png").stat().st_size > 1000
        for inst in doc["instances"]:
            mask = mask_utils.decode(inst["segmentation"])
            assert mask.shape == (doc["height"], doc["width"]) and 0 <= inst["score"] <= 1
    assert not list(tmp_path.glob(".tmp-*"))


def test_predict_bad_inputs(tiny_bundle, coco_val, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(text), "--model", tiny_bundle,
                           "--out", str(tmp_path / "o")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: not a readable image" in proc.stderr and not (tmp_path / "o").exists()
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(text), "--model",
                           str(tmp_path / "missing")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    image = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(image), "--model", tiny_bundle,
                           "--out", str(tmp_path / "o"), "--grouper-mode", "refine", "--refine-rounds", "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "refine_rounds must be" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_predict_works_in_the_displayed_orientation_and_refuses_animations(tiny_bundle, coco_val, tmp_path):
    """A real photo stored sideways with EXIF orientation 6 (as phones save portraits): the JSON and the overlay
    are in the displayed (upright) size and the result equals the upright file's; an animated GIF is refused in
    one line, before anything is written."""
    from PIL import Image

    photo = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    with Image.open(photo) as im:
        upright = im.convert("RGB")
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees counter-clockwise, displayed turned back clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "sideways.png", exif=exif)
    result = run("predict", tmp_path / "upright.png", tmp_path / "sideways.png", "--model", tiny_bundle, "--out",
                 tmp_path / "out", "--t-c", "0.1", "--t-fg", "0.1")
    assert result.exit_code == 0, result.output
    docs = {n: json.loads((tmp_path / "out" / f"{n}.json").read_text()) for n in ("upright", "sideways")}
    assert (docs["sideways"]["height"], docs["sideways"]["width"]) == (upright.height, upright.width)
    assert docs["sideways"]["instances"] == docs["upright"]["instances"]
    with Image.open(tmp_path / "out" / "sideways.png") as overlay:
        assert overlay.size == upright.size
    upright.save(tmp_path / "anim.gif", save_all=True, append_images=[upright.rotate(10)])
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "predict", str(tmp_path / "anim.gif"),
                           "--model", tiny_bundle, "--out", str(tmp_path / "o2")], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'anim.gif'} holds 2 frames (GIF); save the frame to segment as an image of its own")
    assert not (tmp_path / "o2").exists()


def test_missing_model_file(coco_val, tmp_path):
    image = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    result = CliRunner().invoke(main, ["predict", str(image), "--model", str(tmp_path / "none")])
    assert result.exit_code == 2 and "model not found" in result.output


def test_eval_metrics_reproduce_pycocotools_from_results_json(tiny_bundle, coco_val, tmp_path):
    """Also: without --size, eval letterboxes to the model's own input size (64 for the tiny bundle)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    results, metrics = tmp_path / "r.json", tmp_path / "m.json"
    result = run("eval", "--images", coco_val[0], "--annotations", coco_val[1], "--model", tiny_bundle,
                 "--subset", "multi", "--limit", "3", "--results", results, "--metrics-json", metrics,
                 "--t-c", "0.1", "--t-fg", "0.1", "--t-iou", "0.1", "--grouper-mode", "refine", "--refine-rounds", "2")
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("letterbox size 64 px")
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


OUTPUT_DIRS = {("predict", "out_dir"), ("convert", "out_dir"), ("bench_command", "out_dir")}  # cwd-relative on purpose


def test_default_paths_resolve_from_the_package_not_the_cwd():
    """Every default that names an input (weights, golden files, sample data) is absolute; only output
    directories are relative to where the command runs."""
    from bbe_mobile.utils import paths

    checked = 0
    for command in main.commands.values():
        for param in command.params:
            default = param.default
            if isinstance(default, str) and "/" in default:
                checked += 1
                if (command.callback.__name__, param.name) not in OUTPUT_DIRS:
                    assert Path(default).is_absolute(), (command.name, param.name, default)
    assert checked >= 3  # golden --out, --coco-images, --coco-annotations
    assert paths.MOBILENET_V2_WEIGHTS == {
        0.35: paths.SHARED / "weights" / "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5",
        1.0: paths.SHARED / "weights" / "mobilenet_v2_1.0_movenet_lightning_no_top.weights.h5"}
    assert all(p.is_absolute() for p in paths.MOBILENET_V2_WEIGHTS.values())
    assert paths.GOLDEN_DIR == GOLDEN and paths.REPO_ROOT == ROOT


def test_train_from_another_directory_loads_the_default_backbone_weights(coco_train, tmp_path):
    """``bbe-mobile train`` started elsewhere finds the default weights beside the checkout and says so."""
    from bbe_mobile.utils import paths

    default = need(paths.MOBILENET_V2_WEIGHTS[1.0])  # the person-trained MoveNet backbone
    images, annotations = coco_train
    proc = subprocess.run([sys.executable, "-m", "bbe_mobile.cli", "train", "--train-set", images, annotations,
                           "--out", "run", "--crop", "64", "--base-size", "64", "--input-size", "64",
                           "--batch-size", "2", "--max-steps", "1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"backbone weights {default}: copied into 102 layers" in proc.stdout, proc.stdout
    assert "steps 1/" in proc.stdout and (tmp_path / "run" / "checkpoints").is_dir()


def test_initial_weights_messages(tmp_path, capsys, monkeypatch):
    """What ``train`` says before it builds the model (the e2e tests below and above run the real thing)."""
    import logging

    from bbe_mobile import cli
    from bbe_mobile.utils import paths

    cli._say_initial_weights("mobilenet_v2", 0.35, None, str(tmp_path / "b"), str(tmp_path / "run"))
    assert capsys.readouterr().out == f"initial weights: every layer from --init {tmp_path / 'b'} (no backbone " \
                                      "weights loaded)\n"
    monkeypatch.setitem(paths.MOBILENET_V2_WEIGHTS, 0.35, tmp_path / "absent.weights.h5")
    cli._say_initial_weights("mobilenet_v2", 0.35, None, None, str(tmp_path / "run"))
    assert capsys.readouterr().out == (f"backbone weights: none ({tmp_path / 'absent.weights.h5'} is absent; pass "
                                       "--backbone-weights): starting from random weights\n")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    cli._say_initial_weights("resnet50", 1.0, "w.h5", None, str(tmp_path / "run"))  # no checkpoint
    assert capsys.readouterr().out == ""
    # a checkpoint without the state file naming it (a run killed before TF wrote that file) still resumes
    (tmp_path / "run" / "checkpoints" / "ckpt-2.index").write_bytes(b"")
    cli._say_initial_weights("resnet50", 1.0, "w.h5", None, str(tmp_path / "run"))
    logging.getLogger("bbe_mobile.modeling.network").info("backbone weights %s: copied into %d layers", "w.h5", 3)
    assert capsys.readouterr().out == (f"resuming from the last checkpoint in {tmp_path / 'run'}: its weights "
                                       "replace the initial ones below\nbackbone weights w.h5: copied into 3 layers\n")


@pytest.mark.slow  # builds two models and starts training twice (~6 s)
def test_train_says_plainly_when_it_starts_without_backbone_weights(coco_train, tmp_path):
    images, annotations = coco_train
    common = ["train", "--train-set", images, annotations, "--crop", "64", "--input-size", "64", "--max-steps", "0"]
    result = run(*common, "--out", tmp_path / "random", "--alpha", "0.5")
    assert result.exit_code == 0, result.output
    assert ("backbone weights: none (there is no default for mobilenet_v2 alpha 0.5; pass --backbone-weights): "
            "starting from random weights") in result.output
    assert "copied into" not in result.output
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.bundle import save_bundle
    from bbe_mobile.modeling.network import ModelConfig, build_bbe

    init = save_bundle(tmp_path / "init", build_bbe(64), ModelConfig(), 64, GrouperConfig(), "init")
    result = run(*common, "--out", tmp_path / "fine", "--init", init)
    assert result.exit_code == 0, result.output
    assert f"initial weights: every layer from --init {init} (no backbone weights loaded)" in result.output
    assert "copied into" not in result.output


def _cli(*args, env_extra=None):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "BBE_VERBOSE")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "bbe_mobile.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.slow  # three processes that import TensorFlow (~20 s each on the loaded 2-core machine)
def test_commands_are_quiet_by_default_and_verbose_brings_the_start_up_lines_back(tiny_bundle, coco_val, tmp_path):
    image = sorted(Path(coco_val[0]).glob("*.jpg"))[0]
    quiet = _cli("predict", image, "--model", tiny_bundle, "--out", tmp_path / "q")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    for flag, env in ((["--verbose"], None), ([], {"BBE_VERBOSE": "1"})):
        loud = _cli(*flag, "predict", image, "--model", tiny_bundle, "--out", tmp_path / "v", env_extra=env)
        assert loud.returncode == 0 and "absl::InitializeLog" in loud.stderr, (flag, env, loud.stderr)


def test_start_up_lines_are_hidden_and_other_lines_kept():
    """The filter works on file descriptor 2 (where C++ libraries write), not only on sys.stderr."""
    code = ("import os; from bbe_mobile.utils.quiet import start_up_lines_hidden\n"
            "with start_up_lines_hidden():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n"
            "I0000 00:00:1796420579.450861   15844 port.cc:153] oneDNN custom operations are on. You may see\\n"
            "a real error\\n')\n")
    import os

    for env, expected in (({}, "a real error\n"), ({"BBE_VERBOSE": "1"}, None)):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**{k: v for k, v in os.environ.items() if k != "BBE_VERBOSE"}, **env,
                                   "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == expected if expected else proc.stderr.count("\n") == 3, proc.stderr
