"""Weight averaging of snapshots (``training.average``, ``bbe-mobile average``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bbe_mobile.cli import main
from bbe_mobile.modeling.bundle import load_bundle, save_bundle
from bbe_mobile.training.average import average_snapshots


def _shifted_copy(bundle_dir, tmp_path, name, shift, steps):
    """A copy of the bundle at ``bundle_dir`` with every float weight plus ``shift`` and ``info.steps``."""
    bundle = load_bundle(bundle_dir)
    bundle.model.set_weights([w + shift for w in bundle.model.get_weights()])
    return str(save_bundle(tmp_path / name, bundle.model, bundle.config, bundle.input_size, bundle.grouper,
                           bundle.name, {"steps": steps}))


@pytest.mark.slow  # three bundles loaded and saved (~8 s): the quick tier keeps the refusal and CLI tests
def test_average_is_the_mean_of_every_weight_and_records_its_sources(tiny_bundle, tmp_path):
    a = _shifted_copy(tiny_bundle, tmp_path, "a", 0.0, 100)
    b = _shifted_copy(tiny_bundle, tmp_path, "b", 0.5, 200)
    c = _shifted_copy(tiny_bundle, tmp_path, "c", 2.5, 300)
    out = average_snapshots([a, b, c], tmp_path / "avg")
    averaged = load_bundle(out).model.get_weights()
    base = load_bundle(a).model.get_weights()
    for got, want in zip(averaged, base):
        np.testing.assert_allclose(got, want + 1.0, rtol=0, atol=1e-5)
    info = json.loads((out / "bbe.json").read_text())["info"]
    assert info["steps"] == 300 and [s["steps"] for s in info["averaged_from"]] == [100, 200, 300]


def test_average_refuses_one_snapshot_other_architectures_and_an_occupied_out(tiny_bundle, tmp_path):
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.network import ModelConfig, build_bbe

    with pytest.raises(ValueError, match="at least two"):
        average_snapshots([tiny_bundle], tmp_path / "x")
    config = ModelConfig(alpha=0.35, aspp_filters=8, decoder_filters=8)
    other = save_bundle(tmp_path / "other", build_bbe(64, alpha=0.35, aspp_filters=8, decoder_filters=8), config,
                        64, GrouperConfig(), "tiny")
    with pytest.raises(ValueError, match="differs .* in architecture"):
        average_snapshots([tiny_bundle, str(other)], tmp_path / "y")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty directory"):
        average_snapshots([tiny_bundle, tiny_bundle], tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_average_command_writes_a_bundle_and_fails_in_one_line(tiny_bundle, tmp_path):
    result = CliRunner().invoke(main, ["average", str(tmp_path / "avg"), tiny_bundle, tiny_bundle, "--name", "mean"])
    assert result.exit_code == 0, result.output
    assert "the mean weights of 2 snapshots" in result.output
    assert load_bundle(tmp_path / "avg").name == "mean"
    bad = CliRunner().invoke(main, ["average", str(tmp_path / "bad"), tiny_bundle, str(tmp_path / "missing")])
    assert bad.exit_code == 2 and bad.output.startswith("error: ") and len(bad.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
