"""Runners: one interface over every way to execute a BBE model (Keras now; exported artifacts in export).

A runner takes one letterboxed canvas ``(S, S, 3)`` float32 RGB in [0, 255] and returns
``prob`` (H, W) float32 probabilities and ``offsets`` (H, W, 4) float32, H = W = S / stride.
Non-finite outputs raise ``ValueError``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bbe_mobile.bundle import ModelBundle
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.model import sigmoid


def check_outputs(prob: np.ndarray, offsets: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Squeeze the batch axis and reject non-finite outputs (model output is never trusted silently)."""
    prob = np.asarray(prob, np.float32).reshape(prob.shape[-3], prob.shape[-2])
    offsets = np.asarray(offsets, np.float32).reshape(offsets.shape[-3], offsets.shape[-2], 4)
    for name, array in (("probabilities", prob), ("box offsets", offsets)):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{source} produced non-finite {name} ({int(np.sum(~np.isfinite(array)))} values)")
    return prob, offsets


@dataclass
class KerasRunner:
    """Runs a Keras model bundle; ``input_size`` is the canvas side it was built for."""

    bundle: ModelBundle

    @property
    def input_size(self) -> int:
        return self.bundle.input_size

    @property
    def stride(self) -> int:
        return self.bundle.stride

    @property
    def grouper(self) -> GrouperConfig:
        return self.bundle.grouper

    @property
    def name(self) -> str:
        return f"{self.bundle.name} (keras)"

    def run(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.bundle.config.box_head:
            raise ValueError(f"{self.bundle.name} is a semantic-only model: it has no box head to group with")
        logits, offsets = self.bundle.model(canvas[None].astype(np.float32), training=False)
        return check_outputs(sigmoid(np.asarray(logits)), np.asarray(offsets), self.name)
