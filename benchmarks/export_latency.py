"""Export variants of a BBE model: size, conversion time, verification figures and CPU latency, one row each.

    nice -n 10 python benchmarks/export_latency.py [--model models/bbe_mnv2_035] [--out out/export-bench]
        [--variants tflite:fp32,tflite:fp16,tflite:dynamic-int8,tflite:int8,onnx:fp32,coreml:fp16,...]
        [--reuse] [--runs 30] [--warmup 5] [--num-verify 20] [--json bench.json] [--markdown]

Each variant is converted with ``bbe_mobile.export.convert.convert`` without its verification gate (so a variant
that fails verification is still measured, and marked FAILED), or taken from ``--out`` with ``--reuse``
(conversion time "-"); then verified against the Keras model on real val images (``bbe_mobile.export.verify``). Latency: one forward pass on a letterboxed real image, LiteRT at 1 and 2 threads
for .tflite, onnxruntime at 1 and 2 threads for .onnx (Core ML cannot be timed on Linux). All
(runner, threads) pairs are timed *interleaved* — run r of every pair before run r+1 of any — so drifts in
machine load hit every variant alike; the int8/fp32 TFLite speed ratio at 2 threads comes from that one run.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_VARIANTS = ("tflite:fp32,tflite:fp16,tflite:dynamic-int8,tflite:int8,onnx:fp32,"
                    "coreml:fp16,coreml:int8,coreml:palette6,coreml:palette4")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="Bundle directory (default: the bundled model).")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--out", default="out/export-bench", help="Directory of the artifacts.")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="Comma list of target:precision.")
    p.add_argument("--reuse", action="store_true", help="Take existing artifacts from --out instead of converting.")
    p.add_argument("--calibration-images", default=None)
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--verify-images", default=None)
    p.add_argument("--num-verify", type=int, default=20)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", default="1,2", help="Comma list of CPU thread counts.")
    p.add_argument("--json", dest="json_path", default=None, help="Write all figures as JSON.")
    p.add_argument("--markdown", action="store_true", help="Print the table as Markdown (for docs/export.md).")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from bbe_mobile.bench.timing import time_interleaved, timing_canvas
    from bbe_mobile.export import convert, verify
    from bbe_mobile.export.artifact_info import file_size
    from bbe_mobile.export.images import DEFAULT_CALIBRATION_DIR, DEFAULT_VERIFY_DIR
    from bbe_mobile.export.runtime import load_runner
    from bbe_mobile.modeling.bundle import load_bundle

    bundle = load_bundle(args.model)
    if args.input_size:
        bundle = bundle.resized(args.input_size)
    verify_dir = args.verify_images or str(DEFAULT_VERIFY_DIR)
    calibration = args.calibration_images or str(DEFAULT_CALIBRATION_DIR)
    options = convert.ExportOptions(calibration_images=calibration, num_calibration=args.num_calibration)
    threads = [int(t) for t in args.threads.split(",")]
    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    out = Path(args.out)
    rows = []
    files = verify.select_images(verify_dir, args.num_verify)
    for target, precision in variants:
        path = out / convert.artifact_name(bundle.name, target, precision, options)
        convert_s = None
        if args.reuse:
            if not path.exists():
                print(f"{path} missing (drop --reuse to convert)", file=sys.stderr)
                continue
        else:
            # converted without the verification gate so that a failing variant is still measured
            outcome = convert.convert(bundle, [target], {target: [precision]}, out, options, verify=False,
                                      log=lambda m: print(m, file=sys.stderr))[0]
            if outcome.status == "failed":
                rows.append({"target": target, "precision": precision, "path": str(path), "size_mb": None,
                             "convert_s": None, "status": "failed", "report": None, "message": outcome.message})
                continue
            convert_s = outcome.result.convert_seconds
        report = verify.verify_runner_path(path, bundle, files, precision=precision)
        print(f"  verify {target} {precision}: {report['status']} {report.get('message', '')}", file=sys.stderr)
        rows.append({"target": target, "precision": precision, "path": str(path), "size_mb": file_size(path) / 1e6,
                     "convert_s": convert_s, "status": report["status"], "report": report})

    canvas = timing_canvas(bundle.input_size, verify_dir)
    runners = {}
    for row in rows:
        if row["target"] == "coreml" or not Path(row["path"]).exists():
            continue
        for n in threads:
            runners[(row["path"], n)] = load_runner(row["path"], num_threads=n)
    times = time_interleaved({key: functools.partial(runner.run, canvas) for key, runner in runners.items()},
                             args.runs, args.warmup)
    for row in rows:
        row["latency_ms"] = {n: statistics.median(times[(row["path"], n)]) for n in threads
                             if (row["path"], n) in times}

    ratio = None
    by_precision = {r["precision"]: r for r in rows if r["target"] == "tflite"}
    if "int8" in by_precision and "fp32" in by_precision and 2 in threads:
        f32, i8 = by_precision["fp32"]["latency_ms"].get(2), by_precision["int8"]["latency_ms"].get(2)
        if f32 and i8:
            ratio = {"fp32_ms": f32, "int8_ms": i8, "speedup": f32 / i8}
    print_table(rows, threads, args.markdown, bundle, args)
    if ratio:
        print(f"\nTFLite full-int8 vs fp32 at 2 threads (same interleaved run): {ratio['fp32_ms']:.1f} ms / "
              f"{ratio['int8_ms']:.1f} ms = {ratio['speedup']:.2f}x faster")
    acceptance = acceptance_lines(by_precision.get("int8"), ratio)
    for line in acceptance:
        print(line)
    if args.json_path:
        for row in rows:
            if row.get("report") and row["report"].get("metrics"):
                row["report"]["metrics"].pop("images", None)
        Path(args.json_path).write_text(json.dumps({"model": bundle.name, "input_size": bundle.input_size,
                                                    "runs": args.runs, "warmup": args.warmup, "rows": rows,
                                                    "int8_fp32_ratio_2_threads": ratio}, indent=1, default=str))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def acceptance_lines(int8_row: dict | None, ratio: dict | None) -> list[str]:
    """Issue 4's acceptance: full-int8 TFLite vs float Keras on real val images: pooled person-mask IoU >= 0.93,
    matched-instance mean mask IoU >= 0.9; int8 >= 2x faster than fp32 TFLite at 2 threads."""
    if int8_row is None or not int8_row.get("report") or not int8_row["report"].get("metrics"):
        return ["acceptance: no verified tflite int8 row"]
    m = int8_row["report"]["metrics"]
    items = [("person-mask IoU", m.get("mask_iou"), 0.93), ("instance IoU", m.get("instance_iou"), 0.9),
             ("int8/fp32 speed-up at 2 threads", ratio["speedup"] if ratio else None, 2.0)]
    return ["acceptance: " + "; ".join(
        f"{name} {_f(value, '.3f')} >= {limit:g}: {'ok' if value is not None and value >= limit else 'NOT MET'}"
        for name, value, limit in items)]


def _f(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def print_table(rows, threads, markdown: bool, bundle, args) -> None:
    header = ["variant", "size MB", "convert s", "prob mean abs", "mask IoU", "inst IoU", "count mismatch",
              "verify"] + [f"{n} thr ms" for n in threads]
    lines = []
    for r in rows:
        m = (r.get("report") or {}).get("metrics") or {}
        status = {"ok": "pass", "passed": "pass", "verify-skipped": "skipped", "skipped": "skipped"}.get(
            r["status"], r["status"].upper())
        lines.append([f"{r['target']} {r['precision']}", _f(r["size_mb"], ".3f"), _f(r["convert_s"], ".1f"),
                      _f(m.get("prob_mean_abs"), ".4f"), _f(m.get("mask_iou"), ".4f"), _f(m.get("instance_iou"), ".4f"),
                      _f(m.get("count_mismatch_rate"), ".2f"), status]
                     + [_f(r.get("latency_ms", {}).get(n), ".1f") for n in threads])
    print(f"model {bundle.name}, input {bundle.input_size}, {args.num_verify} verification images, latency median of "
          f"{args.runs} interleaved runs after {args.warmup} warm-up (LiteRT for tflite, onnxruntime for onnx)")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(line[k]) for line in lines)) if lines else len(h) for k, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths)))


if __name__ == "__main__":
    sys.exit(main())
