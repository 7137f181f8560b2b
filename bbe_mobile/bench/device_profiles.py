"""Device profiles (``profiles/NAME.json``): a phone's single-core score against this host's, which turns host
timings into clearly labelled phone *estimates*; loading a profile checks every key the report reads."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

from bbe_mobile.bench.options import BenchError

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
PROFILE_KINDS = ("host", "phone")
# keys a phone profile must have (estimates and the Markdown report read them)
PHONE_PROFILE_KEYS = ("method", "method_short", "limits", "single_core.score", "single_core.benchmark",
                      "single_core.source", "host_reference.score", "host_reference.how")
PROFILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # used in output file names: no path, no leading dot


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.json"))


def _profile_value(profile: dict, key: str):
    """``profile[a][b]`` for ``key`` "a.b"; KeyError if any level is missing or not an object."""
    value = profile
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def load_profile(name: str) -> dict:
    """A device profile by name (``bbe_mobile/bench/profiles/NAME.json``) or a path to a profile JSON, checked for every
    key the report reads."""
    path = Path(name) if name.endswith(".json") else PROFILES_DIR / f"{name}.json"
    if not path.is_file():
        raise BenchError(f"unknown device {name!r}: choose from {', '.join(profile_names())} (or a profile .json)")
    try:
        profile = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"bad device profile {path}: {exc}") from None
    if not isinstance(profile, dict):
        raise BenchError(f"bad device profile {path}: the top level must be a JSON object")
    profile.setdefault("name", path.stem)
    if not isinstance(profile["name"], str) or not PROFILE_NAME.fullmatch(profile["name"]):
        raise BenchError(f"bad device profile {path}: 'name' {profile['name']!r} must be letters, digits, '_', '.' "
                         "or '-' and not start with '.' (it names the output files)")
    if profile.get("kind") not in PROFILE_KINDS:
        raise BenchError(f"bad device profile {path}: 'kind' is {profile.get('kind')!r}, expected one of "
                         f"{', '.join(PROFILE_KINDS)}")
    if profile["kind"] == "phone":
        for key in PHONE_PROFILE_KEYS:
            try:
                _profile_value(profile, key)
            except KeyError:
                raise BenchError(f"bad device profile {path}: a phone profile needs {key!r}") from None
        try:
            scores = [float(_profile_value(profile, key)) for key in ("single_core.score", "host_reference.score")]
        except (TypeError, ValueError, OverflowError):
            raise BenchError(f"bad device profile {path}: single_core.score and host_reference.score must be "
                             "numbers") from None
        if not all(math.isfinite(s) and s > 0 for s in scores):
            raise BenchError(f"bad device profile {path}: scores must be positive")
    return profile


def speed_factor(profile: dict) -> float | None:
    """Phone ms = host ms x factor (host single-core score / phone single-core score); None for the host."""
    if profile.get("kind") != "phone":
        return None
    return float(profile["host_reference"]["score"]) / float(profile["single_core"]["score"])
