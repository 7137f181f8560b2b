"""The bench result as a bar chart (PNG, log-scale milliseconds): models, twin, peers, groupers, phone
estimates and device measurements, with the paper's 1-2 ms grouping band."""
from __future__ import annotations

import math
import os

from bbe_mobile.bench.device_results import PAPER_GROUPER_MS
from bbe_mobile.utils.atomic import atomic_path


def _chart_bars(result: dict) -> list[tuple[str, float, float, str]]:
    """(label, median, p90, kind) with kind measured / estimate / device / peer / grouper."""
    bars = []
    many = str(max(result["settings"]["threads"]))
    for r in result["formats"]:
        for key in dict.fromkeys(("1", many, "tf")):
            stat = r.get("latency", {}).get(key)
            if stat:
                label = "TF graph" if key == "tf" else f"{key}t"
                bars.append((f"{r['format']} {label}", stat["median_ms"], stat["p90_ms"], "model"))
    for t in result["twin"]:
        bars.append((f"semantic-only {t['precision']} {t['threads']}t", t["twin"]["median_ms"], t["twin"]["p90_ms"],
                     "twin"))
    for p in result["peers"]:
        for key, stat in p["latency"].items():
            bars.append((f"{p['name'][:34]} {key}t", stat["median_ms"], stat["p90_ms"], "peer"))
    for g in result["groupers"]:
        for r in g["results"]:
            if r.get("kind", "grouper") == "grouper":
                bars.append((f"grouper {g['source']} {r['name'].removeprefix('bench_')}", r["median_ms"], r["p90_ms"],
                             "grouper"))
    est = result.get("estimates")
    if est:
        for e in est["models"]:
            bars.append((f"EST {e['format']} 1t", e["estimate_ms"], e["estimate_ms"], "estimate"))
        for e in est["groupers"]:
            bars.append((f"EST grouper {e['source']} {e['case'].removeprefix('bench_')}", e["estimate_ms"],
                         e["estimate_ms"], "estimate"))
    for doc in result["from_device"]:
        for r in doc["results"]:
            bars.append((f"{doc.get('device', 'device')} {r['kind']} {r.get('name', '')}"[:40], r["median_ms"],
                         r["p90_ms"], "device"))
    return bars


COLORS = {"model": (52, 101, 164), "twin": (114, 159, 207), "peer": (117, 80, 123), "grouper": (78, 154, 6),
          "estimate": (245, 121, 0), "device": (204, 0, 0)}
LEGEND = {"model": "BBE model (host)", "twin": "semantic-only twin (host)", "peer": "peers (host)",
          "grouper": "grouper (host)", "estimate": "phone ESTIMATE", "device": "measured on device"}


def draw_chart(result: dict, path: str | os.PathLike) -> None:
    """Horizontal bars (log-scale ms; median bar, p90 whisker) with the paper's 1-2 ms grouper band; PIL only."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    bars = [b for b in _chart_bars(result) if b[1] > 0]
    font = ImageFont.load_default()
    row_h, left, right, top, bottom = 16, 300, 40, 60, 70
    width = 1100
    height = top + bottom + row_h * max(len(bars), 1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    lo = 10 ** math.floor(math.log10(min([b[1] for b in bars] + [0.5])))
    hi = 10 ** math.ceil(math.log10(max([b[2] for b in bars] + [PAPER_GROUPER_MS[1] * 2])))
    span = math.log10(hi) - math.log10(lo)

    def x(ms: float) -> float:
        return left + (width - left - right) * (math.log10(max(ms, lo)) - math.log10(lo)) / span

    plot_bottom = top + row_h * max(len(bars), 1)
    draw.rectangle([x(PAPER_GROUPER_MS[0]), top - 6, x(PAPER_GROUPER_MS[1]), plot_bottom], fill=(255, 236, 179))
    draw.text((x(PAPER_GROUPER_MS[0]) + 2, top - 20), "paper: grouper 1-2 ms (iPhone 7)", fill=(150, 100, 0), font=font)
    decade = lo
    while decade <= hi * 1.0001:
        gx = x(decade)
        draw.line([gx, top - 6, gx, plot_bottom], fill=(220, 220, 220))
        draw.text((gx - 12, plot_bottom + 4), f"{decade:g}", fill="black", font=font)
        decade *= 10
    draw.text((left, plot_bottom + 18), "milliseconds per run (log scale; bar = median, whisker = p90)", fill="black",
              font=font)
    m = result["model"]
    title = (f"bbe-mobile bench: {m['name']} input {m['input_size']} on {result['host']['cpu']} "
             f"({result['host']['cores']} cores)")
    if result.get("estimates"):
        title += f" + {result['profile']['name']} ESTIMATES"
    draw.text((10, 10), title, fill="black", font=font)
    for k, (label, median, p90, kind) in enumerate(bars):
        y = top + k * row_h
        draw.text((10, y + 2), label[:46], fill="black", font=font)
        draw.rectangle([left, y + 3, x(median), y + row_h - 3], fill=COLORS[kind])
        if p90 > median:
            draw.line([x(median), y + row_h // 2, x(p90), y + row_h // 2], fill="black")
            draw.line([x(p90), y + 4, x(p90), y + row_h - 4], fill="black")
        draw.text((x(max(p90, median)) + 4, y + 2), f"{median:.3g}", fill=(80, 80, 80), font=font)
    lx = 10
    for kind in dict.fromkeys(b[3] for b in bars):
        draw.rectangle([lx, height - 22, lx + 10, height - 12], fill=COLORS[kind])
        draw.text((lx + 14, height - 24), LEGEND[kind], fill="black", font=font)
        lx += 30 + int(draw.textlength(LEGEND[kind], font=font))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
