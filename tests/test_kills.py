"""A few of ``benchmarks/kill_stress.py``'s kills (issue 15): each command is SIGKILLed while it writes its
outputs, a checkpoint or a snapshot, and what it leaves must be nothing or complete (``train``: resumable from its
newest intact checkpoint). The full stress run stays a script; these reuse its functions. The checkers themselves
are shown to fail on half-written outputs."""
from __future__ import annotations

import json

import pytest

from conftest import COCO, load_benchmark, need

stress = load_benchmark("kill_stress")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    need(COCO / "instances_person_val.json")
    need(COCO / "instances_person_train.json")
    return stress.make_fixture(tmp_path_factory.mktemp("kills"), COCO)


def _assert_clean(result, outcomes):
    assert not result.problems, result.problems
    assert result.outcome in outcomes


def test_the_checks_fail_on_half_written_outputs(tmp_path):
    """A truncated PNG, a JSON cut short, a JSON without its PNG, two PNGs without their JSON (one may: the
    kill fell between the renames of the image being written) and a half-written snapshot are failures."""
    from PIL import Image

    fx = stress.Fixture(tmp_path, COCO, tmp_path / "b", tmp_path, tmp_path, ("a.jpg", "b.jpg"), 1)
    out = tmp_path / "predict"
    out.mkdir()
    Image.new("RGB", (32, 32)).save(out / "a.png")
    (out / "a.png").write_bytes((out / "a.png").read_bytes()[:40])
    (out / "a.json").write_text(json.dumps({"image": "a.jpg", "height": 1, "width": 1, "instances": []})[:20])
    Image.new("RGB", (8, 8)).save(out / "b.png")
    one_unrecorded = stress.check_predict(out, fx)
    assert [p.split(":")[0].split(" ")[0] for p in one_unrecorded.problems] == ["a.json", "a.png"]
    assert one_unrecorded.note == "b.png without its JSON"
    Image.new("RGB", (8, 8)).save(out / "c.png")
    (out / "d.json").write_text(json.dumps({"image": "d.jpg", "height": 1, "width": 1, "instances": []}))
    problems = stress.check_predict(out, fx).problems
    assert [p.split(":")[0].split(" ")[0] for p in problems] == ["a.json", "a.png", "d", "2"], problems
    evaluation = tmp_path / "eval"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text('{"person_iou": 0.5, "ima')
    assert stress.check_eval(evaluation, fx).problems == [
        "metrics.json does not parse: Unterminated string starting at: line 1 column 21 (char 20)"]
    (tmp_path / "run" / "snapshots" / "step-000004").mkdir(parents=True)
    (tmp_path / "run" / "snapshots" / "step-000004" / "model.keras").write_bytes(b"PK")
    assert stress.bundle_problems(tmp_path / "run")[0].startswith(
        "snapshots/step-000004 is not a loadable bundle (model.keras present, bbe.json absent)")
    (tmp_path / "run" / ".tmp-1234abcd-model.keras").write_bytes(b"")
    assert stress.leftover_temps(tmp_path / "run") == [".tmp-1234abcd-model.keras"]


@pytest.mark.slow  # three conversions killed mid-write, each artifact verified (~1 min)
@pytest.mark.parametrize("target", ["tflite", "onnx", "coreml"])
def test_convert_killed_while_writing_leaves_nothing_or_a_verified_artifact(fx, tmp_path, target):
    out = tmp_path / "out"
    # the 2nd change of the output directory: the artifact is at its temporary path, its report being written
    result, _, _ = stress.kill_and_check(f"convert-{target}", fx, out, 300, stress.directory_changes([out], 2))
    _assert_clean(result, {"nothing", "complete"})


@pytest.mark.slow  # two short training runs killed, each rerun (~2 min)
@pytest.mark.parametrize("watch", ["snapshots", "checkpoints"])
def test_train_killed_while_saving_resumes_from_its_newest_intact_checkpoint(fx, tmp_path, watch):
    """Killed as the first snapshot (step 4, just after checkpoint 4) or a checkpoint starts being written: the
    rerun says it resumes from the newest intact checkpoint, and every snapshot loads, before and after it."""
    out = tmp_path / "run"
    changes = 1 if watch == "snapshots" else 2  # the first snapshot's directory appears; a checkpoint's files do
    result, _, _ = stress.kill_and_check("train", fx, out, 300, stress.directory_changes([out / watch], changes))
    _assert_clean(result, {"nothing", "resumed"})
    if watch == "snapshots":
        assert result.note == "rerun from step 4"


@pytest.mark.slow  # predict and eval killed mid-write (~30 s)
@pytest.mark.parametrize(("command", "write"), [("predict", 5), ("eval", 2)])
def test_predict_and_eval_killed_while_writing_leave_complete_files(fx, tmp_path, command, write):
    out = tmp_path / "out"
    result, _, _ = stress.kill_and_check(command, fx, out, 300, stress.directory_changes([out], write))
    _assert_clean(result, {"nothing", "partial", "complete"})


def test_runs_that_exit_before_their_kill_do_not_count_as_kills(tmp_path, monkeypatch):
    """``--kills N`` means N real kills per command: a run that ends before its kill comes is counted apart
    ("exited first") and another run is made, up to 3 x N runs."""
    monkeypatch.setattr(stress, "measure", lambda command, fx, work: 1.0)
    killed_runs = {"eval": [False, True, False, False, True], "predict": [False] * 20}
    calls = {c: 0 for c in killed_runs}

    def fake_kill_once(command, fx, work, index, typical, rng, keep=False):
        assert index == calls[command]
        killed = killed_runs[command][index]
        calls[command] += 1
        return stress.Check("complete" if not killed else "nothing"), "run", killed

    monkeypatch.setattr(stress, "kill_once", fake_kill_once)
    tallies = stress.stress(["eval", "predict"], 2, 0, None, tmp_path, say=lambda *a, **k: None)
    assert (tallies["eval"].kills, tallies["eval"].exited, calls["eval"]) == (2, 3, 5)
    assert (tallies["predict"].kills, tallies["predict"].exited, calls["predict"]) == (0, 6, 6)  # capped at 3 x 2
    assert tallies["eval"].outcomes["complete"] == 3 and tallies["eval"].outcomes["nothing"] == 2
    assert "| eval | 1.0 | 2 | 3 |" in stress.format_table(tallies)
