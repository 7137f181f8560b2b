"""Weight averaging of the snapshots of one training run (stochastic weight averaging along its trajectory).

Late snapshots of a run at a constant learning rate scatter around a minimum; their mean weights usually sit
closer to it than any one of them (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima"). Every
variable is averaged, the batch-norm moving statistics included (the backbone's are frozen, so only the heads'
differ). The snapshots must share the architecture, input size and grouper: they come from one run.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bbe_mobile.modeling.bundle import ModelError, load_bundle, save_bundle


def average_snapshots(snapshots: list[str | os.PathLike], out: str | os.PathLike, name: str | None = None) -> Path:
    """Average the weights of the model bundles ``snapshots`` (two or more, one architecture) and write the
    result as a bundle at ``out`` (a new or empty directory; atomic). Its ``bbe.json`` keeps the last snapshot's
    ``info`` with ``averaged_from``: the sources and their training steps. Returns ``out``."""
    if len(snapshots) < 2:
        raise ValueError(f"averaging needs at least two snapshots, got {len(snapshots)}")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} exists and is not an empty directory")
    bundles = [load_bundle(path) for path in snapshots]
    first = bundles[0]
    for path, bundle in zip(snapshots[1:], bundles[1:]):
        if (bundle.config, bundle.input_size, bundle.grouper) != (first.config, first.input_size, first.grouper):
            raise ValueError(f"{path} differs from {snapshots[0]} in architecture, input size or grouper: "
                             "average snapshots of one run")
    weights = [bundle.model.get_weights() for bundle in bundles]
    mean = [np.mean([w[k] for w in weights], axis=0, dtype=np.float64).astype(weights[0][k].dtype)
            for k in range(len(weights[0]))]
    if not all(np.isfinite(m).all() for m in mean):
        raise ModelError("the averaged weights are not finite")
    first.model.set_weights(mean)
    info = {**bundles[-1].info, "averaged_from": [{"path": str(path), "steps": bundle.info.get("steps")}
                                                   for path, bundle in zip(snapshots, bundles)]}
    return save_bundle(target, first.model, first.config, first.input_size, first.grouper, name or first.name,
                       info)
