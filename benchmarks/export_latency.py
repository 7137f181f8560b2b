"""Export variants of a BBE model: size, conversion time, verification figures and CPU latency, one row each.

    nice -n 10 python benchmarks/export_latency.py [--model BUNDLE [--model BUNDLE ...]] [--out out/export-bench]
        [--variants tflite:fp32,tflite:fp16,tflite:dynamic-int8,tflite:int8,onnx:fp32,coreml:fp16,...]
        [--reuse] [--runs 30] [--warmup 5] [--num-verify 20] [--num-accuracy 100] [--json bench.json] [--markdown]

Each variant is converted with ``bbe_mobile.export.convert.convert`` without its verification gate (so a variant
that fails verification is still measured, and marked FAILED), or taken from ``--out`` with ``--reuse``
(conversion time "-"); then verified against the Keras model on real val images (``bbe_mobile.export.verify``),
with the accuracy gate of docs/export.md: mask AP of Keras and of the artifact on ``--num-accuracy`` held-out
labelled images, the drop and its bootstrap spread (the Keras model's AP computed once per model). Latency: one forward pass on a letterboxed real image, LiteRT at 1 and 2 threads
for .tflite, onnxruntime at 1 and 2 threads for .onnx (Core ML cannot be timed on Linux). All
(runner, threads) pairs are timed *interleaved* — run r of every pair before run r+1 of any — so drifts in
machine load hit every variant alike; the int8/fp32 TFLite speed ratio at 2 threads comes from that one run.
Several ``--model`` bundles (e.g. two backbones) are converted and timed in the same interleaved run, one row
per model and variant, so their latencies compare under the same load; the spread (interquartile range of the
interleaved runs) is printed beside each median.
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
    p.add_argument("--model", action="append", default=None, help="Bundle directory; repeat to compare models "
                   "in one interleaved run (default: the bundled model).")
    p.add_argument("--input-size", type=int, default=None)
    p.add_argument("--out", default="out/export-bench", help="Directory of the artifacts.")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="Comma list of target:precision.")
    p.add_argument("--reuse", action="store_true", help="Take existing artifacts from --out instead of converting.")
    p.add_argument("--calibration-images", default=None)
    p.add_argument("--num-calibration", type=int, default=100)
    p.add_argument("--verify-images", default=None)
    p.add_argument("--num-verify", type=int, default=20)
    p.add_argument("--num-accuracy", type=int, default=100, help="Held-out labelled images for the mask AP "
                   "(0: none).")
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
    from bbe_mobile.export.accuracy import accuracy_set
    from bbe_mobile.export.images import DEFAULT_CALIBRATION_DIR, DEFAULT_VERIFY_DIR
    from bbe_mobile.export.runtime import load_runner
    from bbe_mobile.modeling.bundle import load_bundle

    bundles = [load_bundle(m) for m in (args.model or [None])]
    if args.input_size:
        bundles = [b.resized(args.input_size) for b in bundles]
    if len({b.input_size for b in bundles}) > 1:
        print("every --model must have the same input size (pass --input-size)", file=sys.stderr)
        return 2
    verify_dir = args.verify_images or str(DEFAULT_VERIFY_DIR)
    calibration = args.calibration_images or str(DEFAULT_CALIBRATION_DIR)
    options = convert.ExportOptions(calibration_images=calibration, num_calibration=args.num_calibration)
    threads = [int(t) for t in args.threads.split(",")]
    variants = [tuple(v.split(":")) for v in args.variants.split(",")]
    out = Path(args.out)
    rows = []
    files = verify.select_images(verify_dir, args.num_verify)
    accuracy = (accuracy_set(verify_dir, args.num_accuracy), {})
    for bundle in bundles:
        for target, precision in variants:
            row = variant_row(bundle, target, precision, out, options, files, accuracy, args.reuse, convert, verify)
            if row is not None:
                rows.append(row | {"model": bundle.name})

    canvas = timing_canvas(bundles[0].input_size, verify_dir)
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
        row["latency_iqr_ms"] = {n: _iqr(times[(row["path"], n)]) for n in threads if (row["path"], n) in times}

    ratios = {}
    for bundle in bundles:
        by_precision = {r["precision"]: r for r in rows if r["target"] == "tflite" and r["model"] == bundle.name}
        if "int8" in by_precision and "fp32" in by_precision and 2 in threads:
            f32, i8 = by_precision["fp32"]["latency_ms"].get(2), by_precision["int8"]["latency_ms"].get(2)
            if f32 and i8:
                ratios[bundle.name] = {"fp32_ms": f32, "int8_ms": i8, "speedup": f32 / i8}
    print_table(rows, threads, args.markdown, bundles, args)
    for bundle in bundles:
        ratio = ratios.get(bundle.name)
        if ratio:
            print(f"\n{bundle.name}: TFLite full-int8 vs fp32 at 2 threads (same interleaved run): "
                  f"{ratio['fp32_ms']:.1f} ms / {ratio['int8_ms']:.1f} ms = {ratio['speedup']:.2f}x faster")
        int8_row = next((r for r in rows if r["model"] == bundle.name and (r["target"], r["precision"]) ==
                         ("tflite", "int8")), None)
        for line in acceptance_lines(int8_row, ratio):
            print(f"{bundle.name} {line}")
    if args.json_path:
        for row in rows:
            if row.get("report") and row["report"].get("metrics"):
                row["report"]["metrics"].pop("images", None)
        Path(args.json_path).write_text(json.dumps({"models": [b.name for b in bundles],
                                                    "input_size": bundles[0].input_size, "runs": args.runs,
                                                    "warmup": args.warmup, "rows": rows,
                                                    "int8_fp32_ratio_2_threads": ratios}, indent=1, default=str))
    return 1 if any(r["status"] == "failed" for r in rows) else 0


def variant_row(bundle, target: str, precision: str, out: Path, options, files, accuracy, reuse: bool, convert,
                verify):
    """Convert (or, with ``reuse``, find) one variant of ``bundle`` and verify it on ``files`` and the
    (``AccuracySet`` or None, reference cache) ``accuracy``: its table row, or None when ``reuse`` finds no
    artifact."""
    from bbe_mobile.export.artifact_info import file_size  # noqa: PLC0415

    path = out / convert.artifact_name(bundle.name, target, precision, options)
    convert_s = None
    if reuse:
        if not path.exists():
            print(f"{path} missing (drop --reuse to convert)", file=sys.stderr)
            return None
    else:
        # converted without the verification gate so that a failing variant is still measured
        outcome = convert.convert(bundle, [target], {target: [precision]}, out, options, verify=False,
                                  log=lambda m: print(m, file=sys.stderr))[0]
        if outcome.status == "failed":
            return {"target": target, "precision": precision, "path": str(path), "size_mb": None,
                    "convert_s": None, "status": "failed", "report": None, "message": outcome.message}
        convert_s = outcome.result.convert_seconds
    report = verify.verify_runner_path(path, bundle, files, precision=precision, accuracy_images=accuracy[0],
                                       cache=accuracy[1])
    ap = report.get("accuracy")
    figures = (f"; mask AP Keras {ap['ap_reference']:.4f}, artifact {ap['ap_artifact']:.4f}, drop {ap['ap_drop']:.4f} ± "
               f"{ap['ap_drop_std']:.4f}" if ap else "")
    print(f"  verify {bundle.name} {target} {precision}: {report['status']} {report.get('message', '')}{figures}",
          file=sys.stderr, flush=True)
    return {"target": target, "precision": precision, "path": str(path), "size_mb": file_size(path) / 1e6,
            "convert_s": convert_s, "status": report["status"], "report": report}


def _iqr(samples: list[float]) -> float:
    """Interquartile range (ms) of one runner's interleaved timings."""
    q1, _, q3 = statistics.quantiles(samples, n=4)
    return q3 - q1


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


