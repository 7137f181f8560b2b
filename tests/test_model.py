import warnings

import numpy as np
import pytest

from bbe_mobile.modeling.network import (ModelConfig, build_bbe, is_head_layer, load_backbone_weights, model_config,
                              sigmoid)
from conftest import WEIGHTS, need


@pytest.mark.parametrize("output_stride,aspp", [(16, True), (8, True), (16, False), (8, False)])
def test_outputs_at_stride_4(output_stride, aspp):
    m = build_bbe(64, output_stride=output_stride, aspp_enabled=aspp, alpha=0.35, aspp_filters=8, decoder_filters=8)
    logits, offsets = m(np.zeros((1, 64, 64, 3), np.float32))
    assert logits.shape == (1, 16, 16, 1) and offsets.shape == (1, 16, 16, 4)
    assert model_config(m)["stride"] == 4


def test_same_weights_load_into_both_output_strides():
    a = build_bbe(64, output_stride=16, alpha=0.35, aspp_filters=8, decoder_filters=8)
    b = build_bbe(64, output_stride=8, alpha=0.35, aspp_filters=8, decoder_filters=8)
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    assert np.all(np.isfinite(b(x)[0]))


def test_semantic_twin_and_full_resolution():
    twin = build_bbe(64, box_head=False, alpha=0.35, aspp_filters=8, decoder_filters=8)
    assert len(twin.outputs) == 1 and twin.name.endswith("_semantic")
    full = build_bbe(64, full_resolution=True, alpha=0.35, aspp_filters=8, decoder_filters=8)
    assert full.outputs[0].shape[1] == 64 and model_config(full)["stride"] == 1


def test_box_tower_feeds_only_the_box_head():
    """The tower's layers are head layers (head learning rate) that only box_offsets reads: the person logits of a
    model with a tower equal those of the same weights without it."""
    plain = build_bbe(64, alpha=0.35, aspp_filters=8, decoder_filters=8)
    tower = build_bbe(64, alpha=0.35, aspp_filters=8, decoder_filters=8, box_tower=2)
    names = [layer.name for layer in tower.layers if layer.name.startswith("box_tower")]
    assert {"box_tower0", "box_tower1", "box_tower0_depthwise", "box_tower1_bn"} <= set(names)
    assert all(is_head_layer(name) for name in names)
    shared = {layer.name: layer for layer in plain.layers}
    for layer in tower.layers:
        if layer.name in shared:
            layer.set_weights(shared[layer.name].get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(tower(x)[0]), np.asarray(plain(x)[0]))
    assert tower(x)[1].shape == (1, 16, 16, 4)
    with pytest.raises(ValueError, match="box_tower"):
        ModelConfig(box_tower=9).validate()


def test_flexible_input_size_and_resnet():
    m = build_bbe(None, alpha=0.35, aspp_filters=8, decoder_filters=8)
    assert m(np.zeros((1, 96, 128, 3), np.float32))[1].shape == (1, 24, 32, 4)
    r = build_bbe(64, backbone="resnet50", output_stride=8, alpha=0.35, aspp_filters=8, decoder_filters=8)
    assert r(np.zeros((1, 64, 64, 3), np.float32))[0].shape == (1, 16, 16, 1)


@pytest.mark.parametrize("kwargs,message", [
    ({"input_size": 100}, "multiple of 16"), ({"output_stride": 32}, "output_stride"),
    ({"alpha": 2.0}, "alpha"), ({"backbone": "vgg"}, "backbone")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_bbe(**{"input_size": 64, **kwargs})


def test_imagenet_backbone_weights_reach_every_backbone_layer():
    """Every backbone layer gets the file's weights (Keras' own loader, a separate reader, is the reference),
    without Keras' "nested container" warnings; head layers keep their initialisation."""
    import keras

    weights = need(WEIGHTS)
    m = build_bbe(64, alpha=0.35, aspp_filters=8, decoder_filters=8)
    before = {layer.name: layer.get_weights() for layer in m.layers}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        copied = load_backbone_weights(m, "mobilenet_v2", 0.35, str(weights))
        with pytest.raises(ValueError, match="cannot load backbone weights .* alpha=1.0: layer Conv1"):
            load_backbone_weights(m, "mobilenet_v2", 1.0, str(weights))
    assert [str(w.message) for w in caught] == []
    ref = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=0.35, include_top=False, weights=None)
    ref.load_weights(str(weights))
    backbone = [layer for layer in m.layers if layer.weights and not is_head_layer(layer.name)]
    assert copied == len(backbone) == 102  # Conv_1 (the classifier's input) is not part of the BBE backbone
    for layer in backbone:
        for got, want, initial in zip(layer.get_weights(), ref.get_layer(layer.name).get_weights(),
                                      before[layer.name], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
        assert any(not np.array_equal(g, i) for g, i in zip(layer.get_weights(), before[layer.name])), layer.name
    for layer in m.layers:
        if is_head_layer(layer.name):
            for got, initial in zip(layer.get_weights(), before[layer.name], strict=True):
                np.testing.assert_array_equal(got, initial, err_msg=layer.name)


def test_weights_file_of_another_backbone_is_refused_in_one_line(tmp_path):
    """A file that fits no layer, and one that leaves backbone layers without weights, are clear errors."""
    import keras

    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    path = tmp_path / "dense.weights.h5"
    other.save_weights(path)
    m = build_bbe(64, alpha=0.35, aspp_filters=8, decoder_filters=8)
    with pytest.raises(ValueError, match="cannot load backbone weights .*dense.weights.h5") as info:
        load_backbone_weights(m, "mobilenet_v2", 0.35, str(path))
    assert "\n" not in str(info.value)
    (tmp_path / "junk.weights.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="cannot load backbone weights"):
        load_backbone_weights(m, "mobilenet_v2", 0.35, str(tmp_path / "junk.weights.h5"))


def test_sigmoid_is_stable():
    assert np.all(np.isfinite(sigmoid(np.array([-1e4, 0, 1e4]))))
    np.testing.assert_allclose(sigmoid(np.array([0.0])), [0.5])
