"""Float noise never fails an artifact: an "artifact" that is the reference plus noise of at most 1e-5 passes fp32
verification, on maps built to sit on the grouper's thresholds and ties, on the tiny test model and on the
bundled model (docs/export.md, "Decisions the error could flip")."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbe_mobile.export import verify
from bbe_mobile.export.decisions import near_decisions
from bbe_mobile.grouper import GrouperConfig
from test_export import SHARED, make_bundle, needs_shared, write_images

ROOT = Path(__file__).resolve().parent.parent
NOISE = 1e-5
GROUPER = GrouperConfig()
CRITICAL_PROBS = np.array([0.02, GROUPER.t_fg, GROUPER.t_c, 0.9], np.float32)  # exactly on t_fg and t_c; plateaus


class MapRunner:
    """A runner whose outputs are ``outputs(canvas)`` plus uniform noise of at most ``noise`` (fresh per call,
    from ``seed``; probabilities kept in [0, 1])."""

    def __init__(self, outputs, input_size: int, noise: float = 0.0, seed: int = 0, grouper=GROUPER):
        self.outputs, self.input_size, self.noise, self.grouper = outputs, input_size, noise, grouper
        self.rng = np.random.default_rng(seed)

    def run(self, canvas):
        prob, offsets = self.outputs(canvas)
        if not self.noise:
            return prob, offsets
        prob = np.clip(prob + self.rng.uniform(-self.noise, self.noise, prob.shape), 0, 1)
        offsets = offsets + self.rng.uniform(-self.noise, self.noise, offsets.shape)
        return prob.astype(np.float32), offsets.astype(np.float32)


def critical_maps(seed: int, side: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities drawn from {0.02, t_fg, t_c, 0.9} (cells on both thresholds, plateaus of equal peaks) and
    offsets from a coarse grid (mirror-symmetric boxes: cells equidistant from two kept boxes tie on IoU)."""
    rng = np.random.default_rng(seed)
    prob = rng.choice(CRITICAL_PROBS, size=(side, side), p=[0.3, 0.3, 0.25, 0.15])
    offsets = np.concatenate([rng.choice([-0.2, 0.0, 0.2], size=(side, side, 2)),
                              rng.choice([-0.3, 0.0, 0.3], size=(side, side, 2))], axis=-1).astype(np.float32)
    return prob.astype(np.float32), offsets


def check_noise_passes(reference, files, noise_seed: int, amplitude: float) -> dict:
    artifact = MapRunner(reference.run, reference.input_size, amplitude, noise_seed, reference.grouper)
    report = verify.verify_runners(artifact, reference, files, "fp32", "tflite", "reference + noise", "reference")
    assert report["status"] == "passed", verify.format_report(report)
    return report


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[Path]:
    return sorted(write_images(tmp_path_factory.mktemp("noise_images"), 3, seed=5).iterdir())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(map_seed=st.integers(0, 2**31), noise_seed=st.integers(0, 2**31), amplitude=st.floats(1e-7, NOISE))
def test_noise_on_threshold_and_tie_maps_passes(images, map_seed, noise_seed, amplitude):
    maps = critical_maps(map_seed)
    reference = MapRunner(lambda canvas: maps, 64)
    report = check_noise_passes(reference, images, noise_seed, amplitude)
    assert report["metrics"]["cells_near_decision"] > 0  # the maps do sit on decisions


def test_near_decisions_finds_the_ones_built_in():
    """Every cell on t_fg is near; an exact plateau of two peaks keeps its instance; a lone peak on t_c could
    vanish; identical outputs flip nothing; a quantised artifact's large error is not excused."""
    prob = np.full((8, 8), 0.02, np.float32)
    prob[2:6, 2:6] = 0.55  # person cells below t_c
    prob[3, 3] = prob[3, 4] = 0.9  # a plateau of two peaks
    prob[6, 2:6] = GROUPER.t_fg
    offsets = np.zeros((8, 8, 4), np.float32)
    same = near_decisions(prob, offsets, prob, offsets, 4.0, GROUPER)
    assert not same.cells.any() and same.removable == same.addable == 0 and same.prob_error == 0
    noisy = near_decisions(prob, offsets, prob + np.float32(1e-5), offsets, 4.0, GROUPER)
    assert noisy.cells[6, 2:6].all() and noisy.prob_error == pytest.approx(1e-5, rel=0.1)
    # the plateau keeps a peak whichever twin wins: nothing vanishes, and the person's cells, whose IoU with
    # either twin's box is well above t_iou, still count
    assert noisy.removable == noisy.addable == 0 and not noisy.cells[2:6, 2:6].any()
    on_t_c = prob.copy()
    on_t_c[3, 3], on_t_c[3, 4] = 0.55, GROUPER.t_c  # the only peak sits on t_c: it could vanish, with its person
    lone = near_decisions(on_t_c, offsets, on_t_c + np.float32(1e-5), offsets, 4.0, GROUPER)
    assert lone.removable == 1 and lone.cells[2:6, 2:6].all()
    prob[3, 4] = 0.85  # no plateau: one sure peak
    quantised = near_decisions(prob, offsets, prob + np.float32(0.3), offsets, 4.0, GROUPER)
    assert quantised.prob_error == 5e-5  # capped: quantisation error is not excused
    assert quantised.removable == quantised.addable == 0 and not quantised.cells[2:6, 2:6].any()


class CachedRunner:
    """A runner's outputs computed once per canvas (the property tests perturb the same outputs many times)."""

    def __init__(self, runner):
        self.runner, self.input_size, self.grouper, self.cache = runner, runner.input_size, runner.grouper, {}

    def run(self, canvas):
        key = hashlib.sha1(np.ascontiguousarray(canvas).tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.runner.run(canvas)
        return self.cache[key]


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    from bbe_mobile.export.runtime import KerasRunner
    from bbe_mobile.modeling.bundle import load_bundle

    return CachedRunner(KerasRunner(load_bundle(make_bundle(tmp_path_factory.mktemp("noise_bundle")))))


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise_seed=st.integers(0, 2**31), amplitude=st.floats(1e-7, NOISE))
def test_noise_on_the_tiny_model_passes(tiny_reference, images, noise_seed, amplitude):
    report = check_noise_passes(tiny_reference, images, noise_seed, amplitude)
    assert report["metrics"]["instances_reference"] > 0


@pytest.fixture(scope="module")
def bundled_reference():
    from bbe_mobile.export.runtime import KerasRunner
    from bbe_mobile.modeling.bundle import load_bundle

    return CachedRunner(KerasRunner(load_bundle(str(ROOT / "models" / "bbe_mnv2_100"))))


@pytest.mark.slow  # four 512-pixel forward passes of the bundled model (~10 s on 2 loaded cores), then NumPy only
@needs_shared
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(noise_seed=st.integers(0, 2**31), amplitude=st.floats(1e-7, NOISE))
def test_noise_on_the_bundled_model_passes(bundled_reference, noise_seed, amplitude):
    files = verify.select_images(SHARED / "val", 4)  # 2 with 2+ people, 2 with one
    report = check_noise_passes(bundled_reference, files, noise_seed, amplitude)
    assert report["metrics"]["instances_reference"] >= 4