def print_table(rows, threads, markdown: bool, bundles, args) -> None:
    """One row per model and variant; latency cells are "median ± IQR/2" ms of the interleaved runs."""
    header = ["model", "variant", "size MB", "convert s", "prob mean abs", "mask IoU", "inst IoU", "count mismatch",
              "Keras AP", "artifact AP", "AP drop ± std (5-95 %)", "verify"] + [f"{n} thr ms" for n in threads]
    lines = []
    for r in rows:
        m = (r.get("report") or {}).get("metrics") or {}
        ap = (r.get("report") or {}).get("accuracy") or {}
        drop = (f"{ap['ap_drop']:.3f} ± {ap['ap_drop_std']:.3f} ({ap['ap_drop_p05']:.3f} to {ap['ap_drop_p95']:.3f})"
                if ap else "-")
        status = {"ok": "pass", "passed": "pass", "verify-skipped": "skipped", "skipped": "skipped"}.get(
            r["status"], r["status"].upper())
        latency = [f"{r['latency_ms'][n]:.1f} ± {r['latency_iqr_ms'][n] / 2:.1f}" if n in r.get("latency_ms", {})
                   else "-" for n in threads]
        lines.append([r["model"], f"{r['target']} {r['precision']}", _f(r["size_mb"], ".3f"), _f(r["convert_s"], ".1f"),
                      _f(m.get("prob_mean_abs"), ".4f"), _f(m.get("mask_iou"), ".4f"), _f(m.get("instance_iou"), ".4f"),
                      _f(m.get("count_mismatch_rate"), ".2f"), _f(ap.get("ap_reference"), ".3f"),
                      _f(ap.get("ap_artifact"), ".3f"), drop, status] + latency)
    print(f"models {', '.join(b.name for b in bundles)}, input {bundles[0].input_size}, {args.num_verify} verification "
          f"images, mask AP on {args.num_accuracy} held-out labelled images (drop = Keras - artifact, bootstrap std "
          f"and 5-95 % interval), latency median ± half the interquartile range of {args.runs} interleaved runs after {args.warmup} "
          "warm-up (LiteRT for tflite, onnxruntime for onnx)")
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
