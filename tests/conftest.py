"""Shared fixtures: paths to ../shared (skipped with a reason when absent) and tiny model bundles."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BBE_SHARED", ROOT.parent / "shared"))
COCO = SHARED / "data" / "coco-person-mini"
WEIGHTS = SHARED / "weights" / "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5"
WEIGHTS_100 = SHARED / "weights" / "mobilenet_v2_1.0_224_imagenet_no_top.weights.h5"  # the default backbone
GOLDEN = ROOT / "tests" / "golden"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared is not beside this checkout)")
    return path


def load_benchmark(name: str):
    """The script ``benchmarks/NAME.py`` imported as module ``NAME`` (benchmarks are not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def coco_val():
    need(COCO / "instances_person_val.json")
    return str(COCO / "val"), str(COCO / "instances_person_val.json")


@pytest.fixture(scope="session")
def coco_train():
    need(COCO / "instances_person_train.json")
    return str(COCO / "train"), str(COCO / "instances_person_train.json")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny random-weight BBE bundle (input 64, 16 ASPP/decoder filters) on disk."""
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.bundle import save_bundle
    from bbe_mobile.modeling.network import ModelConfig, build_bbe

    config = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16)
    model = build_bbe(64, alpha=0.35, aspp_filters=16, decoder_filters=16)
    return str(save_bundle(tmp_path_factory.mktemp("tiny") / "tiny", model, config, 64, GrouperConfig(), "tiny"))
