import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bbe_mobile.training.data import (AugmentConfig, CocoPersons, DataError, Sampler, affine_matrix, split_val, warp,
                             warp_mask)


def test_affine_matrix_maps_source_centre_to_crop_centre():
    m = affine_matrix((100, 200), 64, 0.5, 10.0, (3.0, -2.0), flip=False)
    np.testing.assert_allclose(m @ [100, 50, 1], [35, 30, 1])
    flipped = affine_matrix((100, 200), 64, 0.5, 0.0, (0.0, 0.0), flip=True)
    np.testing.assert_allclose(flipped @ [100, 50, 1], [32, 32, 1])


def test_samples_are_consistent_and_deterministic(coco_train):
    ds = CocoPersons(*coco_train)
    sampler = Sampler(ds, AugmentConfig(crop=128, base_size=192), 4, seed=3)
    image, person, offsets, weights = sampler.sample(5)
    assert image.shape == (128, 128, 3) and person.shape == (32, 32, 1) and offsets.shape == (32, 32, 4)
    assert weights.shape == (32, 32, 1)
    assert np.all(weights <= (person >= 0.5)) and np.all(offsets[weights[..., 0] == 0] == 0)
    again = sampler.sample(5)
    np.testing.assert_array_equal(again[0], image)
    np.testing.assert_array_equal(again[2], offsets)


def test_balanced_box_weights_sum_to_the_people_of_the_sample(coco_train):
    ds = CocoPersons(*coco_train)
    config = AugmentConfig(crop=128, base_size=192, paste_probability=1.0)
    plain, balanced = Sampler(ds, config, 4, seed=2), Sampler(ds, config, 4, seed=2, balance_instances=True)
    for i in range(4):
        w_plain, w_bal = plain.sample(i)[3], balanced.sample(i)[3]
        np.testing.assert_array_equal(w_bal > 0, w_plain > 0)
        assert np.all(w_bal <= 1) and (w_plain.sum() == 0 or 1 <= round(float(w_bal.sum())) < w_plain.sum() + 1)


def test_copy_paste_adds_people(coco_train):
    ds = CocoPersons(*coco_train)
    plain = Sampler(ds, AugmentConfig(crop=128, base_size=192, paste_probability=0.0), 4, seed=1)
    pasted = Sampler(ds, AugmentConfig(crop=128, base_size=192, paste_probability=1.0), 4, seed=1)
    more = sum(pasted.sample(i)[1].sum() > plain.sample(i)[1].sum() for i in range(12))
    assert more >= 6


def test_val_split_holds_out_multi_person_and_first_singles(coco_val):
    ds = CocoPersons(*coco_val)
    trainable, held = split_val(ds)
    assert not set(trainable) & set(held)
    assert all(ds.people_count(i) < 2 for i in trainable)
    assert sum(ds.people_count(i) >= 2 for i in held) == 32
    assert sum(ds.people_count(i) == 1 for i in held) == 300


def test_bad_datasets(tmp_path, coco_train):
    images, annotations = coco_train
    with pytest.raises(DataError, match="annotation file not found"):
        CocoPersons(images, str(tmp_path / "none.json"))
    with pytest.raises(DataError, match="images directory not found"):
        CocoPersons(str(tmp_path / "none"), annotations)
    broken = tmp_path / "broken.json"
    broken.write_text("{\"images\": [")
    with pytest.raises(DataError, match="not a COCO instances json"):
        CocoPersons(images, str(broken))
    data = json.loads(open(annotations).read())
    data["categories"] = [{"id": 9, "name": "boat", "supercategory": "vehicle"}]
    for ann in data["annotations"]:
        ann["category_id"] = 9
    nocat = tmp_path / "nocat.json"
    nocat.write_text(json.dumps(data))
    with pytest.raises(DataError, match="no 'person' category"):
        CocoPersons(images, str(nocat))
    data = json.loads(open(annotations).read())
    data["images"][0]["file_name"] = "missing.jpg"
    gone = tmp_path / "gone.json"
    gone.write_text(json.dumps(data))
    with pytest.raises(DataError, match="image file missing"):
        CocoPersons(images, str(gone)).check_files()


@settings(max_examples=80, deadline=None)
@given(st.integers(8, 300), st.integers(8, 300), st.integers(0, 2**32 - 1))
def test_windowed_mask_warp_equals_warping_the_whole_mask(h, w, seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.uint8)
    y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
    mask[y0:y0 + rng.integers(1, h - y0 + 1), x0:x0 + rng.integers(1, w - x0 + 1)] = 1
    mask &= (rng.random((h, w)) < 0.8).astype(np.uint8)
    matrix = affine_matrix((h, w), 96, rng.uniform(0.2, 3.0), rng.uniform(-15, 15), tuple(rng.uniform(-30, 30, 2)),
                           bool(rng.integers(2)))
    np.testing.assert_array_equal(warp_mask(mask, matrix, 96), warp(mask * 255, matrix, 96) >= 128)
