"""Fuzzing every reader of untrusted files with mutated valid files: COCO annotation json, a bundle's
``bbe.json``, the ``bbe`` metadata of exported artifacts (the JSON and the bytes of a ``.tflite`` / ``.onnx``
around it), ``bbe-bench/1`` result files and golden vector files. Each mutated input must be read or refused with
one line that names the file (and, from the validators, the field): never a traceback, a hang or a blow-up.

Examples per reader: ``BBE_FUZZ_EXAMPLES`` (default 150 in the test suite; the stress run in benchmarks/README.md
uses several thousand: ``BBE_FUZZ_EXAMPLES=3000 pytest tests/test_fuzz_readers.py``).
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bbe_mobile.bench.device_results import read_bench_file
from bbe_mobile.bench.options import BenchError
from bbe_mobile.export.artifact_info import ArtifactError, make_metadata, parse_metadata
from bbe_mobile.golden import GoldenFormatError, read_golden, read_golden_index
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.modeling.bundle import ModelError, read_bundle_config
from bbe_mobile.training.data import CocoPersons, DataError, split_val
from bbe_mobile.training.coco_schema import rle_string_counts
from fuzz_mutations import file_text

EXAMPLES = int(os.environ.get("BBE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
GOLDEN = Path(__file__).resolve().parent / "golden"

def _one_line_naming(exc: Exception, *names) -> None:
    message = str(exc)
    assert "\n" not in message and message, message
    assert any(str(n) in message for n in names), message


# --- COCO annotation json --------------------------------------------------------------------------------------

def _coco_fixture(root: Path) -> tuple[Path, dict]:
    """Three small images on disk and a valid document covering polygons, compressed and plain RLE, a crowd."""
    from pycocotools import mask as mask_utils

    images = root / "images"
    images.mkdir()
    sizes = {1: (24, 32), 2: (40, 30), 3: (16, 16)}
    for image_id, (h, w) in sizes.items():
        Image.new("RGB", (w, h), (image_id * 40, 90, 20)).save(images / f"{image_id}.png")
    square = np.zeros((40, 30), np.uint8, order="F")
    square[5:20, 4:12] = 1
    compressed = mask_utils.encode(square)
    compressed["counts"] = compressed["counts"].decode()
    doc = {"images": [{"id": i, "file_name": f"{i}.png", "height": h, "width": w} for i, (h, w) in sizes.items()],
           "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
           "annotations": [
               {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 60.0, "bbox": [2, 3, 10, 8],
                "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]},
               {"id": 11, "image_id": 2, "category_id": 1, "iscrowd": 0, "area": 120.0, "bbox": [4, 5, 8, 15],
                "segmentation": compressed},
               {"id": 12, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 16.0, "bbox": [0, 0, 4, 4],
                "segmentation": {"size": [40, 30], "counts": [0, 4, 36, 4, 36, 4, 36, 4, 1076]}},
               {"id": 13, "image_id": 3, "category_id": 2, "iscrowd": 0, "area": 9.0, "bbox": [1, 1, 3, 3],
                "segmentation": [[1, 1, 4, 1, 4, 4]]}]}
    return images, doc


@pytest.fixture(scope="module")
def coco_fixture(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_fuzz")
    images, doc = _coco_fixture(root)
    path = root / "instances.json"
    path.write_text(json.dumps(doc))
    _use_coco(images, path)  # the fixture itself is valid and fully usable
    return images, doc, path


def _use_coco(images: Path, path: Path) -> None:
    """What train and eval do with an annotation file before and while they work."""
    ds = CocoPersons(str(images), str(path))
    ds.check_files()
    for image_id in ds.image_ids:
        masks, crowd = ds.masks(image_id)
        assert masks.shape[0] == crowd.shape[0] == len(ds.person_annotations(image_id))
        ds.people_count(image_id)
        ds.image(image_id)
    split_val(ds, holdout_single=1)


def test_coco_fixture_is_valid(coco_fixture):
    images, _, path = coco_fixture
    assert len(CocoPersons(str(images), str(path))) == 3


@FUZZ
@given(data=st.data())
def test_fuzzed_coco_json(coco_fixture, data):
    images, doc, path = coco_fixture
    fuzzed = path.with_name("fuzzed.json")
    fuzzed.write_text(data.draw(file_text(doc)))
    try:
        _use_coco(images, fuzzed)
    except DataError as exc:
        _one_line_naming(exc, fuzzed, images)


@pytest.mark.parametrize("field,value,message", [
    ("annotations[0].segmentation[0]", [1, 2, 3, 4, 5], "a polygon needs an even count of 6"),
    ("annotations[0].segmentation[0]", [0, 0, 1e12, 0, 5, 5], "is far outside the 32x24 image"),
    ("annotations[1].segmentation.counts", "0" * 3 + "zz", "bad compressed RLE: character 'z'"),
    ("annotations[2].segmentation.counts", [0, 4, 36, 4, 36, 4, 36, 4, 10 ** 9], "runs cover 1000000124 pixels"),
    ("annotations[2].segmentation.size", [4000, 4000], "must be the image's [height, width] [40, 30]"),
    ("images[0].height", 10 ** 6, "must be in 1..32768"),
    ("images[0].file_name", "../../etc/passwd", "leaves the images directory"),
    ("annotations[0].image_id", 99, "no image has id 99"),
    ("annotations[0].iscrowd", 0.5, "must be 0 or 1"),
    ("annotations[0].area", float("nan"), "must be a finite number"),
])
def test_coco_errors_name_the_file_and_the_field(coco_fixture, tmp_path, field, value, message):
    images, doc, _ = coco_fixture
    bad = copy.deepcopy(doc)
    parts = field.replace("]", "").replace("[", ".").split(".")
    node = bad
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(parts[-1]) if parts[-1].isdigit() else parts[-1]] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError) as info:
        _use_coco(images, path)
    assert str(info.value).startswith(f"{path}: {field}") and message in str(info.value), str(info.value)


@given(st.lists(st.integers(0, 500), min_size=1, max_size=30))
def test_rle_string_counts_matches_pycocotools(runs):
    from pycocotools import mask as mask_utils

    total = sum(runs)
    if total == 0:
        return
    rle = mask_utils.frPyObjects({"size": [total, 1], "counts": runs}, total, 1)
    counts = rle["counts"].decode()
    decoded = rle_string_counts(counts, total)
    assert sum(decoded) == total
    np.testing.assert_array_equal(mask_utils.decode({"size": [total, 1], "counts": counts}).ravel(),
                                  np.repeat(np.arange(len(decoded)) % 2, decoded))


# --- bbe.json ------------------------------------------------------------------------------------------------------

BUNDLE_DOC = {"name": "tiny", "input_size": 64, "stride": 4,
              "model": {"backbone": "mobilenet_v2", "alpha": 0.35, "output_stride": 16, "aspp": True,
                        "aspp_filters": 16, "decoder_filters": 16, "box_head": True, "full_resolution": False},
              "grouper": {"t_c": 0.6, "t_nms": 0.4, "t_fg": 0.5, "t_iou": 0.5, "max_instances": 20,
                          "anchor_w": 78.4, "anchor_h": 117.6, "max_log_scale": 4.0},
              "info": {"steps": 3}}


@FUZZ
@given(data=st.data())
def test_fuzzed_bundle_config(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bbe_json", numbered=True) / "bbe.json"
    path.write_text(data.draw(file_text(BUNDLE_DOC)))
    try:
        meta, config, grouper = read_bundle_config(path)
    except ModelError as exc:
        _one_line_naming(exc, path)
        return
    assert meta["input_size"] % 16 == 0
    grouper.validate(), config.validate()


# --- artifact metadata ---------------------------------------------------------------------------------------------

METADATA = make_metadata(input_size=64, stride=4, grouper=GrouperConfig(), model_name="tiny", model_version="1",
                         precision="fp32")


@FUZZ
@given(data=st.data())
def test_fuzzed_artifact_metadata(data):
    text = data.draw(file_text(METADATA))
    try:
        doc = parse_metadata(text.encode() if data.draw(st.booleans()) else text, "model.tflite")
    except ArtifactError as exc:
        _one_line_naming(exc, "model.tflite")
        return
    GrouperConfig(**{k: doc[k] for k in ("t_c", "t_nms", "t_fg", "t_iou", "max_instances", "anchor_w", "anchor_h",
                                         "max_log_scale")}).validate()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A tiny model exported to .tflite and .onnx (with their ``bbe`` metadata)."""
    from bbe_mobile.export import convert as export
    from test_export import make_bundle
    from bbe_mobile.modeling.bundle import load_bundle

    root = tmp_path_factory.mktemp("fuzz_artifacts")
    bundle = load_bundle(make_bundle(root / "b"))
    out = {}
    for target in ("tflite", "onnx"):
        out[target] = root / f"tiny.{target}"
        export.export_artifact(bundle, target, "fp32", out[target])
    return out


