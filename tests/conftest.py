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


def decisive_heads(model, size: int, seed: int = 0) -> None:
    """Rescale a random model's heads so it outputs people with decisive probabilities: person logits of std 4
    around 0 (on a random canvas), so few cells sit near t_fg or tie with a neighbour (3-9 % within 0.05 of
    0.5 against ~25 % with std 3, none saturated at 1.0), and box offsets of std ~0.3, so grouping finds
    instances and verification compares real decisions."""
    import numpy as np

    rng = np.random.default_rng(seed)
    canvas = rng.uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    for name, std in (("person_logits", 4.0), ("box_offsets", 0.3)):
        layer = model.get_layer(name)
        kernel, bias = layer.get_weights()
        kernel = rng.normal(0, 1, kernel.shape).astype(np.float32)
        layer.set_weights([kernel, np.zeros_like(bias)])
        out = np.asarray(model(canvas)[0 if name == "person_logits" else 1])
        kernel *= std / max(float(out.std()), 1e-6)
        layer.set_weights([kernel, np.zeros_like(bias)])
        out = np.asarray(model(canvas)[0 if name == "person_logits" else 1])
        layer.set_weights([kernel, (-np.median(out.reshape(-1, out.shape[-1]), axis=0)).astype(np.float32)])


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory):
    """A tiny random-weight BBE bundle (input 64, 16 ASPP/decoder filters, decisive heads) on disk."""
    from bbe_mobile.grouper import GrouperConfig
    from bbe_mobile.modeling.bundle import save_bundle
    from bbe_mobile.modeling.network import ModelConfig, build_bbe

    config = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16)
    model = build_bbe(64, alpha=0.35, aspp_filters=16, decoder_filters=16)
    decisive_heads(model, 64)
    return str(save_bundle(tmp_path_factory.mktemp("tiny") / "tiny", model, config, 64, GrouperConfig(), "tiny"))
