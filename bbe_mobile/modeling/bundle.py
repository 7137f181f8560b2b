"""Model bundles: a directory holding ``model.keras`` (loaded in safe mode) and ``bbe.json`` (architecture,
input size, grouper thresholds). The bundled default is ``utils.paths.DEFAULT_MODEL``."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.modeling.network import ModelConfig
from bbe_mobile.utils.atomic import atomic_path
from bbe_mobile.utils.json_files import JsonFileError, read_json_object, show_value
from bbe_mobile.utils.paths import DEFAULT_MODEL

MODEL_FILE = "model.keras"
CONFIG_FILE = "bbe.json"


class ModelError(ValueError):
    """A model path that cannot be loaded (missing, corrupt, incompatible)."""


@dataclass
class ModelBundle:
    """A loaded model: Keras ``model``, its ``config`` (architecture), ``input_size`` (canvas side, px),
    ``grouper`` thresholds, ``name`` and free-form ``info`` (training facts)."""

    model: object
    config: ModelConfig
    input_size: int
    grouper: GrouperConfig
    name: str
    info: dict

    @property
    def stride(self) -> int:
        return self.config.stride

    def resized(self, input_size: int) -> "ModelBundle":
        """The same weights in a model built for another input side (a multiple of 16)."""
        if input_size == self.input_size:
            return self
        from bbe_mobile.modeling.network import build_bbe  # noqa: PLC0415

        model = build_bbe(input_size, **_build_kwargs(self.config))
        model.set_weights(self.model.get_weights())
        return dataclasses.replace(self, model=model, input_size=input_size)


def _build_kwargs(config: ModelConfig) -> dict:
    return {"backbone": config.backbone, "alpha": config.alpha, "output_stride": config.output_stride,
            "aspp_enabled": config.aspp, "aspp_filters": config.aspp_filters,
            "decoder_filters": config.decoder_filters, "box_head": config.box_head,
            "full_resolution": config.full_resolution, "box_tower": config.box_tower}


def build_from_config(config: ModelConfig, input_size: int, backbone_weights: str | None = None):
    """``build_bbe`` from a ``ModelConfig``."""
    from bbe_mobile.modeling.network import build_bbe  # noqa: PLC0415

    return build_bbe(input_size, backbone_weights=backbone_weights, **_build_kwargs(config))


def read_bundle_config(config_file: Path) -> tuple[dict, ModelConfig, GrouperConfig]:
    """Read and check a bundle's ``bbe.json``: (the document, its architecture, its grouper thresholds).
    ModelError, one line naming the file and the field, if it is missing, not JSON or has a bad value."""
    def bad(field: str, problem: str) -> ModelError:
        return ModelError(f"bad model config {config_file}: {field}: {problem}")

    if not config_file.is_file():
        raise ModelError(f"{config_file} not found: a model bundle needs {MODEL_FILE} and {CONFIG_FILE}")
    try:
        meta = read_json_object(config_file)
    except JsonFileError as exc:
        raise ModelError(f"bad model config {exc}") from None
    size = meta.get("input_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 4096 or size % 16:
        raise bad("input_size", f"must be a multiple of 16 in 16..4096, got {show_value(size)}")
    for key, kind in (("name", str), ("info", dict)):
        if key in meta and not isinstance(meta[key], kind):
            raise bad(key, f"must be a {'string' if kind is str else 'JSON object'}, got {show_value(meta[key])}")

    def checked(key: str, make, default):
        fields = meta.get(key, default)
        if not isinstance(fields, dict):
            raise bad(key, f"must be a JSON object, got {show_value(fields)}")
        try:
            value = make(**fields)
            value.validate()
        except (TypeError, ValueError) as exc:
            raise bad(key, str(exc).splitlines()[0][:160]) from None
        return value

    config, grouper = checked("model", ModelConfig, None), checked("grouper", GrouperConfig, {})
    return meta, config, grouper


def load_bundle(path: str | os.PathLike | None = None, input_size: int | None = None,
                output_stride: int | None = None) -> ModelBundle:
    """Load a model bundle directory (default: the bundled model). ``input_size`` / ``output_stride`` rebuild
    the network for another canvas side or output stride (the same weights load into both strides)."""
    import keras  # noqa: PLC0415

    root = Path(path) if path is not None else DEFAULT_MODEL
    if not root.exists():
        hint = " (the bundled default model is missing from this install; pass --model)" if path is None else ""
        raise ModelError(f"model not found: {root}{hint}")
    model_file = root / MODEL_FILE if root.is_dir() else root
    config_file = (root if root.is_dir() else root.parent) / CONFIG_FILE
    meta, config, grouper = read_bundle_config(config_file)
    if not model_file.is_file() or not zipfile.is_zipfile(model_file):
        raise ModelError(f"not a Keras model file: {model_file}")
    try:
        model = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a corrupt or foreign file
        raise ModelError(f"cannot load {model_file}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    bundle = ModelBundle(model, config, meta["input_size"], grouper, meta.get("name", root.name), meta.get("info", {}))
    if output_stride is not None and output_stride != config.output_stride:
        config = dataclasses.replace(config, output_stride=output_stride)
        rebuilt = build_from_config(config, bundle.input_size)
        rebuilt.set_weights(model.get_weights())
        bundle = dataclasses.replace(bundle, model=rebuilt, config=config)
    return bundle.resized(input_size) if input_size else bundle


def save_bundle(directory: str | os.PathLike, model, config: ModelConfig, input_size: int, grouper: GrouperConfig,
                name: str, info: dict | None = None) -> Path:
    """Write ``model.keras`` and ``bbe.json`` into ``directory`` atomically: a new (or empty) directory is
    written whole at a temporary path and renamed into place, so a kill leaves it absent or complete; into a
    directory that holds other things (a training run) each file is written to a temp directory and renamed in,
    ``model.keras`` first (a kill between the two renames leaves the older ``bbe.json``, or none)."""
    out = Path(directory)
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        with atomic_path(out) as tmp:
            tmp.mkdir()
            _write_bundle_files(tmp, model, config, input_size, grouper, name, info)
        return out
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-bundle-", dir=out))
    try:
        _write_bundle_files(tmp, model, config, input_size, grouper, name, info)
        os.replace(tmp / MODEL_FILE, out / MODEL_FILE)
        os.replace(tmp / CONFIG_FILE, out / CONFIG_FILE)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_bundle_files(directory: Path, model, config: ModelConfig, input_size: int, grouper: GrouperConfig,
                        name: str, info: dict | None) -> None:
    model.save(directory / MODEL_FILE)
    doc = {"name": name, "input_size": input_size, "stride": config.stride, "model": dataclasses.asdict(config),
           "grouper": dataclasses.asdict(grouper), "info": info or {}}
    (directory / CONFIG_FILE).write_text(json.dumps(doc, indent=1) + "\n")
