import numpy as np
import pytest

from bbe_mobile.model import ModelConfig, build_bbe, load_backbone_weights, model_config, sigmoid
from conftest import WEIGHTS, need


@pytest.mark.parametrize("output_stride,aspp", [(16, True), (8, True), (16, False), (8, False)])
def test_outputs_at_stride_4(output_stride, aspp):
    m = build_bbe(64, output_stride=output_stride, aspp_enabled=aspp, aspp_filters=8, decoder_filters=8)
    logits, offsets = m(np.zeros((1, 64, 64, 3), np.float32))
    assert logits.shape == (1, 16, 16, 1) and offsets.shape == (1, 16, 16, 4)
    assert model_config(m)["stride"] == 4


def test_same_weights_load_into_both_output_strides():
    a = build_bbe(64, output_stride=16, aspp_filters=8, decoder_filters=8)
    b = build_bbe(64, output_stride=8, aspp_filters=8, decoder_filters=8)
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    assert np.all(np.isfinite(b(x)[0]))


def test_semantic_twin_and_full_resolution():
    twin = build_bbe(64, box_head=False, aspp_filters=8, decoder_filters=8)
    assert len(twin.outputs) == 1 and twin.name.endswith("_semantic")
    full = build_bbe(64, full_resolution=True, aspp_filters=8, decoder_filters=8)
    assert full.outputs[0].shape[1] == 64 and model_config(full)["stride"] == 1


def test_flexible_input_size_and_resnet():
    m = build_bbe(None, aspp_filters=8, decoder_filters=8)
    assert m(np.zeros((1, 96, 128, 3), np.float32))[1].shape == (1, 24, 32, 4)
    r = build_bbe(64, backbone="resnet50", output_stride=8, aspp_filters=8, decoder_filters=8)
    assert r(np.zeros((1, 64, 64, 3), np.float32))[0].shape == (1, 16, 16, 1)


@pytest.mark.parametrize("kwargs,message", [
    ({"input_size": 100}, "multiple of 16"), ({"output_stride": 32}, "output_stride"),
    ({"alpha": 2.0}, "alpha"), ({"backbone": "vgg"}, "backbone")])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_bbe(**{"input_size": 64, **kwargs})


def test_imagenet_backbone_weights_copy_by_name():
    weights = need(WEIGHTS)
    m = build_bbe(64, aspp_filters=8, decoder_filters=8)
    assert load_backbone_weights(m, "mobilenet_v2", 0.35, str(weights)) == 102  # Conv_1 (head of the classifier) is not used
    import keras
    ref = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=0.35, include_top=False, weights=None)
    ref.load_weights(str(weights))
    np.testing.assert_array_equal(m.get_layer("block_5_project").get_weights()[0],
                                  ref.get_layer("block_5_project").get_weights()[0])
    with pytest.raises(ValueError, match="cannot load backbone weights"):
        load_backbone_weights(m, "mobilenet_v2", 1.0, str(weights))


def test_sigmoid_is_stable():
    assert np.all(np.isfinite(sigmoid(np.array([-1e4, 0, 1e4]))))
    np.testing.assert_allclose(sigmoid(np.array([0.0])), [0.5])
