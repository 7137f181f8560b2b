"""The tracker's place in ``bench``: the NumPy row on the golden sequence, and device files may carry tracker rows."""
from bbe_mobile.bench import device_results, groupers


def test_numpy_tracker_row_checks_ids_and_times_per_frame():
    row = groupers.time_numpy_tracker(runs=3, warmup=1)
    assert row["kind"] == "tracker" and row["name"] == "track_bench_129_10"
    assert (row["height"], row["width"], row["people"], row["frames"]) == (129, 129, 10, 8)
    assert 0 < row["min_ms"] <= row["median_ms"] <= row["p90_ms"]


def test_device_files_may_carry_tracker_rows():
    row = {"kind": "tracker", "name": "track_bench_129_10", "median_ms": 0.08, "p90_ms": 0.09}
    doc = {"format": "bbe-bench/1", "source": "swift-grouper", "device": "host", "runs": 5, "warmup": 1,
           "results": [row]}
    assert device_results.validate_bench_doc(doc, "test")["results"][0]["kind"] == "tracker"
