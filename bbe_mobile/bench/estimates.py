"""Figures derived from the host measurements: the model latency the grouper is compared with, the
grouper's share of it, and the phone estimates of the chosen device profile."""
from __future__ import annotations

from bbe_mobile.bench.device_profiles import speed_factor
from bbe_mobile.bench.device_results import paper_verdict


def reference_model(result: dict) -> dict | None:
    """The model latency the grouper is compared with: TFLite int8 (else fp32, else any) at the most threads."""
    rows = {r["format"]: r for r in result["formats"] if r.get("latency")}
    for fmt in ("tflite-int8", "tflite-fp32", "onnx-fp32", *rows):
        if fmt in rows:
            lat = rows[fmt]["latency"]
            key = max(lat, key=lambda k: int(k) if k.isdigit() else 0)
            return {"format": fmt, "threads": key, "median_ms": lat[key]["median_ms"]}
    return None


def grouper_share(result: dict) -> list[dict]:
    """Grouper time on the 129x129 cases (the map of a 513/516 input) as a share of the model latency."""
    ref = reference_model(result)
    if ref is None:
        return []
    out = []
    for g in result["groupers"]:
        for r in g["results"]:
            if r.get("height") == 129 and r.get("kind", "grouper") == "grouper":
                out.append({"source": g["source"], "case": r["name"], "people": r.get("people"),
                            "grouper_ms": r["median_ms"], "model_format": ref["format"],
                            "model_threads": ref["threads"], "model_ms": ref["median_ms"],
                            "share": r["median_ms"] / ref["median_ms"]})
    return out


def estimates(result: dict) -> dict | None:
    """Phone estimates: host single-thread ms x (host score / phone score). None for the host profile."""
    profile = result["profile"]
    factor = speed_factor(profile)
    if factor is None:
        return None
    models = []
    for row in result["formats"]:
        lat = row.get("latency", {}).get("1")
        if lat:
            models.append({"format": row["format"], "host_ms": lat["median_ms"], "estimate_ms": lat["median_ms"] * factor})
    preferred = profile.get("grouper_source", "numpy")
    order = [preferred] + [s for s in ("swift", "kotlin", "numpy") if s != preferred]
    groupers = []
    source = next((s for s in order if any(g["source"] == s and g["status"] == "ok" for g in result["groupers"])),
                  None)
    if source:
        rows = next(g for g in result["groupers"] if g["source"] == source)["results"]
        for r in rows:
            est = r["median_ms"] * factor
            groupers.append({"source": source, "case": r["name"], "host_ms": r["median_ms"], "estimate_ms": est,
                             "paper": paper_verdict(est) if r.get("kind", "grouper") == "grouper" else "-"})
    return {"factor": factor, "label": f"ESTIMATE for {profile.get('label', profile['name'])} "
                                       f"(host single-thread x {factor:.2f}, {profile['method_short']})",
            "grouper_source": source, "models": models, "groupers": groupers}
