"""The old import path of the network, kept as an alias: ``bbe_mobile.model.build_bbe`` is the documented way to
build the model and user code holds it. The network lives in ``bbe_mobile.modeling.network``."""
from __future__ import annotations

from bbe_mobile.modeling.network import ModelConfig, build_bbe

__all__ = ["ModelConfig", "build_bbe"]
