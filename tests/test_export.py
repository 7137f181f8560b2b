"""Export to TFLite / ONNX / Core ML on a tiny model: every target and precision, metadata, inspect, atomic
writes and bad-input errors. Fast (tiny 64x64 model, conversions in-process)."""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from click.testing import CliRunner  # noqa: E402

from bbe_mobile.cli import main  # noqa: E402
from bbe_mobile.export import coreml as export_coreml, convert as export, images as export_images, serving  # noqa: E402
from bbe_mobile.export import tflite as export_tflite, tflite_metadata  # noqa: E402
from bbe_mobile.export.artifact_info import METADATA_KEYS, ArtifactError, describe, parse_metadata  # noqa: E402
from bbe_mobile.export.runtime import CoreMLUnavailable, KerasRunner, load_runner  # noqa: E402
from bbe_mobile.grouper import GrouperConfig  # noqa: E402
from bbe_mobile.modeling.bundle import load_bundle, save_bundle  # noqa: E402
from bbe_mobile.modeling.network import ModelConfig, build_bbe, sigmoid  # noqa: E402
from conftest import decisive_heads  # noqa: E402

SIZE = 64
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "coco-person-mini"
needs_shared = pytest.mark.skipif(not (SHARED / "val").is_dir(),
                                  reason=f"real images not available ({SHARED} is absent)")


def make_bundle(directory: Path, seed: int = 0, perturb: float = 0.0, people: bool = True) -> Path:
    """A tiny bundle, its random weights drawn from ``seed``; ``people``: rescaled heads (``conftest.decisive_heads``),
    else the random initial heads (probabilities
    around sigmoid(-2), a well-conditioned graph for precision tolerances: the lively heads amplify the
    random backbone's rounding errors ~100x, which says nothing about a trained model)."""
    import keras

    keras.utils.set_random_seed(seed)  # the same weights in every run: reproducible failures
    config = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16)
    model = build_bbe(SIZE, alpha=0.35, aspp_filters=16, decoder_filters=16)
    if people:
        decisive_heads(model, SIZE, seed)
    if perturb:
        layer = model.get_layer("person_logits")
        kernel, bias = layer.get_weights()
        layer.set_weights([kernel * (1 + perturb), bias + perturb])
    save_bundle(directory, model, config, SIZE, GrouperConfig(), "tiny")
    return directory


def write_images(directory: Path, n: int, seed: int = 0) -> Path:
    """Synthetic JPEGs of several sizes (smooth colour blobs, so letterboxing and bilinear resizing matter)."""
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k in range(n):
        h, w = int(rng.integers(40, 120)), int(rng.integers(40, 120))
        small = rng.uniform(0, 255, (4, 4, 3)).astype(np.uint8)
        image = np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))
        noise = rng.normal(0, 10, image.shape)
        Image.fromarray(np.clip(image + noise, 0, 255).astype(np.uint8)).save(directory / f"img{k:03d}.jpg")
    return directory


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("tiny_bundle"), people=False)


@pytest.fixture(scope="session")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("images"), 8)


@pytest.fixture(scope="session")
def options(images_dir) -> export.ExportOptions:
    return export.ExportOptions(calibration_images=str(images_dir), num_calibration=8)


def canvas(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (SIZE, SIZE, 3)).astype(np.float32)


def keras_outputs(bundle, x):
    return KerasRunner(bundle).run(x)


def expected_metadata(precision: str, **kw) -> dict:
    doc = {"format": "bbe-mobile/1", "input_size": SIZE, "input_name": "image", "input_layout": "NHWC",
           "input_range": [0.0, 255.0], "input_channels": "RGB", "input_dtype": "float32", "input_quantization": None,
           "stride": 4, "prob_output": "person_prob", "offsets_output": "box_offsets", "prob_activation": "none",
           "output_layout": "NHWC", "model_name": "tiny", "model_version": "1", "precision": precision,
           "t_c": 0.6, "t_nms": 0.4, "t_fg": 0.5, "t_iou": 0.3, "max_instances": 20, "max_log_scale": 4.0}
    doc.update(kw)
    return doc


def check_metadata(meta: dict, precision: str, **kw) -> None:
    assert tuple(meta) == METADATA_KEYS  # every key, in the documented order
    for key, value in expected_metadata(precision, **kw).items():
        assert meta[key] == value, key
    assert meta["anchor_w"] == pytest.approx(78.38367176906169)
    assert meta["anchor_h"] == pytest.approx(117.57550765359254)


