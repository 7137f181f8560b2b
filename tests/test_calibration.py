"""Full-int8 TFLite with measured ranges (bbe_mobile/calibration.py) on the tiny model of test_export."""
import numpy as np
import pytest

from bbe_mobile.export import calibration, tflite as export_tflite
from bbe_mobile.export.runtime import litert_interpreter_class
from bbe_mobile.export.tflite_metadata import tflite_schema
from tests.test_export import bundle, bundle_dir, canvas, images_dir, options  # noqa: F401 (fixtures)


def _run(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    interpreter = litert_interpreter_class()(model_content=data)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None])
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


def _recorded(calibrated: bytes) -> dict[int, tuple[str, float, float]]:
    graph = tflite_schema().ModelT.InitFromPackedBuf(bytearray(calibrated), 0).subgraphs[0]
    return {i: (graph.tensors[i].name.decode(), graph.tensors[i].quantization.min[0], graph.tensors[i].quantization.max[0])
            for i in calibration._recorded_tensors(graph)}


@pytest.fixture(scope="module")
def captured(bundle, options, monkeypatch_module):
    """The calibrated float model and the measured ranges of one int8 conversion of the tiny bundle."""
    seen = {}
    original = calibration.with_ranges

    def capture(calibrated, ranges):
        seen.update(calibrated=calibrated, ranges=ranges)
        return original(calibrated, ranges)

    monkeypatch_module.setattr(calibration, "with_ranges", capture)
    data, _ = export_tflite.convert_tflite_bytes(bundle, "int8", options)
    return seen | {"data": data}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_measured_ranges_lie_inside_the_recorded_ones_and_fix_residual_inputs(captured):
    recorded = _recorded(captured["calibrated"])
    assert set(captured["ranges"]) == set(recorded) and len(recorded) > 50
    narrower = []
    for index, (low, high) in captured["ranges"].items():
        name, rec_low, rec_high = recorded[index]
        assert rec_low - 1e-4 <= low <= high <= rec_high + 1e-4, name
        if high - low < 0.95 * (rec_high - rec_low):
            narrower.append(name)
    # the calibrator records a residual ADD's output range for the projection that feeds it
    assert any("block_2_project" in name for name in narrower), narrower


def test_written_ranges_are_the_measured_ones_widened_to_zero(captured):
    index = next(iter(captured["ranges"]))
    rewritten = _recorded(calibration.with_ranges(captured["calibrated"], {index: (0.5, 2.0)}))
    assert rewritten[index][1:] == (0.0, 2.0)


@pytest.mark.slow  # a second full-int8 conversion, by the converter's own calibrator (~13 s)
def test_measured_int8_runs_and_stays_close_to_the_converters_own(bundle, options, monkeypatch):
    x = canvas()
    measured = _run(export_tflite.convert_tflite_bytes(bundle, "int8", options)[0], x)
    monkeypatch.setattr(calibration, "with_ranges", lambda calibrated, ranges: calibrated)
    recorded_ranges = _run(export_tflite.convert_tflite_bytes(bundle, "int8", options)[0], x)
    monkeypatch.setattr(export_tflite, "quantize_int8", lambda converter, canvases, io, float_layers: converter.convert())
    converters_own = _run(export_tflite.convert_tflite_bytes(bundle, "int8", options)[0], x)
    # the same calibration and quantiser as TFLiteConverter: identical result when the ranges are kept
    for a, b in zip(recorded_ranges, converters_own):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(measured, converters_own):
        assert a.shape == b.shape and np.isfinite(a).all()
        assert np.abs(a - b).mean() <= 0.1 * (np.abs(b).mean() + 1e-3) + 0.02


def test_int8_selective_keeps_exactly_its_worst_ops_in_float(bundle, options, monkeypatch):
    """``int8-selective`` is full int8 with the ``CALIBRATED_FLOAT_LAYERS`` ops of worst own error in float (ranked
    by QuantizationDebugger on the calibration images): that many ops compute in float, and they are the ranked
    ones. The ranking is quiet: no deprecation warning of the tf.lite.Interpreter that the debugger runs."""
    import warnings

    from conftest import load_benchmark

    ranked = {}
    original = calibration.worst_layers

    def capture(calibrated, canvases, count):
        ranked["nodes"] = original(calibrated, canvases, count)
        return ranked["nodes"]

    monkeypatch.setattr(calibration, "worst_layers", capture)
    monkeypatch.setitem(export_tflite.CALIBRATED_FLOAT_LAYERS, "int8-selective", 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, facts = export_tflite.convert_tflite_bytes(bundle, "int8-selective", options)
    assert not [w for w in caught if "tf.lite.Interpreter is deprecated" in str(w.message)]
    assert facts["calibration"]["images"] == 8 and len(ranked["nodes"]) == 3
    assert load_benchmark("int8_cures").float_ops(data) == 3
    assert all(np.isfinite(v).all() for v in _run(data, canvas()))
