"""Export a BBE Keras bundle to TFLite, Core ML (ML Program) and ONNX, quantised, each with its ``bbe`` metadata:
the orchestration (targets, precisions, artifact names, verification gate); each target's converter lives in its
own module (``tflite``, ``coreml``, ``onnx``; what they share in ``serving``).

Every exported graph takes ``image`` (1, S, S, 3) RGB in [0, 255] (normalisation stays inside) and outputs
``person_prob`` (1, S/4, S/4, 1) — the sigmoid is part of the graph — and ``box_offsets`` (1, S/4, S/4, 4).
Variants and the converter routes are documented in docs/export.md; the pitfalls avoided are in
``../shared/notes/toolchain.md`` (TFLite: only ``from_concrete_functions([cf])`` without a trackable, file size
and a test run checked; ONNX: batch dimension None; Core ML: fp32 I/O types named, outputs renamed).

An artifact is written to a hidden temporary path in the output directory and renamed into place only when
it is complete (and, through ``convert``, verified): a failed or killed conversion never leaves a partial file
at the output path.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from bbe_mobile.export.coreml import export_coreml
from bbe_mobile.export.images import DEFAULT_VERIFY_DIR, ExportError
from bbe_mobile.export.onnx import export_onnx
from bbe_mobile.export.runtime import error_line
from bbe_mobile.export.serving import ExportOptions
from bbe_mobile.export.tflite import CALIBRATED_FLOAT_LAYERS, IO_DTYPES, export_tflite
from bbe_mobile.utils.atomic import atomic_path, remove_path

TARGETS = ("tflite", "coreml", "onnx")
PRECISIONS = {
    "tflite": ("fp32", "fp16", "dynamic-int8", "int8", "int8-selective"),
    "coreml": ("fp16", "fp32", "int8", "palette6", "palette4"),
    "onnx": ("fp32",),
}
# Without --precision, convert tries each target's chain from the fastest and writes the first that passes
# verification (docs/export.md, "Default precision"); each chain ends with fp32, the most faithful variant.
DEFAULT_CHAIN = {"tflite": ("int8", "int8-selective", "dynamic-int8", "fp16", "fp32"),
                 "coreml": ("int8", "fp16", "fp32"), "onnx": ("fp32",)}
SUFFIX = {"tflite": ".tflite", "coreml": ".mlpackage", "onnx": ".onnx"}


@dataclass
class ExportResult:
    target: str
    precision: str
    path: Path
    size_bytes: int
    convert_seconds: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------- helpers

def parse_targets(target: str) -> list[str]:
    targets = list(TARGETS) if target == "all" else [t.strip() for t in target.split(",") if t.strip()]
    for t in targets:
        if t not in TARGETS:
            raise ExportError(f"unknown target {t!r}: choose from {', '.join(TARGETS)} or all")
    if not targets:
        raise ExportError("no target given")
    return targets


def parse_precisions(target: str, precision: str | None) -> list[str]:
    """``None`` -> the target's default chain; ``all`` -> every precision; else a comma list, each checked."""
    if precision is None:
        return list(DEFAULT_CHAIN[target])
    wanted = list(PRECISIONS[target]) if precision == "all" else [p.strip() for p in precision.split(",")]
    for p in wanted:
        _check_precision(target, p)
    return wanted


def verification_hint(failed: list[tuple[str, str]], passed: list[tuple[str, str]]) -> str:
    """One line naming what to try instead of the (target, precision) variants that failed verification: only
    variants verified to pass in this run (``passed``), the default chain (which writes only a variant that
    passes) and ``--no-verify``; never a variant not known to pass."""
    parts = []
    for target, precision in failed:
        verified = [p for t, p in passed if t == target]
        flags = " or ".join(f"--precision {p}" for p in verified)
        parts.append(f"--target {target} with {flags} (verified above), " if verified else f"--target {target} ")
        parts[-1] += f"without --precision (writes the fastest variant that passes), or --no-verify to write " \
                     f"{target} {precision} unverified"
    return "try instead: " + "; ".join(parts)


def _check_precision(target: str, precision: str) -> None:
    if precision not in PRECISIONS[target]:
        raise ExportError(f"precision {precision!r} is not available for {target}: choose from "
                          f"{', '.join(PRECISIONS[target])} or all")


