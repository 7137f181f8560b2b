"""The bench result as Markdown: settings, per-format table, BBE against its twin, groupers against the
paper's 1-2 ms, peers, estimates and device measurements."""
from __future__ import annotations

from bbe_mobile.bench.device_results import PAPER_NOTE, paper_verdict
from bbe_mobile.bench.groupers import mode_pairs, refine_label

TRACKER_TARGET = "tracker + smoothing per frame (issue 24): <= 0.1 ms Swift/Kotlin, <= 0.5 ms NumPy"


def _ms(stat: dict | None) -> str:
    if not stat:
        return "-"
    return f"{stat['median_ms']:.2f} / {stat['p90_ms']:.2f}" if stat["median_ms"] < 10 else \
        f"{stat['median_ms']:.1f} / {stat['p90_ms']:.1f}"


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_markdown(result: dict) -> str:
    """The whole report as Markdown (also what the CLI prints)."""
    m, s, prof = result["model"], result["settings"], result["profile"]
    threads = s["threads"]
    many = max(threads)
    est = result.get("estimates")
    lines = [f"# bbe-mobile bench: {m['name']} (input {m['input_size']}, maps {m['grid']}x{m['grid']})", ""]
    host = result["host"]
    lines.append(f"Model file: `{m['path']}`.")
    lines.append(f"Measured on this host: {host['cpu']}, {host['cores']} cores, {host['system']} {host['machine']}; "
                 f"{s['runs']} runs after {s['warmup']} warm-up (grouper {s['grouper_runs']}/{s['grouper_warmup']}), "
                 f"interleaved; median / p90 in ms; load average at the end {_f(host.get('load_1min_at_end'), 2)}.")
    lines.append(f"Reference: **{PAPER_NOTE}** (and the model \"virtually as efficient as categorical semantic "
                 "segmentation\").")
    if est:
        lines.append(f"Device profile `{prof['name']}`: **{est['label']}** - estimates, not measurements.")
    lines.append("")
    lines.append("## Model, per format")
    lines.append("")
    head = ["format", "size MB", "1 thread ms", f"{many} threads ms"]
    if est:
        head.append(f"{prof['name']} ESTIMATE ms")
    head += ["verify", "prob mean abs", "mask IoU", "inst IoU"]
    has_ap = any((r.get("verify") or {}).get("ap_drop") is not None for r in result["formats"])
    if has_ap:
        head += ["AP Keras / artifact", "AP drop (± bootstrap std)"]
    has_eval = any(r.get("eval") for r in result["formats"])
    if has_eval:
        head += ["mask AP", "AP50"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    est_by = {e["format"]: e for e in (est or {}).get("models", [])}
    for r in result["formats"]:
        lat = r.get("latency", {})
        if r["target"] == "coreml":
            one = many_cell = "n/a (macOS)"
        elif r["target"] == "keras":
            one, many_cell = "-", _ms(lat.get("tf")) + " (TF graph, default threads)"
        else:
            one, many_cell = _ms(lat.get("1")), _ms(lat.get(str(many)))
        if r["status"] != "ok":
            one = many_cell = "failed"
        v = r.get("verify") or {}
        cells = [r["format"], _f(r.get("size_mb")), one, many_cell]
        if est:
            e = est_by.get(r["format"])
            cells.append(f"~{e['estimate_ms']:.1f} (est.)" if e else "-")
        vstatus = v.get("status", "reference" if r["target"] == "keras" else "-")
        cells += [vstatus, _f(v.get("prob_mean_abs"), 4), _f(v.get("mask_iou")), _f(v.get("instance_iou"))]
        if has_ap:
            ap = v.get("ap_drop") is not None
            cells += [f"{_f(v.get('ap_reference'))} / {_f(v.get('ap_artifact'))}" if ap else "-",
                      f"{v['ap_drop']:.3f} ± {v['ap_drop_std']:.3f}" if ap else "-"]
        if has_eval:
            ev = r.get("eval") or {}
            cells += [_f(ev.get("mask_ap")), _f(ev.get("mask_ap50"))]
        lines.append("| " + " | ".join(cells) + " |")
    if 1 not in threads:
        lines.append("")
        lines.append("(no 1-thread runs: estimates need --threads including 1)")
    lines.append("")
    lines.append("## BBE vs semantic-only twin (TFLite, same backbone/decoder/weights, no box head; alternated runs)")
    lines.append("")
    if result["twin"]:
        lines += ["| precision | threads | BBE ms | semantic-only ms | ratio BBE/semantic | ratio IQR | BBE MB | "
                  "semantic MB |", "|---|---|---|---|---|---|---|---|"]
        for t in result["twin"]:
            lines.append(f"| {t['precision']} | {t['threads']} | {_ms(t['bbe'])} | {_ms(t['twin'])} | "
                         f"**{t['ratio']:.3f}** | {t['ratio_iqr']:.3f} | {t['bbe_size_mb']:.3f} | "
                         f"{t['twin_size_mb']:.3f} |")
    else:
        lines.append("not measured (needs tflite-fp32 / tflite-int8 in --formats)")
    lines.append("")
    lines.append(f"## Grouper (golden bench cases; {PAPER_NOTE})")
    lines.append("")
    sources = result["groupers"]
    ok = [g for g in sources if g["status"] == "ok"]
    cases = []
    for g in ok:
        for r in g["results"]:
            key = (r.get("height"), r.get("people"), r.get("name"))
            if key not in cases:
                cases.append(key)
    cases.sort(key=lambda k: (k[0] or 0, k[1] or 0))
    head = ["case", "map", "people"] + [f"{g['source']} ms" for g in ok]
    if est and est["groupers"]:
        head.append(f"{prof['name']} ESTIMATE ms ({est['grouper_source']})")
    head.append("paper (iPhone 7)")
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    est_g = {e["case"]: e for e in (est or {}).get("groupers", [])}
    for h, people, name in cases:
        cells = [name, f"{h}x{h}" if h else "-", str(people if people is not None else "-")]
        for g in ok:
            r = next((r for r in g["results"] if r.get("name") == name), None)
            cells.append(_ms(r))
        if est and est["groupers"]:
            e = est_g.get(name)
            cells.append(f"~{e['estimate_ms']:.2f} (est., {e['paper']})" if e else "-")
        cells.append(TRACKER_TARGET if name and name.startswith("track_") else "1-2 ms")
        lines.append("| " + " | ".join(cells) + " |")
    for g in sources:
        lines.append(f"- {g['source']}: {g['note']}")
    ratios = [(g["source"], mode_pairs(g["results"])) for g in ok]
    if any(pairs for _, pairs in ratios):
        lines += ["", "Mode refine against the paper's mode (median ms, refine / paper; NAME_refine rows, NAME mean: "
                  "NAME_refine_mean rows):", ""]
        for source, pairs in ratios:
            lines.append(f"- {source}: " + ", ".join(
                f"{refine_label(paper, refine)} {refine['median_ms'] / paper['median_ms']:.2f}x"
                for paper, refine in pairs if paper["median_ms"] > 0))
    if result["grouper_share"]:
        lines.append("")
        lines.append("Grouper share of model latency (129x129 maps, the output of a 513/516 input):")
        lines.append("")
        first = result["grouper_share"][0]
        lines.append(f"model: {first['model_format']} ({first['model_threads']} threads) {first['model_ms']:.1f} ms")
        lines.append("")
        by_source: dict[str, list[dict]] = {}
        for sh in result["grouper_share"]:
            by_source.setdefault(sh["source"], []).append(sh)
        for source, shares in by_source.items():
            lines.append(f"- {source}: " + ", ".join(
                f"{sh['people']} {'person' if sh['people'] == 1 else 'people'} {sh['grouper_ms']:.2f} ms = {100 * sh['share']:.1f} %" for sh in shares))
    if result["peers"]:
        lines.append("")
        lines.append("## Peers (../shared/peers, LiteRT, at their input size)")
        lines.append("")
        lines += ["| peer | input | dtype | size MB | 1 thread ms | " + f"{many} threads ms |", "|---|---|---|---|---|---|"]
        for p in result["peers"]:
            lines.append(f"| {p['name']} | {p['input']} | {p['dtype']} | {p['size_mb']:.3f} | "
                         f"{_ms(p['latency'].get('1'))} | {_ms(p['latency'].get(str(many)))} |")
    if result["from_device"]:
        lines.append("")
        lines.append("## Measured on device (--from-device; real measurements, shown beside the host numbers and "
                     "estimates above)")
        for doc in result["from_device"]:
            lines.append("")
            lines.append(f"`{doc['file']}`: source {doc.get('source', '?')}, device {doc.get('device', '?')}, "
                         f"{doc.get('runs', '?')} runs after {doc.get('warmup', '?')} warm-up")
            lines.append("")
            lines += ["| kind | name | precision | median ms | p90 ms | vs paper 1-2 ms (grouper) |",
                      "|---|---|---|---|---|---|"]
            for r in doc["results"]:
                verdict = paper_verdict(r["median_ms"]) if r["kind"] == "grouper" else "-"
                lines.append(f"| {r['kind']} | {r.get('name', '-')} | {r.get('precision', '-')} | "
                             f"{r['median_ms']:.3f} | {r['p90_ms']:.3f} | {verdict} |")
    if est:
        lines.append("")
        lines.append(f"## How the {prof['name']} estimate is made")
        lines.append("")
        lines.append(f"{prof['method']} Phone score: {prof['single_core']['score']} "
                     f"({prof['single_core']['benchmark']}, {prof['single_core']['source']}). Host reference score: "
                     f"{prof['host_reference']['score']} ({prof['host_reference']['how']}). Limits: {prof['limits']}")
    if result["notes"]:
        lines.append("")
        lines.append("Notes: " + "; ".join(result["notes"]))
    lines.append("")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in result.get("phase_seconds", {}).items())
    lines.append(f"Total bench time {result['seconds']:.0f} s" + (f" ({phases})." if phases else "."))
    return "\n".join(lines) + "\n"