# ---------------------------------------------------------------------------------------------------- TFLite

TFLITE_TOLERANCE = {"fp32": 1e-4, "fp16": 0.02, "dynamic-int8": 0.25, "int8": 0.35}


@pytest.mark.parametrize("precision", [  # ~5 s each; the quick tier converts int8 in test_calibration too
    "fp32", pytest.param("fp16", marks=pytest.mark.slow), pytest.param("dynamic-int8", marks=pytest.mark.slow),
    pytest.param("int8", marks=pytest.mark.slow)])
def test_tflite_precisions(bundle, options, tmp_path, precision):
    path = tmp_path / f"m_{precision}.tflite"
    result = export.export_artifact(bundle, "tflite", precision, path, options)
    assert path.is_file() and result.size_bytes == path.stat().st_size
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left
    info = describe(path)
    check_metadata(info["metadata"], precision)
    assert sorted(t["name"] for t in info["outputs"]) == ["box_offsets", "person_prob"]
    assert info["inputs"][0]["name"] == "image" and info["inputs"][0]["shape"] == [1, SIZE, SIZE, 3]
    assert info["ops"].get("LOGISTIC") == 1  # the sigmoid is in the graph
    if precision == "int8":
        assert "calibrated on 8 images" in result.notes[0]
        assert info["ops"]["CONV_2D"] > 10 and "DEQUANTIZE" in info["ops"]  # float I/O around an int8 graph
    runner = load_runner(str(path))
    prob, offsets = runner.run(canvas())
    ref_prob, ref_offsets = keras_outputs(bundle, canvas())
    assert prob.shape == ref_prob.shape == (SIZE // 4, SIZE // 4) and offsets.shape == (SIZE // 4, SIZE // 4, 4)
    assert np.abs(prob - ref_prob).max() < TFLITE_TOLERANCE[precision]
    assert np.abs(prob - ref_prob).mean() < TFLITE_TOLERANCE[precision] / 3


@pytest.mark.slow  # two more full-int8 conversions (~5 s each)
@pytest.mark.parametrize("io_dtype", ["int8", "uint8"])
def test_tflite_int8_io(bundle, options, tmp_path, io_dtype):
    opts = export.ExportOptions(**{**options.__dict__, "io_dtype": io_dtype})
    name = export.artifact_name("tiny", "tflite", "int8", opts)
    assert name == f"tiny_int8_{io_dtype}io.tflite"
    path = tmp_path / name
    export.export_artifact(bundle, "tflite", "int8", path, opts)
    info = describe(path)
    scale, zero_point = info["inputs"][0]["quantization"]
    check_metadata(info["metadata"], "int8", input_dtype=io_dtype, input_quantization=[scale, zero_point])
    assert info["inputs"][0]["dtype"] == io_dtype and info["outputs"][0]["dtype"] == io_dtype
    assert scale == pytest.approx(1.0, rel=0.02)  # 0..255 pixels map ~1:1 onto the integer range
    runner = load_runner(str(path))
    prob, _ = runner.run(canvas())
    assert np.abs(prob - keras_outputs(bundle, canvas())[0]).mean() < 0.12


def test_tflite_metadata_roundtrip(bundle, tmp_path):
    data, _ = export_tflite.convert_tflite_bytes(bundle, "fp32", export.ExportOptions())
    first = tflite_metadata.write_metadata(data, {"bbe": b'{"a": 1}', "other": b"x"})
    second = tflite_metadata.write_metadata(first, {"bbe": b'{"a": 2}'})
    converter_entries = tflite_metadata.read_metadata(data)  # e.g. min_runtime_version, kept
    assert tflite_metadata.read_metadata(first) == {**converter_entries, "bbe": b'{"a": 1}', "other": b"x"}
    assert tflite_metadata.read_metadata(second) == {**converter_entries, "other": b"x", "bbe": b'{"a": 2}'}
    from bbe_mobile.export.tflite_metadata import tflite_schema

    entries = tflite_schema().Model.GetRootAs(second, 0).MetadataLength()
    assert entries == len(converter_entries) + 2  # replaced, not duplicated
    path = tmp_path / "m.tflite"
    path.write_bytes(second)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))  # LiteRT still loads and runs the edited flatbuffer
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], canvas()[None])
    interpreter.invoke()
    outputs = {int(d["shape"][-1]): interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    np.testing.assert_allclose(outputs[1][0, ..., 0], keras_outputs(bundle, canvas())[0], atol=1e-4)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(data)
    with pytest.raises(ArtifactError, match="no 'bbe' metadata"):
        describe(plain)


def test_tflite_missing_weights_guard(bundle, monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.lite.TFLiteConverter, "convert", lambda self: b"\0" * 1000)
    with pytest.raises(export.ExportError, match="weights are missing"):
        export_tflite.convert_tflite_bytes(bundle, "fp32", export.ExportOptions())


def test_int8_needs_calibration_images(bundle, tmp_path):
    with pytest.raises(export.ExportError, match="calibration images"):
        export.export_artifact(bundle, "tflite", "int8", tmp_path / "x.tflite", export.ExportOptions())
    with pytest.raises(export.ExportError, match="image directory not found"):
        export.export_artifact(bundle, "tflite", "int8", tmp_path / "x.tflite",
                               export.ExportOptions(calibration_images=str(tmp_path / "nope")))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- ONNX

@pytest.mark.slow  # an ONNX conversion (~6 s); test_cli_convert_inspect converts one in the quick tier
def test_onnx(bundle, tmp_path):
    path = tmp_path / "m.onnx"
    export.export_artifact(bundle, "onnx", "fp32", path, export.ExportOptions(opset=15))
    info = describe(path)
    check_metadata(info["metadata"], "fp32")
    assert info["opset"] == 15
    assert info["inputs"][0]["name"] == "image" and info["inputs"][0]["shape"] == ["batch", SIZE, SIZE, 3]
    assert sorted(t["name"] for t in info["outputs"]) == ["box_offsets", "person_prob"]
    prob, offsets = load_runner(str(path)).run(canvas())
    ref_prob, ref_offsets = keras_outputs(bundle, canvas())
    np.testing.assert_allclose(prob, ref_prob, atol=1e-4)
    np.testing.assert_allclose(offsets, ref_offsets, atol=1e-3)


@pytest.fixture(scope="session")
def onnx_path(bundle, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    export.export_artifact(bundle, "onnx", "fp32", path)
    return path


def _with_metadata(proto, **changes) -> None:
    """Rewrite the ``bbe`` metadata of an ONNX proto in place."""
    entry = next(p for p in proto.metadata_props if p.key == "bbe")
    entry.value = json.dumps({**json.loads(entry.value), **changes})


def test_onnx_output_names_are_checked_at_load(onnx_path, tmp_path):
    """Valid metadata naming outputs the graph lacks (Identity/Identity_1 graphs): one ValueError at load."""
    import onnx

    proto = onnx.load(str(onnx_path))
    _with_metadata(proto, prob_output="Identity", offsets_output="Identity_1")
    onnx.save(proto, str(tmp_path / "renamed.onnx"))
    with pytest.raises(ValueError, match="prob_output 'Identity', but the model's outputs are"):
        load_runner(str(tmp_path / "renamed.onnx"))


def test_runtime_errors_are_one_value_error_line(onnx_path):
    runner = load_runner(str(onnx_path))
    runner.metadata = {**runner.metadata, "prob_output": "nope"}  # onnxruntime raises its InvalidArgument
    with pytest.raises(ValueError, match=r"^tiny \(onnx fp32\) failed to run .*m\.onnx: \w+: ") as info:
        runner.run(canvas())
    assert "\n" not in str(info.value)


def test_infinite_logits_are_caught_before_the_sigmoid(bundle, onnx_path):
    """sigmoid(inf) = 1 would hide an overflow: the raw outputs are checked first."""
    grid = SIZE // 4
    keras_runner = KerasRunner(bundle)
    keras_runner._forward = lambda x: (np.full((1, grid, grid, 1), np.inf, np.float32),
                                       np.zeros((1, grid, grid, 4), np.float32))
    with pytest.raises(ValueError, match="non-finite logits"):
        keras_runner.run(canvas())
    runner = load_runner(str(onnx_path))
    runner.metadata = {**runner.metadata, "prob_activation": "sigmoid"}
    logits = np.zeros((1, grid, grid, 1), np.float32)
    logits[0, 3, 5, 0] = -np.inf
    with pytest.raises(ValueError, match=r"non-finite logits \(1 values\)"):
        runner._finish(logits, np.zeros((1, grid, grid, 4), np.float32))


def test_onnx_metadata_read_without_external_weights(onnx_path, tmp_path):
    """inspect reads metadata and structure only: a model whose external weight file is absent is described."""
    import onnx

    path = tmp_path / "ext.onnx"
    onnx.save(onnx.load(str(onnx_path)), str(path), save_as_external_data=True, location="ext.weights",
              size_threshold=0)
    (tmp_path / "ext.weights").unlink()
    info = describe(path)
    assert info["metadata"]["precision"] == "fp32" and info["ops"]["Conv"] > 10


# ---------------------------------------------------------------------------------------------------- Core ML

@pytest.mark.slow  # a Core ML conversion (~8 s)
def test_coreml_output_names_are_checked_at_load(bundle, tmp_path):
    import coremltools as ct

    path = tmp_path / "m.mlpackage"
    export.export_artifact(bundle, "coreml", "fp16", path, export.ExportOptions(coreml_input="tensor"))
    spec_file = next(path.rglob("*.mlmodel"))
    spec = ct.utils.load_spec(str(path))
    meta = json.loads(spec.description.metadata.userDefined["bbe"])
    spec.description.metadata.userDefined["bbe"] = json.dumps({**meta, "offsets_output": "Identity_1"})
    spec_file.write_bytes(spec.SerializeToString())
    with pytest.raises(ValueError, match="offsets_output 'Identity_1', but the model's outputs are"):
        load_runner(str(path))


def test_coreml_compress_rejects_an_unknown_precision():
    with pytest.raises(export.ExportError, match="unknown Core ML precision 'int4'"):
        export_coreml._coreml_compress(object(), "int4", [])


def _coreml_numeric_check(path: Path, bundle, tolerance: float) -> None:
    runner = load_runner(str(path))
    try:
        prob, _ = runner.run(canvas())
    except CoreMLUnavailable as exc:
        assert str(exc) == "Core ML predict needs macOS or bbe_mobile.coreml_exec"
        return
    assert np.abs(prob - keras_outputs(bundle, canvas())[0]).max() < tolerance


@pytest.mark.parametrize("precision,coreml_input,op", [
    ("fp16", "image", None),  # each conversion takes ~10 s: the other variants are in the slow tier
    pytest.param("fp32", "tensor", None, marks=pytest.mark.slow),
    pytest.param("int8", "image", "constexpr_affine_dequantize", marks=pytest.mark.slow),
    pytest.param("palette6", "image", "constexpr_lut_to_dense", marks=pytest.mark.slow),  # k-means: ~20 s
    pytest.param("palette4", "tensor", "constexpr_lut_to_dense", marks=pytest.mark.slow)])
def test_coreml_variants(bundle, tmp_path, precision, coreml_input, op):
    """Also: the package has the modes of other outputs (coremltools writes model.mlmodel 0600 and weights/
    0700), checked under umask 0002 so that a hard-coded 0644 would fail too."""
    opts = export.ExportOptions(coreml_input=coreml_input)
    path = tmp_path / export.artifact_name("tiny", "coreml", precision, opts)
    previous = os.umask(0o002)
    try:
        result = export.export_artifact(bundle, "coreml", precision, path, opts)
        assert path.is_dir() and result.size_bytes > 100_000
        assert [p.name for p in tmp_path.iterdir()] == [path.name]
        _check_default_modes(path, tmp_path)
    finally:
        os.umask(previous)
    info = describe(path)
    check_metadata(info["metadata"], precision)
    assert info["inputs"][0]["name"] == "image"
    assert info["inputs"][0]["dtype"] == ("image" if coreml_input == "image" else "float32")
    assert {o["name"]: (o["shape"], o["dtype"]) for o in info["outputs"]} == {
        "person_prob": ([1, 16, 16, 1], "float32"), "box_offsets": ([1, 16, 16, 4], "float32")}
    assert "person probability" in info["descriptions"]["person_prob"]
    assert "sigmoid" in info["ops"]
    if op:
        assert op in info["ops"]
    _coreml_numeric_check(path, bundle, 0.05 if precision in ("fp16", "fp32") else 0.3)


def _check_default_modes(package: Path, directory: Path) -> None:
    """Every file and directory of ``package`` has the mode a plain write and mkdir give in ``directory``."""
    (directory / "plain").mkdir()
    (directory / "plain" / "file").write_text("x")
    file_mode, dir_mode = ((directory / "plain" / p).stat().st_mode & 0o7777 for p in ("file", "."))
    modes = {str(p.relative_to(package.parent)): p.stat().st_mode & 0o7777 for p in [package, *package.rglob("*")]}
    assert any(name.endswith("model.mlmodel") for name in modes) and any(name.endswith("weights") for name in modes)
    assert {name: mode for name, mode in modes.items()
            if mode != (dir_mode if (package.parent / name).is_dir() else file_mode)} == {}
    shutil.rmtree(directory / "plain")


def _palette_bits(path: Path) -> dict[str, int]:
    """Consumer op name -> palette bits of its weight, read back through coremltools' own MIL loader."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto import load as milproto_load

    model = ct.models.MLModel(str(path), skip_model_load=True)
    prog = milproto_load.load(model.get_spec(), model.get_spec().specificationVersion, model.weights_dir)
    return {child.name: int(op.lut.val.size).bit_length() - 1
            for op in prog.functions["main"].operations if op.op_type == "constexpr_lut_to_dense"
            for child in op.outputs[0].child_ops}


@pytest.mark.slow  # ~20 s each: k-means palettes of a larger model
@pytest.mark.parametrize("precision,head_bits", [("palette4", 4), ("palette6", 6)])
def test_coreml_palettes_keep_8_bit_backbone_palettes(precision, head_bits, tmp_path):
    """The backbone's weights get 8-bit palettes, the ASPP/decoder ones the variant's bits (docs/export.md)."""
    model = build_bbe(SIZE, alpha=0.35, aspp_filters=64, decoder_filters=64)  # ASPP/decoder weights above the 2048 threshold
    save_bundle(tmp_path / "b", model, ModelConfig(alpha=0.35, aspp_filters=64, decoder_filters=64), SIZE, GrouperConfig(), "pal")
    path = tmp_path / "p.mlpackage"
    export.export_artifact(load_bundle(tmp_path / "b"), "coreml", precision, path,
                           export.ExportOptions(coreml_input="tensor"))
    bits = _palette_bits(path)
    head = {b for name, b in bits.items() if "aspp" in name or "decoder" in name}
    backbone = {b for name, b in bits.items() if "block_" in name}
    assert head == {head_bits} and backbone == {export_coreml.BACKBONE_PALETTE_BITS}, bits


@pytest.mark.slow  # a third Core ML conversion (~15 s)
def test_coreml_to_a_relative_output_path(bundle, tmp_path, monkeypatch):
    """Regression: the weight file of a package written to a relative path must be found (smoke run + exec)."""
    monkeypatch.chdir(tmp_path)
    path = Path("rel") / "m.mlpackage"
    path.parent.mkdir()
    export.export_artifact(bundle, "coreml", "fp16", path, export.ExportOptions())
    _coreml_numeric_check(path, bundle, 0.05)


@pytest.mark.slow  # ~15-25 s: a second model build and conversion
def test_coreml_flexible_sizes(bundle, tmp_path):
    opts = export.ExportOptions(flexible_sizes=(128,))
    path = tmp_path / "flex.mlpackage"
    export.export_artifact(bundle, "coreml", "fp16", path, opts)
    info = describe(path)
    assert info["inputs"][0]["enumerated_sizes"] == [[64, 64], [128, 128]]
    assert info["metadata"]["input_size"] == SIZE
    runner = load_runner(str(path), input_size=128)
    assert runner.sizes == (64, 128)
    with pytest.raises(ValueError, match="exported for input side 64 or 128"):
        load_runner(str(path), input_size=96)


def test_coreml_rejects_bad_options(bundle, tmp_path):
    with pytest.raises(export.ExportError, match="iOS16 or later"):
        export.export_artifact(bundle, "coreml", "palette4", tmp_path / "x.mlpackage",
                               export.ExportOptions(coreml_target="iOS15"))
    with pytest.raises(export.ExportError, match="multiples of 16"):
        export.export_artifact(bundle, "coreml", "fp16", tmp_path / "x.mlpackage",
                               export.ExportOptions(flexible_sizes=(100,)))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------- atomicity

@pytest.mark.parametrize("target,suffix", [("tflite", ".tflite"), ("coreml", ".mlpackage")])
def test_failed_conversion_leaves_nothing(bundle, tmp_path, monkeypatch, target, suffix):
    """A converter dying half-way (after writing part of its output) leaves no file and no temp behind."""
    out = tmp_path / "out"
    out.mkdir()

    def interrupted(bundle, precision, path, options):
        path.write_bytes(b"TFL3 partial")
        raise KeyboardInterrupt

    monkeypatch.setitem(export.EXPORTERS, target, interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C mid-way
        export.export_artifact(bundle, target, export.DEFAULT_CHAIN[target][0], out / f"m{suffix}")
    assert list(out.iterdir()) == []

    def dies_midway(bundle, precision, path, options):
        if suffix == ".mlpackage":
            (path / "Data").mkdir(parents=True)
            (path / "Data" / "half").write_bytes(b"x" * 100)
        else:
            path.write_bytes(b"TFL3 half a model")
        raise RuntimeError("killed mid-way")

    monkeypatch.setitem(export.EXPORTERS, target, dies_midway)
    with pytest.raises(RuntimeError, match="mid-way"):
        export.export_artifact(bundle, target, export.DEFAULT_CHAIN[target][0], out / f"m{suffix}")
    assert list(out.iterdir()) == []
    # through convert: reported as failed, exit 1, nothing written
    monkeypatch.setitem(export.EXPORTERS, target, lambda *a: (_ for _ in ()).throw(export.ExportError("boom")))
    outcomes = export.convert(bundle, [target], {target: [export.DEFAULT_CHAIN[target][0]]}, out, verify=False,
                              log=lambda *_: None)
    assert outcomes[0].status == "failed" and "boom" in outcomes[0].message
    assert list(out.iterdir()) == []


def test_existing_artifact_replaced_atomically(bundle, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"old")
    export.export_artifact(bundle, "tflite", "fp32", path)
    assert describe(path)["metadata"]["precision"] == "fp32"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tflite"]


# ---------------------------------------------------------------------------------------------------- CLI & errors

def test_cli_convert_inspect(bundle_dir, images_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["convert", "--target", "tflite,onnx", "--model", str(bundle_dir),
                                       "--precision", "fp32", "--out", str(out), "--verify-images", str(images_dir),
                                       "--num-verify", "3"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["tiny_fp32.onnx", "tiny_fp32.onnx.verify.json",
                                                     "tiny_fp32.tflite", "tiny_fp32.tflite.verify.json"]
    assert json.loads((out / "tiny_fp32.tflite.verify.json").read_text())["status"] == "passed"
    result = CliRunner().invoke(main, ["inspect", str(out / "tiny_fp32.tflite")])
    assert result.exit_code == 0, result.output
    for text in ("image: [1, 64, 64, 3] float32", "person_prob: [1, 16, 16, 1] float32", '"bbe-mobile/1"',
                 "CONV_2D", "LOGISTIC: 1", "MB)"):
        assert text in result.output
    result = CliRunner().invoke(main, ["inspect", "--json", str(out / "tiny_fp32.onnx")])
    assert json.loads(result.output)["metadata"]["precision"] == "fp32"


def test_cli_precision_list_with_several_targets(bundle_dir, tmp_path):
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["convert", "--target", "onnx,tflite", "--precision", "dynamic-int8",
                                       "--model", str(bundle_dir), "--out", str(out), "--no-verify"])
    assert result.exit_code == 0, result.output
    assert "skipping onnx: it has none of the precisions 'dynamic-int8'" in result.output
    assert "unverified" in result.output
    assert [p.name for p in out.iterdir()] == ["tiny_dynamic-int8.tflite"]


@pytest.mark.parametrize("args,message", [
    (["--target", "onnx,coreml", "--precision", "int4"], "unknown precision 'int4'"),
    (["--target", "onnx,coreml", "--precision", "dynamic-int8"], "no target has precision 'dynamic-int8'"),
    (["--target", "caffe"], "unknown target 'caffe'"),
    (["--target", "onnx", "--precision", "int4"], "precision 'int4' is not available for onnx"),
    (["--target", "tflite", "--input-size", "100"], "--input-size must be a positive multiple of 16"),
    (["--target", "tflite", "--num-calibration", "0"], "--num-calibration must be >= 1, got 0"),
    (["--target", "tflite", "--num-calibration", "-3"], "--num-calibration must be >= 1, got -3"),
])
def test_cli_bad_arguments(bundle_dir, tmp_path, args, message):
    result = CliRunner().invoke(main, ["convert", "--model", str(bundle_dir), "--out", str(tmp_path / "o"),
                                       "--no-verify", *args])
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output


def test_library_convert_checks_its_arguments(bundle, tmp_path):
    """``convert`` rejects what ``export_artifact`` rejects, before converting anything."""
    out = tmp_path / "o"
    for targets, precisions, options, message in (
            (["onnx"], {"onnx": ["int8"]}, export.ExportOptions(), "precision 'int8' is not available for onnx"),
            (["coreml"], {"coreml": ["int4"]}, export.ExportOptions(), "precision 'int4' is not available"),
            (["caffe"], {"caffe": ["fp32"]}, export.ExportOptions(), "unknown target 'caffe'"),
            (["tflite"], {"tflite": ["int8"]}, export.ExportOptions(io_dtype="float16"), "unknown I/O type"),
            (["tflite"], {"tflite": ["int8"]}, export.ExportOptions(num_calibration=0), "--num-calibration")):
        with pytest.raises(export.ExportError, match=message):
            export.convert(bundle, targets, precisions, out, options, verify=False, log=lambda *_: None)
    assert not out.exists()


def test_verification_hint_suggests_only_variants_verified_to_pass():
    assert export.verification_hint([("tflite", "fp32")], []) == (
        "try instead: --target tflite without --precision (writes the fastest variant that passes), or --no-verify "
        "to write tflite fp32 unverified")
    assert export.verification_hint([("tflite", "int8"), ("coreml", "palette4")],
                                    [("tflite", "fp16"), ("tflite", "fp32"), ("onnx", "fp32")]) == (
        "try instead: --target tflite with --precision fp16 or --precision fp32 (verified above), without "
        "--precision (writes the fastest variant that passes), or --no-verify to write tflite int8 unverified; "
        "--target coreml without --precision (writes the fastest variant that passes), or --no-verify to write "
        "coreml palette4 unverified")
    assert all(set(chain) <= set(export.PRECISIONS[t]) for t, chain in export.DEFAULT_CHAIN.items())


def test_image_files_leave_out_hidden_files(tmp_path):
    """A killed run's half-written ``.tmp-*`` image (e.g. in a predict output directory) and macOS ``._*``
    files are not taken for images."""
    write_images(tmp_path, 2)
    (tmp_path / ".tmp-1a2b3c4d-img999.png").write_bytes(b"\x89PNG half-written by a killed run")
    (tmp_path / "._img000.jpg").write_bytes(b"macOS resource fork")
    assert [p.name for p in export_images.image_files(tmp_path)] == ["img000.jpg", "img001.jpg"]


def test_image_files_limit(images_dir):
    assert len(export_images.image_files(images_dir)) == 8
    assert [p.name for p in export_images.image_files(images_dir, 2)] == ["img000.jpg", "img001.jpg"]
    for limit in (0, -1):
        with pytest.raises(export.ExportError, match=f"must be >= 1, got {limit}"):
            export_images.image_files(images_dir, limit)


def test_error_messages_keep_the_first_line(bundle, tmp_path, monkeypatch):
    import bbe_mobile.export.runtime

    def fails(*args, **kwargs):
        raise RuntimeError("first line\nsecond line")

    monkeypatch.setattr(bbe_mobile.export.runtime, "load_runner", fails)
    with pytest.raises(export.ExportError, match="does not run: RuntimeError: first line$"):
        serving.smoke_run(tmp_path / "m.onnx", SIZE)
    monkeypatch.setitem(export.EXPORTERS, "onnx", fails)
    outcomes = export.convert(bundle, ["onnx"], {"onnx": ["fp32"]}, tmp_path / "o", verify=False,
                              log=lambda *_: None)
    assert outcomes[0].message == "RuntimeError: first line"


def test_cli_truncated_model(bundle_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bbe.json").write_text((bundle_dir / "bbe.json").read_text())
    data = (bundle_dir / "model.keras").read_bytes()
    (broken / "model.keras").write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(main, ["convert", "--target", "tflite", "--model", str(broken), "--out",
                                       str(tmp_path / "o"), "--no-verify"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "model.keras" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or list((tmp_path / "o").iterdir()) == []


def test_corrupt_artifacts(bundle, tmp_path):
    data, _ = export_tflite.convert_tflite_bytes(bundle, "fp32", export.ExportOptions())
    (tmp_path / "cut.tflite").write_bytes(data[: len(data) // 3])
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all \xff\xfe")
    (tmp_path / "junk.tflite").write_bytes(b"hello")
    (tmp_path / "plain.tflite").write_bytes(data)
    (tmp_path / "x.pb").write_bytes(b"")
    for name, message in (("cut.tflite", "tflite"), ("junk.onnx", "not a readable ONNX"), ("junk.tflite", "TFL3"),
                          ("plain.tflite", "no 'bbe' metadata"), ("x.pb", "unknown artifact type"),
                          ("missing.tflite", "not found"), ("empty.mlpackage", "Core ML")):
        if name == "empty.mlpackage":
            (tmp_path / name).mkdir()
        with pytest.raises(ValueError, match=message):
            describe(tmp_path / name)
        result = CliRunner().invoke(main, ["inspect", str(tmp_path / name)])
        assert result.exit_code == 2 and result.output.startswith("error: "), (name, result.output)
    with pytest.raises(ValueError):
        load_runner(str(tmp_path / "cut.tflite"))


def test_parse_metadata_rejects_bad_documents():
    good = json.dumps(expected_metadata("fp32", anchor_w=78.4, anchor_h=117.6, toolkit_version="0.1.0"))
    assert parse_metadata(good, "x")["precision"] == "fp32"
    for text, message in ((None, "no 'bbe' metadata"), ("{", "not JSON"), ("[]", "not a JSON object"),
                          (json.dumps({"format": "bbe-mobile/1"}), "lacks key 'input_size'"),
                          (good.replace("bbe-mobile/1", "bbe-mobile/9"), "supports"),
                          (good.replace('"t_c": 0.6', '"t_c": 1.6'), "grouper"),
                          (good.replace('"input_size": 64', '"input_size": true'), "input_size must be a positive"),
                          (good.replace('"input_size": 64', '"input_size": "64"'), "input_size must be a positive"),
                          (good.replace('"stride": 4', '"stride": 0'), "stride must be a positive integer"),
                          (good.replace('"stride": 4', '"stride": 4.0'), "stride must be a positive integer"),
                          (good.replace('"prob_output": "person_prob"', '"prob_output": 1'),
                           "prob_output must be a string"),
                          (good.replace('"model_name": "tiny"', '"model_name": null'), "model_name must be a string"),
                          (good.replace('"precision": "fp32"', '"precision": ["fp32"]'),
                           "precision must be a string"),
                          (good.replace('"prob_activation": "none"', '"prob_activation": "relu"'),
                           "prob_activation must be one of none, sigmoid")):
        with pytest.raises(ArtifactError, match=message):
            parse_metadata(text, "x")


def test_runner_dispatch(bundle_dir):
    runner = load_runner(str(bundle_dir))
    assert isinstance(runner, KerasRunner) and runner.input_size == SIZE
    assert load_runner(str(bundle_dir / "model.keras"), input_size=128).input_size == 128


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the Linux fallback message")
def test_coreml_unavailable_message(bundle, tmp_path):
    try:
        import bbe_mobile.coreml_exec  # noqa: F401
        pytest.skip("bbe_mobile.coreml_exec is installed: Core ML runs here")
    except ImportError:
        pass
    path = tmp_path / "m.mlpackage"
    export.export_artifact(bundle, "coreml", "fp16", path)
    with pytest.raises(CoreMLUnavailable, match="Core ML predict needs macOS or bbe_mobile.coreml_exec"):
        load_runner(str(path)).run(canvas())


def test_sigmoid_in_graph_matches_keras_logits(bundle, tmp_path):
    """person_prob is sigmoid(person_logits) of the Keras model, not the raw logits."""
    path = tmp_path / "m.onnx"
    export.export_artifact(bundle, "onnx", "fp32", path)
    logits, _ = bundle.model(canvas()[None], training=False)
    prob, _ = load_runner(str(path)).run(canvas())
    np.testing.assert_allclose(prob, sigmoid(np.asarray(logits))[0, ..., 0], atol=1e-5)


@needs_shared
def test_calibration_uses_the_letterbox():
    from bbe_mobile.letterbox import letterbox_image, read_image

    files = export_images.image_files(SHARED / "train", 3)
    canvases = export_images.calibration_canvases(SHARED / "train", 64, 3)
    assert len(canvases) == 3
    for f, c in zip(files, canvases):  # exactly the inference letterbox
        np.testing.assert_array_equal(c, letterbox_image(read_image(str(f)), 64)[0])


def test_convert_help_names_the_default_chains():
    """``convert --help`` spells out each target's default chain (a literal, to keep the CLI's import light): it
    must follow ``DEFAULT_CHAIN``."""
    from click.testing import CliRunner  # noqa: PLC0415

    from bbe_mobile.cli import main  # noqa: PLC0415

    text = " ".join(CliRunner().invoke(main, ["convert", "--help"]).output.split())
    for target, chain in export.DEFAULT_CHAIN.items():
        assert f"{target} {', '.join(chain)}" in text
