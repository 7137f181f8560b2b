import json
from pathlib import Path

import numpy as np
import pytest

from bbe_mobile.modeling.bundle import ModelError, load_bundle


def test_saved_weights_come_back(tmp_path):
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.bundle import save_bundle
    from bbe_mobile.modeling.network import ModelConfig, build_bbe

    model = build_bbe(64, alpha=0.35, aspp_filters=16, decoder_filters=16)
    x = np.random.default_rng(1).uniform(0, 255, (1, 64, 64, 3)).astype(np.float32)
    save_bundle(tmp_path / "b", model, ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16), 64, GrouperConfig(t_iou=0.5),
                "b", {"steps": 3})
    loaded = load_bundle(tmp_path / "b")
    for a, b in zip(model(x), loaded.model(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert loaded.grouper.t_iou == 0.5 and loaded.info == {"steps": 3}


def test_round_trip_and_resize(tiny_bundle):
    b = load_bundle(tiny_bundle)
    assert b.input_size == 64 and b.stride == 4 and b.name == "tiny"
    bigger = b.resized(128)
    x = np.random.default_rng(0).uniform(0, 255, (1, 128, 128, 3)).astype(np.float32)
    assert bigger.model(x)[0].shape == (1, 32, 32, 1)
    os8 = load_bundle(tiny_bundle, output_stride=8)
    assert os8.config.output_stride == 8 and np.all(np.isfinite(os8.model(x[:, :64, :64])[1]))


def test_missing_and_corrupt_models(tmp_path, tiny_bundle):
    with pytest.raises(ModelError, match="model not found"):
        load_bundle(tmp_path / "nope")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "bbe.json").write_text((__import__("pathlib").Path(tiny_bundle) / "bbe.json").read_text())
    (bad / "model.keras").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="not a Keras model file|cannot load"):
        load_bundle(bad)
    (bad / "bbe.json").write_text("{")
    with pytest.raises(ModelError, match="bad model config"):
        load_bundle(bad)


def test_truncated_keras_file(tmp_path, tiny_bundle):
    from pathlib import Path
    src = Path(tiny_bundle)
    dst = tmp_path / "t"
    dst.mkdir()
    (dst / "bbe.json").write_text((src / "bbe.json").read_text())
    data = (src / "model.keras").read_bytes()
    (dst / "model.keras").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError):
        load_bundle(dst)


def test_unsafe_lambda_model_is_refused(tmp_path, tiny_bundle):
    """Safe mode: a model file carrying Python code (a Lambda layer) is not executed."""
    import keras
    from pathlib import Path
    inp = keras.Input((64, 64, 3))
    out = keras.layers.Lambda(lambda t: t * 2)(inp)
    unsafe = tmp_path / "u"
    unsafe.mkdir()
    keras.Model(inp, out).save(unsafe / "model.keras")
    (unsafe / "bbe.json").write_text((Path(tiny_bundle) / "bbe.json").read_text())
    with pytest.raises(ModelError, match="cannot load"):
        load_bundle(unsafe)


@pytest.mark.parametrize("name", sorted(p.name for p in (Path(__file__).resolve().parent.parent / "models").iterdir()
                                        if p.is_dir()))
def test_every_committed_bundle_loads_in_safe_mode_with_its_card(name):
    """Each directory under models/ is a loadable bundle (architecture from its bbe.json) with a model card."""
    root = Path(__file__).resolve().parent.parent / "models" / name
    bundle = load_bundle(root)
    assert bundle.name == name and bundle.input_size == 512
    assert bundle.model.count_params() > 100_000 and (root / "README.md").read_text().startswith(f"# {name}")