def check_request(target: str, precisions: list[str], options: ExportOptions) -> None:
    """Reject an unknown target, a precision the target does not have, an unknown I/O type or a
    ``num_calibration`` below 1 before any conversion starts."""
    if target not in TARGETS:
        raise ExportError(f"unknown target {target!r}: choose from {', '.join(TARGETS)}")
    for precision in precisions:
        _check_precision(target, precision)
    if options.io_dtype not in IO_DTYPES:
        raise ExportError(f"unknown I/O type {options.io_dtype!r}: choose from {', '.join(IO_DTYPES)}")
    if options.num_calibration < 1:
        raise ExportError(f"--num-calibration must be >= 1, got {options.num_calibration}")


def resolve_precisions(targets: list[str], precision: str | None) -> tuple[dict[str, list[str]], list[str]]:
    """Precisions per target for ``--precision``: with one target (or None/"all") each target's own parse;
    with several, a comma list applies to each target that has the precisions. Returns (precisions of the
    targets kept, targets skipped because they have none of them)."""
    if len(targets) == 1 or precision in (None, "all"):
        return {t: parse_precisions(t, precision) for t in targets}, []
    wanted = [p.strip() for p in precision.split(",")]
    known = {p for ps in PRECISIONS.values() for p in ps}
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise ExportError(f"unknown precision {unknown[0]!r}: choose from {', '.join(sorted(known))} or all")
    chosen = {t: [p for p in wanted if p in PRECISIONS[t]] for t in targets}
    skipped = [t for t in targets if not chosen[t]]
    if len(skipped) == len(targets):
        raise ExportError(f"no target has precision {precision!r}")
    return {t: ps for t, ps in chosen.items() if ps}, skipped


def parse_sizes(text: str | None) -> tuple[int, ...]:
    """``"256,384"`` -> (256, 384); None or empty -> ()."""
    try:
        return tuple(int(s) for s in text.split(",") if s.strip()) if text else ()
    except ValueError:
        raise ExportError(f"--flexible-sizes must be a comma list of integers, got {text!r}") from None


def artifact_name(model_name: str, target: str, precision: str, options: ExportOptions) -> str:
    name = f"{model_name}_{precision}"
    if target == "tflite" and precision in CALIBRATED_FLOAT_LAYERS and options.io_dtype != "float32":
        name += f"_{options.io_dtype}io"
    if target == "coreml":
        name += "_tensor" if options.coreml_input == "tensor" else ""
        name += "_flex" if options.flexible_sizes else ""
    return name + SUFFIX[target]


def _check_bundle(bundle) -> None:
    if not bundle.config.box_head:
        raise ExportError(f"{bundle.name} is a semantic-only model (no box head): nothing to group, not exported")
    if bundle.config.full_resolution:
        raise ExportError("full-resolution models are not exported (outputs at stride 1 are too large for phones)")


# ---------------------------------------------------------------------------------------------------- driver

EXPORTERS = {"tflite": export_tflite, "onnx": export_onnx, "coreml": export_coreml}


def export_artifact(bundle, target: str, precision: str, out_path: str | os.PathLike,
                    options: ExportOptions = ExportOptions()) -> ExportResult:
    """Convert ``bundle`` (already at the wanted input size) to one artifact written atomically at
    ``out_path``."""
    _check_bundle(bundle)
    check_request(target, [precision], options)
    out_path = Path(out_path)
    start = time.perf_counter()
    with atomic_path(out_path) as tmp:
        notes = EXPORTERS[target](bundle, precision, tmp, options)
    from bbe_mobile.export.artifact_info import file_size  # noqa: PLC0415

    return ExportResult(target, precision, out_path, file_size(out_path), time.perf_counter() - start, notes)


@dataclass
class ConvertOutcome:
    """One variant of ``convert``: the export result (None if conversion failed), its verification report
    (None with --no-verify), ``status`` ``ok``/``unverified``/``failed``/``verify-skipped``, or ``refused`` (a
    faster variant of a default chain that failed, a more faithful one was tried next) and a message."""

    target: str
    precision: str
    path: Path
    result: ExportResult | None
    report: dict | None
    status: str
    message: str = ""