@pytest.mark.slow  # exports a tiny model twice (~20 s); the metadata JSON itself is fuzzed above in the quick tier
@pytest.mark.parametrize("target", ["tflite", "onnx"])
@settings(max_examples=max(EXAMPLES // 3, 20), deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_artifact_bytes(artifacts, target, tmp_path_factory, data):
    """Flipped, overwritten or cut bytes of a real artifact: ``inspect`` reads it or refuses in one line."""
    from bbe_mobile.export.artifact_info import describe

    raw = bytearray(artifacts[target].read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    path = tmp_path_factory.mktemp("bytes", numbered=True) / f"fuzzed.{target}"
    path.write_bytes(bytes(raw))
    try:
        describe(path)
    except ValueError as exc:
        _one_line_naming(exc, path, "tflite", "ONNX", "metadata")


# --- bbe-bench/1 results -----------------------------------------------------------------------------------------

BENCH_DOC = {"format": "bbe-bench/1", "source": "ios-app", "device": "iPhone 7", "runs": 30, "warmup": 5,
             "results": [{"kind": "grouper", "name": "bench_129_5", "median_ms": 1.2, "p90_ms": 1.5, "min_ms": 1.0},
                         {"kind": "model", "name": "bbe.mlpackage", "precision": "fp16", "median_ms": 30.0,
                          "p90_ms": 34.0}]}


@FUZZ
@given(data=st.data())
def test_fuzzed_bench_results(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bench", numbered=True) / "results.json"
    path.write_text(data.draw(file_text(BENCH_DOC)))
    try:
        doc = read_bench_file(path)
    except BenchError as exc:
        _one_line_naming(exc, path)
        return
    for row in doc["results"]:  # what the report prints
        assert f"{row['median_ms']:.3f} {row['p90_ms']:.3f}"


# --- golden vectors ----------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_fuzzed_golden_case(tmp_path_factory, data):
    """A golden case's json mutated (and sometimes a data file cut) in a copy of the golden directory."""
    name = "touching"
    d = tmp_path_factory.mktemp("golden", numbered=True)
    doc = json.loads((GOLDEN / f"{name}.json").read_text())
    for key in ("prob_file", "offsets_file", "labels_file"):
        raw = (GOLDEN / doc[key]).read_bytes()
        (d / doc[key]).write_bytes(raw[: data.draw(st.integers(0, len(raw)))] if data.draw(st.booleans()) else raw)
    (d / f"{name}.json").write_text(data.draw(file_text(doc)))
    (d / "index.json").write_text(data.draw(file_text({"format": 1, "cases": [name]})))
    try:
        names = read_golden_index(d)
        _, prob, offsets, labels = read_golden(d, name)
    except GoldenFormatError as exc:
        _one_line_naming(exc, d)
        return
    assert all(isinstance(n, str) for n in names)
    assert prob.shape == labels.shape == offsets.shape[:2]
