"""``bbe-mobile bench`` (bbe_mobile/bench/): fast checks on the tiny bundle with a handful of runs."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import COCO

from bbe_mobile.bench import device_profiles, device_results, formats, run, timing
from bbe_mobile.bench import options as bench_options
from bbe_mobile.cli import main

HAVE_CALIBRATION = (COCO / "train").is_dir()  # full-int8 TFLite needs calibration images from ../shared

DEVICE_DOC = {
    "format": "bbe-bench/1", "source": "ios-app", "device": "iPhone9,3", "runs": 50, "warmup": 5,
    "results": [
        {"kind": "grouper", "name": "bench_129_5", "height": 129, "width": 129, "people": 5,
         "median_ms": 1.42, "p90_ms": 1.61, "min_ms": 1.30},
        {"kind": "model", "name": "bbe_mnv2_035.mlpackage", "precision": "fp16", "compute_units": "all",
         "median_ms": 31.0, "p90_ms": 35.5, "extra": "ignored"},
        {"kind": "total", "name": "camera", "median_ms": 40.2, "p90_ms": 44.0},
    ],
}


def test_mode_pairs_match_each_refine_row_with_its_paper_row():
    from bbe_mobile.bench.groupers import mode_pairs, refine_label

    rows = [{"name": "bench_129_10", "median_ms": 0.5}, {"name": "bench_65_1", "median_ms": 0.2},
            {"name": "bench_129_10_refine", "median_ms": 0.8}, {"name": "lonely_refine", "median_ms": 1.0},
            {"name": "bench_129_10_refine_mean", "median_ms": 0.6}]
    assert mode_pairs(rows) == [(rows[0], rows[2]), (rows[0], rows[4])]
    assert [refine_label(*pair) for pair in mode_pairs(rows)] == ["bench_129_10", "bench_129_10 mean"]


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    """One --out directory for the module: the artifact cache under it is reused by later runs."""
    return tmp_path_factory.mktemp("bench_out")


def _base_args(tiny_bundle, out) -> list[str]:
    return ["bench", "--model", tiny_bundle, "--runs", "2", "--warmup", "1", "--grouper-runs", "2",
            "--threads", "1,2", "--num-verify", "1", "--num-accuracy", "2", "--num-calibration", "2", "--no-progress",
            "--out", str(out)]


@pytest.mark.slow  # converts full-int8 TFLite and Core ML, times six formats
def test_cli_end_to_end_estimates_device_file_and_missing_toolchains(tiny_bundle, bench_out, tmp_path, monkeypatch):
    device_file = tmp_path / "bbe-bench-iPhone9,3.json"
    device_file.write_text(json.dumps(DEVICE_DOC))
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no swift, no java: both grouper benches must be skipped with a note
    result = CliRunner().invoke(main, _base_args(tiny_bundle, bench_out) + [
        "--formats", "keras,tflite-fp32,tflite-int8,coreml-fp16", "--device", "iphone7", "--no-peers",
        "--from-device", str(device_file)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for name in ("bench_iphone7.json", "bench_iphone7.md", "bench_iphone7.png"):
        assert (bench_out / name).is_file()
    assert (bench_out / "bench_iphone7.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads((bench_out / "bench_iphone7.json").read_text())
    # the grouper rows and the paper's 1-2 ms reference
    assert "| bench_129_5 | 129x129 | 5 |" in out and "| bench_257_20 |" in out and "| bench_65_1 |" in out
    assert "1-2 ms" in out and "paper: grouping 1-2 ms on an iPhone 7" in out
    # both grouper modes: the refine rows and their ratio to the paper's mode on the same maps
    assert "| bench_129_10_refine | 129x129 | 10 |" in out
    assert "Mode refine against the paper's mode" in out and "- numpy: bench_65_10 " in out
    # estimates are labelled as such
    assert "ESTIMATE for iPhone 7" in out and "(est." in out and "estimates, not measurements" in out
    assert doc["estimates"]["factor"] == pytest.approx(1000 / 740)
    assert doc["estimates"]["grouper_source"] == "numpy"
    # missing toolchains: skipped with a clear note
    sources = {g["source"]: g for g in doc["groupers"]}
    assert sources["numpy"]["status"] == "ok" and len(sources["numpy"]["results"]) >= 9
    assert sources["swift"]["status"] == "skipped" and "swift not found" in sources["swift"]["note"]
    assert sources["kotlin"]["status"] == "skipped" and "java" in sources["kotlin"]["note"]
    assert "swift not found on PATH" in out
    # BBE / semantic-only latency ratio for fp32 and int8 TFLite, each thread count
    ratios = {(t["precision"], t["threads"]) for t in doc["twin"]}
    expected = {("fp32", 1), ("fp32", 2)} | ({("int8", 1), ("int8", 2)} if HAVE_CALIBRATION else set())
    assert ratios == expected
    assert all(t["ratio"] > 0 for t in doc["twin"])
    assert "ratio BBE/semantic" in out
    # formats: sizes, latencies, Core ML size only
    rows = {r["format"]: r for r in doc["formats"]}
    assert rows["tflite-fp32"]["latency"]["1"]["runs"] == 2
    if HAVE_CALIBRATION:
        assert rows["tflite-int8"]["latency"]["2"]["median_ms"] > 0
        assert rows["tflite-int8"]["verify"]["status"] in ("passed", "failed")
    assert rows["coreml-fp16"]["size_mb"] > 0 and rows["coreml-fp16"]["latency"] == {}
    assert "n/a (macOS)" in out
    # the device file is shown and compared with the paper
    assert "Measured on device" in out and "iPhone9,3" in out and "within 1-2 ms" in out
    assert doc["from_device"][0]["results"][1]["median_ms"] == 31.0


def test_cli_host_reuses_cache(tiny_bundle, tmp_path, monkeypatch):
    """The quick end-to-end run of ``bench``: host measurements, no estimates; the second run reuses the
    artifact the first one converted."""
    monkeypatch.setenv("PATH", "/nonexistent")
    args = _base_args(tiny_bundle, tmp_path) + ["--formats", "tflite-fp32", "--grouper-sources", "numpy", "--no-peers"]
    notes = []
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        doc = json.loads((tmp_path / "bench_host.json").read_text())
        notes.append(doc["formats"][0]["note"])
    assert notes[0] != "cached" and notes[1] == "cached"
    assert doc["estimates"] is None and "ESTIMATE" not in result.stdout
    assert [t["precision"] for t in doc["twin"]] == ["fp32", "fp32"]
    assert doc["formats"][0]["latency"]["1"]["runs"] == 2
    assert (tmp_path / "bench_host.png").is_file()


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    (json.dumps({"format": "bbe-bench/0", "results": []}), "'format'"),
    (json.dumps({"format": "bbe-bench/1", "results": []}), "non-empty list"),
    (json.dumps({"format": "bbe-bench/1", "results": [{"kind": "grouper", "median_ms": "fast", "p90_ms": 1}]}),
     "median_ms"),
    (json.dumps({"format": "bbe-bench/1", "results": [{"kind": "gpu", "median_ms": 1, "p90_ms": 1}]}), "kind"),
    (json.dumps([1, 2]), "JSON object"),
])
def test_malformed_device_file_is_one_line_error_exit_2(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = CliRunner().invoke(main, ["bench", "--from-device", str(bad), "--no-progress",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "not a valid bbe-bench/1 results file" in lines[0] or "invalid JSON" in lines[0]


def test_missing_device_file_and_bad_arguments(tmp_path):
    runner = CliRunner()
    for args, message in ((["--from-device", str(tmp_path / "nope.json")], "results file not found"),
                          (["--device", "nokia3310"], "unknown device"),
                          (["--formats", "tflite-int4"], "unknown format"),
                          (["--threads", "0"], "--threads")):
        result = runner.invoke(main, ["bench", "--no-progress", *args])
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr


def test_valid_documents_accepted():
    assert device_results.validate_bench_doc(DEVICE_DOC, "x")["device"] == "iPhone9,3"
    minimal = {"format": "bbe-bench/1", "results": [{"kind": "model", "median_ms": 0, "p90_ms": 0.1}]}
    assert device_results.validate_bench_doc(minimal, "x") is minimal
    text = "compiling...\n" + json.dumps(DEVICE_DOC)
    assert device_results.parse_bench_stdout(text, "bench")["source"] == "ios-app"


def test_profiles_document_their_method():
    names = device_profiles.profile_names()
    assert {"iphone7", "iphone12", "iphone15", "pixel4", "pixel8", "host"} <= set(names)
    for name in names:
        profile = device_profiles.load_profile(name)
        if profile["kind"] == "phone":
            assert profile["single_core"]["source"].startswith("Geekbench Browser")
            assert "ASSUMED" in profile["host_reference"]["how"]
            assert profile["limits"] and profile["method"]
            assert device_profiles.speed_factor(profile) > 0
        else:
            assert device_profiles.speed_factor(profile) is None


def test_helpers():
    stats = timing.summarize([1, 2, 3, 4, 100])
    assert stats["median_ms"] == 3 and stats["p90_ms"] > 4 and stats["iqr_ms"] == 2 and stats["runs"] == 5
    assert device_results.paper_verdict(0.5) == "below 1 ms" and device_results.paper_verdict(1.5) == "within 1-2 ms"
    assert device_results.paper_verdict(2.5) == "above 2 ms"
    assert bench_options.parse_formats("all") == tuple(bench_options.FORMATS)
    assert bench_options.parse_threads("1,2,2") == (1, 2)
    calls = []
    times = timing.time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, runs=3, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 3 and len(times["a"]) == 3


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.mark.parametrize("args, message", [
    (["--grouper-runs", "0"], "--grouper-runs"),
    (["--grouper-runs", "-3"], "--grouper-runs"),
    (["--grouper-sources", "numpy,rust"], "unknown grouper source 'rust'"),
    (["--eval-images", "nope", "--eval-annotations", "nope.json"], "images directory not found"),
    (["--verify-images", "nope"], "--verify-images: image directory not found"),
    (["--calibration-images", "nope"], "--calibration-images: image directory not found"),
])
def test_bad_arguments_fail_before_the_model_is_loaded(tmp_path, args, message):
    # the model does not exist: an error about the argument means it was checked first
    result = CliRunner().invoke(main, ["bench", "--model", str(tmp_path / "no-model"), "--no-progress",
                                       "--out", str(tmp_path / "o"), *args])
    _one_line_error(result, message)
    assert not (tmp_path / "o").exists()


def test_grouper_warmup_below_one_is_rejected():
    with pytest.raises(bench_options.BenchError, match="grouper warm-up"):
        run.run_bench(bench_options.BenchOptions(model="/nonexistent", grouper_warmup=0, progress=False))


PHONE = json.loads((device_profiles.PROFILES_DIR / "iphone7.json").read_text())


@pytest.mark.parametrize("profile, message", [
    ([PHONE], "top level must be a JSON object"),
    ({k: v for k, v in PHONE.items() if k != "method_short"}, "needs 'method_short'"),
    ({k: v for k, v in PHONE.items() if k != "limits"}, "needs 'limits'"),
    ({**PHONE, "single_core": {"score": 740}}, "needs 'single_core.benchmark'"),
    ({**PHONE, "host_reference": "1000"}, "needs 'host_reference.score'"),
    ({**PHONE, "host_reference": {**PHONE["host_reference"], "score": 0}}, "positive"),
    ({**PHONE, "name": "../x"}, "'name' '../x'"),
    ({**PHONE, "name": ".hidden"}, "'name'"),
    ({"name": "mine"}, "'kind'"),
])
def test_bad_device_profile_is_one_line_error(tmp_path, profile, message):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(profile))
    with pytest.raises(bench_options.BenchError, match="bad device profile"):
        device_profiles.load_profile(str(path))
    result = CliRunner().invoke(main, ["bench", "--device", str(path), "--no-progress", "--out", str(tmp_path / "o")])
    _one_line_error(result, message)
    assert not (tmp_path / "o").exists() and not (tmp_path / "x").exists()


def test_custom_profile_defaults_its_name_to_the_file_name(tmp_path):
    path = tmp_path / "my-phone.json"
    path.write_text(json.dumps({k: v for k, v in PHONE.items() if k != "name"}))
    assert device_profiles.load_profile(str(path))["name"] == "my-phone"


HUGE = "1" + "0" * 400  # a JSON int too large for a float


@pytest.mark.parametrize("row, message", [
    (f'{{"kind": "grouper", "median_ms": {HUGE}, "p90_ms": 1}}', "median_ms must be a non-negative finite"),
    (f'{{"kind": "grouper", "median_ms": 1, "p90_ms": {HUGE}}}', "p90_ms must be a non-negative finite"),
    ('{"kind": "grouper", "median_ms": 1, "p90_ms": 2, "min_ms": NaN}', "min_ms must be a non-negative finite"),
    ('{"kind": "grouper", "median_ms": 1, "p90_ms": 2, "min_ms": -1}', "min_ms"),
    ('{"kind": "grouper", "median_ms": 1, "p90_ms": Infinity}', "p90_ms"),
    ('{"kind": "grouper", "median_ms": 2, "p90_ms": 1}', "p90_ms 1 is below median_ms 2"),
])
def test_out_of_range_times_are_one_line_errors(tmp_path, row, message):
    bad = tmp_path / "bad.json"
    bad.write_text(f'{{"format": "bbe-bench/1", "results": [{row}]}}')
    result = CliRunner().invoke(main, ["bench", "--from-device", str(bad), "--no-progress",
                                       "--out", str(tmp_path / "o")])
    _one_line_error(result, message)


def test_outputs_need_finite_figures_and_write_nothing_otherwise(tmp_path):
    with pytest.raises(bench_options.BenchError, match="non-finite"):
        run.write_outputs({"profile": {"name": "host"}, "seconds": float("nan")}, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert run._plain({"a": np.float32(1.5), "b": [np.int64(2)], "c": np.arange(2)}) == \
        {"a": 1.5, "b": [2], "c": [0, 1]}


def test_cache_key_covers_bbe_json_and_calibration(tmp_path):
    bundle_dir = tmp_path / "b"
    bundle_dir.mkdir()
    (bundle_dir / "model.keras").write_bytes(b"weights")
    (bundle_dir / "bbe.json").write_text('{"name": "a"}')
    images = tmp_path / "cal"
    images.mkdir()
    for k in range(3):
        (images / f"{k}.jpg").write_bytes(b"x")
    fake = SimpleNamespace(name="m", input_size=64)

    def key(**kw):
        options = bench_options.BenchOptions(calibration_images=str(images), num_calibration=kw.get("n", 100))
        return formats.cache_dir(tmp_path, fake, bundle_dir / "model.keras", options).name

    first = key()
    assert first.endswith("_cal3") and key(n=2).endswith("_cal2")
    (bundle_dir / "bbe.json").write_text('{"name": "b"}')
    assert key() != first