def convert(bundle, targets: list[str], precisions: dict[str, list[str]], out_dir: str | os.PathLike,
            options: ExportOptions = ExportOptions(), verify: bool = True, verify_images: str | None = None,
            num_verify: int = 20, log=print, first_passing: bool = False, num_accuracy: int = 0) -> list[ConvertOutcome]:
    """Export every (target, precision) into ``out_dir``; with ``verify`` each artifact is verified against
    ``bundle`` on ``verify_images`` while still at its temporary path and moved into place only if it passes
    (its report is written as ``NAME.verify.json`` either way). ``first_passing``: each target's precisions
    are a chain from the fastest (``DEFAULT_CHAIN``): the first that passes is written and the rest not tried;
    each one before it is ``refused``. ``num_accuracy``: held-out labelled images beside ``verify_images`` for
    the mask AP gate (``accuracy.py``; 0: none)."""
    from bbe_mobile.export import verify as verification  # noqa: PLC0415
    from bbe_mobile.export.accuracy import accuracy_set  # noqa: PLC0415

    _check_bundle(bundle)
    for target in targets:
        check_request(target, precisions[target], options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if options.input_size and options.input_size != bundle.input_size:
        bundle = bundle.resized(options.input_size)
    files, accuracy = None, None
    if verify:
        verify_dir = verify_images or str(DEFAULT_VERIFY_DIR)
        files = verification.select_images(verify_dir, num_verify, flag="--verify-images")  # fail early
        accuracy = (accuracy_set(verify_dir, num_accuracy), {})
    outcomes = []
    for target in targets:
        chain = precisions[target]
        for k, precision in enumerate(chain):
            outcome = _convert_variant(bundle, target, precision, out, options, files, accuracy, log)
            outcomes.append(outcome)
            if not first_passing:
                continue
            if outcome.status != "failed":
                break
            if k + 1 < len(chain):
                outcome.status = "refused"
    return outcomes


def _convert_variant(bundle, target: str, precision: str, out: Path, options: ExportOptions,
                     files: list[Path] | None, accuracy: tuple | None, log) -> ConvertOutcome:
    """Convert, verify on ``files`` (None: not verified) and the (``AccuracySet`` or None, reference cache)
    ``accuracy``, and write one variant atomically into ``out``."""
    from bbe_mobile.export import verify as verification  # noqa: PLC0415
    from bbe_mobile.export.artifact_info import file_size  # noqa: PLC0415

    final = out / artifact_name(bundle.name, target, precision, options)
    log(f"converting {target} {precision} -> {final}")
    start = time.perf_counter()
    try:
        with atomic_path(final) as tmp:
            notes = EXPORTERS[target](bundle, precision, tmp, options)
            result = ExportResult(target, precision, final, file_size(tmp), time.perf_counter() - start, notes)
            report = None
            if files is not None:
                report = verification.verify_runner_path(tmp, bundle, files, precision=precision,
                                                         artifact_label=str(final), accuracy_images=accuracy[0],
                                                         cache=accuracy[1])
                verification.write_report(report, final.parent / (final.name + ".verify.json"))
                if report["status"] == "failed":
                    raise _VerificationFailed(report)
    except _VerificationFailed as failed:
        stale = final.exists() or final.is_symlink()
        remove_path(final)  # an older artifact (e.g. from --no-verify) must not pass for this one
        outcome = ConvertOutcome(target, precision, final, result, failed.report, "failed",
                                 "verification failed: " + verification.failure_summary(failed.report)
                                 + "; artifact not written" + (", older one removed" if stale else "")
                                 + f" (report: {final.name}.verify.json)")
        log(f"  FAILED {outcome.message}")
        return outcome
    except Exception as exc:  # noqa: BLE001 - one variant failing must not stop the others
        message = error_line(exc, None) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {error_line(exc)}"
        log(f"  FAILED {message}")
        return ConvertOutcome(target, precision, final, None, None, "failed", message)
    status = "unverified" if report is None else ("ok" if report["status"] == "passed" else "verify-skipped")
    message = "" if report is None or report["status"] != "skipped" else report["message"]
    extra = f" ({'; '.join(result.notes)})" if result.notes else ""
    log(f"  {status}: {result.size_bytes / 1e6:.3f} MB in {result.convert_seconds:.1f} s{extra}"
        + (f"; {message}" if message else ""))
    return ConvertOutcome(target, precision, final, result, report, status, message)


class _VerificationFailed(Exception):
    def __init__(self, report: dict):
        super().__init__("verification failed")
        self.report = report
